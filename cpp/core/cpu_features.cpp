// Run-time CPU feature detection through the compiler's cpuid builtins.
#include "core/cpu_features.hpp"
#include <cstdlib>
#include <cstring>

namespace hepnn {

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
#endif
    return f;
  }();
  return features;
}

bool use_avx2_fma() {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  static const bool enabled = [] {
    const char* off = std::getenv("HEPNN_DISABLE_AVX2");
    if (off && std::strcmp(off, "0") != 0 && off[0] != '\0') return false;
    return cpu_features().avx2 && cpu_features().fma;
  }();
  return enabled;
#else
  return false;
#endif
}

}  // namespace hepnn
