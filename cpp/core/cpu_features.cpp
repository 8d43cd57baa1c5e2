// Run-time CPU feature detection through the compiler's cpuid builtins.
#include "core/cpu_features.hpp"
#include <cstdlib>
#include <cstring>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

namespace hepnn {
namespace {

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// NOTE: the cpuid bits alone are not enough: an OS (or hypervisor) that does not save the opmask
// and zmm registers on a context switch clears XCR0 bits 5-7, and the kernels would then corrupt
// other threads' state. XCR0 is read with xgetbv, allowed once cpuid reports OSXSAVE.
bool avx512_usable() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0xE6u) != 0xE6u) return false;  // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM state
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned need = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);  // F, DQ, BW, VL
  return (b & need) == need;
}
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512 = avx512_usable();
#endif
    return f;
  }();
  return features;
}

bool use_avx2_fma() {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  static const bool enabled = [] {
    if (env_set("HEPNN_DISABLE_AVX2")) return false;
    return cpu_features().avx2 && cpu_features().fma;
  }();
  return enabled;
#else
  return false;
#endif
}

bool use_avx512() {
#if defined(HEPNN_HAVE_AVX512_KERNELS)
  static const bool enabled = use_avx2_fma() && !env_set("HEPNN_DISABLE_AVX512") && cpu_features().avx512;
  return enabled;
#else
  return false;
#endif
}

}  // namespace hepnn
