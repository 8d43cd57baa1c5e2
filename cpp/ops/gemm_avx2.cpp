// AVX2+FMA GEMM micro-kernels (compiled with -mavx2 -mfma, chosen at run time): a 6x16 fp32 and
// a 6x8 fp64 register tile, i.e. 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16 ymm.
#include <immintrin.h>

#include <algorithm>

#include "ops/gemm_ukernel.hpp"

namespace hepnn::cpu::detail {
namespace {

// Thin overloads so one kernel body serves both precisions.
struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};
struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
};

// Six rows x 2 vectors. The accumulators are named variables, not an array: GCC keeps an
// array of vectors in memory once any path takes its address, which costs a store per FMA.
template <typename S>
void avx2_ukernel(index_t k, const typename S::T* __restrict a, const typename S::T* __restrict b,
                  typename S::T* __restrict c, index_t ldc, typename S::T alpha,
                  typename S::T beta, index_t m, index_t n) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int W = S::W, MR = 6, NR = 2 * W;
  for (index_t i = 0; i < m; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);

  V c00 = S::zero(), c01 = S::zero(), c10 = S::zero(), c11 = S::zero();
  V c20 = S::zero(), c21 = S::zero(), c30 = S::zero(), c31 = S::zero();
  V c40 = S::zero(), c41 = S::zero(), c50 = S::zero(), c51 = S::zero();
#define HEPNN_STEP(P)                                                              \
  {                                                                                \
    const V b0 = S::load(b + (P) * NR), b1 = S::load(b + (P) * NR + W);            \
    V ai = S::bcast(a + (P) * MR + 0);                                             \
    c00 = S::fma(ai, b0, c00);                                                     \
    c01 = S::fma(ai, b1, c01);                                                     \
    ai = S::bcast(a + (P) * MR + 1);                                               \
    c10 = S::fma(ai, b0, c10);                                                     \
    c11 = S::fma(ai, b1, c11);                                                     \
    ai = S::bcast(a + (P) * MR + 2);                                               \
    c20 = S::fma(ai, b0, c20);                                                     \
    c21 = S::fma(ai, b1, c21);                                                     \
    ai = S::bcast(a + (P) * MR + 3);                                               \
    c30 = S::fma(ai, b0, c30);                                                     \
    c31 = S::fma(ai, b1, c31);                                                     \
    ai = S::bcast(a + (P) * MR + 4);                                               \
    c40 = S::fma(ai, b0, c40);                                                     \
    c41 = S::fma(ai, b1, c41);                                                     \
    ai = S::bcast(a + (P) * MR + 5);                                               \
    c50 = S::fma(ai, b0, c50);                                                     \
    c51 = S::fma(ai, b1, c51);                                                     \
  }
  index_t p = 0;
  for (; p + 4 <= k; p += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
    HEPNN_STEP(0) HEPNN_STEP(1) HEPNN_STEP(2) HEPNN_STEP(3)
    a += 4 * MR;
    b += 4 * NR;
  }
  for (; p < k; ++p) {
    HEPNN_STEP(0)
    a += MR;
    b += NR;
  }
#undef HEPNN_STEP

  const V va = S::set1(alpha);
  if (m == MR && n == NR) {
    auto row = [&](T* ci, V lo, V hi) {
      lo = S::mul(va, lo);
      hi = S::mul(va, hi);
      if (beta != T(0)) {
        const V vb = S::set1(beta);
        lo = S::fma(vb, S::load(ci), lo);
        hi = S::fma(vb, S::load(ci + W), hi);
      }
      S::store(ci, lo);
      S::store(ci + W, hi);
    };
    row(c, c00, c01);
    row(c + ldc, c10, c11);
    row(c + 2 * ldc, c20, c21);
    row(c + 3 * ldc, c30, c31);
    row(c + 4 * ldc, c40, c41);
    row(c + 5 * ldc, c50, c51);
    return;
  }
  // Edge tile: spill the register tile and store only the m x n corner.
  alignas(32) T tile[MR * NR];
  const V regs[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int i = 0; i < MR; ++i) {
    S::store(tile + i * NR, regs[i][0]);
    S::store(tile + i * NR + W, regs[i][1]);
  }
  for (index_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    const T* ti = tile + i * NR;
    if (beta == T(0))
      for (index_t j = 0; j < n; ++j) ci[j] = alpha * ti[j];
    else
      for (index_t j = 0; j < n; ++j) ci[j] = alpha * ti[j] + beta * ci[j];
  }
}

}  // namespace

// Blocking for Zen-class cores (L1d 32K, L2 512K): the kc x nr B panel (16 KB) stays in L1,
// the mc x kc A block (~150 KB) in L2, the kc x nc B block in L3.
KernelInfo<float> avx2_kernel_f32() { return {&avx2_ukernel<F32>, 6, 16, 144, 256, 4080}; }
KernelInfo<double> avx2_kernel_f64() { return {&avx2_ukernel<F64>, 6, 8, 72, 256, 2040}; }

}  // namespace hepnn::cpu::detail
