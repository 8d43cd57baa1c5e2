// Portable GEMM micro-kernel: plain C++ the compiler vectorises for the baseline ISA (SSE2 on
// x86-64, NEON on arm64). Used when AVX2+FMA is absent or HEPNN_DISABLE_AVX2=1.
#include <algorithm>

#include "ops/gemm_ukernel.hpp"

namespace hepnn::cpu::detail {
namespace {

// MR x NR accumulators sized to fit 16 128-bit registers (12 accumulators + operands).
template <typename T, int MR, int NR>
void portable_ukernel(index_t k, const T* __restrict a, const T* __restrict b, T* __restrict c,
                      index_t ldc, T alpha, T beta, index_t m, index_t n) {
  T acc[MR][NR] = {};
  for (index_t p = 0; p < k; ++p) {
    const T* ap = a + p * MR;
    const T* bp = b + p * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ap[i] * bp[j];
  }
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
      if (beta == T(0))
        for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j];
      else
        for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
    return;
  }
  for (index_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    if (beta == T(0))
      for (index_t j = 0; j < n; ++j) ci[j] = alpha * acc[i][j];
    else
      for (index_t j = 0; j < n; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
  }
}

}  // namespace

template <typename T>
KernelInfo<T> portable_kernel();

template <>
KernelInfo<float> portable_kernel<float>() {
  return {&portable_ukernel<float, 6, 8>, 6, 8, 96, 256, 4096};
}
template <>
KernelInfo<double> portable_kernel<double>() {
  return {&portable_ukernel<double, 6, 4>, 6, 4, 96, 256, 2048};
}

}  // namespace hepnn::cpu::detail
