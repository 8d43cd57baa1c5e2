// Run-time CPU feature detection, read once: the kernels choose their micro-kernel from it.
#pragma once

namespace hepnn {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
};

const CpuFeatures& cpu_features();

// True when the AVX2+FMA kernels were compiled in and the CPU runs them; HEPNN_DISABLE_AVX2=1 in
// the environment forces the portable path (used by the tests to check both).
bool use_avx2_fma();

}  // namespace hepnn
