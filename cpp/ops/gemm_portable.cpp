// Portable GEMM micro-kernel: plain C++ for the baseline ISA (SSE2 on x86-64, NEON on arm64),
// used when AVX2+FMA is absent or HEPNN_DISABLE_AVX2=1. A 6 x (2 vectors) tile, like the AVX2
// kernel, with GCC/Clang vector types; other compilers get the scalar loops.
#include <algorithm>
#include <cstring>

#include "ops/gemm_ukernel.hpp"

namespace hepnn::cpu::detail {
namespace {

// Stores the MR x NR register tile (row-major in `acc`) with alpha/beta; beta == 0 never reads C.
template <typename T, int MR, int NR>
inline void store_tile(const T* acc, T* c, index_t ldc, T alpha, T beta, index_t m, index_t n) {
  for (index_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    const T* ai = acc + i * NR;
    if (beta == T(0))
      for (index_t j = 0; j < n; ++j) ci[j] = alpha * ai[j];
    else
      for (index_t j = 0; j < n; ++j) ci[j] = alpha * ai[j] + beta * ci[j];
  }
}

#if defined(__GNUC__) || defined(__clang__)
// Twelve named 16-byte accumulators (6 rows x 2 vectors) + 2 B vectors + 1 broadcast fit the 16
// SSE/NEON registers; an accumulator array would be kept in memory.
template <typename T, typename V>
void portable_ukernel(index_t k, const T* __restrict a, const T* __restrict b, T* __restrict c,
                      index_t ldc, T alpha, T beta, index_t m, index_t n) {
  constexpr int W = sizeof(V) / sizeof(T), MR = 6, NR = 2 * W;
  V c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {};
  V c30 = {}, c31 = {}, c40 = {}, c41 = {}, c50 = {}, c51 = {};
  for (index_t p = 0; p < k; ++p) {
    V b0, b1;
    std::memcpy(&b0, b, sizeof(V));
    std::memcpy(&b1, b + W, sizeof(V));
    V ai = V{} + a[0];  // scalar + vector broadcasts
    c00 += ai * b0;
    c01 += ai * b1;
    ai = V{} + a[1];
    c10 += ai * b0;
    c11 += ai * b1;
    ai = V{} + a[2];
    c20 += ai * b0;
    c21 += ai * b1;
    ai = V{} + a[3];
    c30 += ai * b0;
    c31 += ai * b1;
    ai = V{} + a[4];
    c40 += ai * b0;
    c41 += ai * b1;
    ai = V{} + a[5];
    c50 += ai * b0;
    c51 += ai * b1;
    a += MR;
    b += NR;
  }
  T acc[MR * NR];
  const V rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int i = 0; i < MR; ++i) {
    std::memcpy(acc + i * NR, &rows[i][0], sizeof(V));
    std::memcpy(acc + i * NR + W, &rows[i][1], sizeof(V));
  }
  store_tile<T, MR, NR>(acc, c, ldc, alpha, beta, m, n);
}

typedef float F4 __attribute__((vector_size(16)));
typedef double D2 __attribute__((vector_size(16)));
constexpr auto kF32 = &portable_ukernel<float, F4>;
constexpr auto kF64 = &portable_ukernel<double, D2>;
#else
template <typename T, int MR, int NR>
void portable_ukernel(index_t k, const T* __restrict a, const T* __restrict b, T* __restrict c,
                      index_t ldc, T alpha, T beta, index_t m, index_t n) {
  T acc[MR * NR] = {};
  for (index_t p = 0; p < k; ++p)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i * NR + j] += a[p * MR + i] * b[p * NR + j];
  store_tile<T, MR, NR>(acc, c, ldc, alpha, beta, m, n);
}
constexpr auto kF32 = &portable_ukernel<float, 6, 8>;
constexpr auto kF64 = &portable_ukernel<double, 6, 4>;
#endif

}  // namespace

template <typename T>
KernelInfo<T> portable_kernel();

template <>
KernelInfo<float> portable_kernel<float>() {
  return {kF32, 6, 8, 96, 256, 4096};
}
template <>
KernelInfo<double> portable_kernel<double>() {
  return {kF64, 6, 4, 96, 256, 2048};
}

}  // namespace hepnn::cpu::detail
