// Run-time CPU feature detection, read once: the kernels choose their micro-kernel from it.
#pragma once

namespace hepnn {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  // AVX-512 F/BW/DQ/VL in the CPU and zmm/opmask state saved by the OS (cpuid + xgetbv).
  bool avx512 = false;
};

const CpuFeatures& cpu_features();

// True when the AVX2+FMA kernels were compiled in and the CPU runs them; HEPNN_DISABLE_AVX2=1 in
// the environment forces the portable path (used by the tests to check both).
bool use_avx2_fma();

// True when the AVX-512 kernels were compiled in, use_avx2_fma() holds and the CPU and OS run
// AVX-512; HEPNN_DISABLE_AVX512=1 forces the AVX2 kernels (HEPNN_DISABLE_AVX2=1 turns off both).
bool use_avx512();

// use_avx2_fma() read once, and false when the AVX2 kernels were not compiled in: the test the
// float32 vector paths of the op files make before calling into their *_avx2.cpp kernels.
inline bool avx2_f32() {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  static const bool enabled = use_avx2_fma();
  return enabled;
#else
  return false;
#endif
}

}  // namespace hepnn
