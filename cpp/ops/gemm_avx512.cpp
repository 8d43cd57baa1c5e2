// AVX-512 GEMM micro-kernels (compiled with -mavx512f/bw/dq/vl -mfma, chosen at run time when
// use_avx512()): a 14x32 fp32 and a 14x16 fp64 register tile, i.e. 28 zmm accumulators + 2 B
// vectors + 1 broadcast = 31 of 32 zmm, edge tiles stored through opmasks; and the
// matrix-vector dot_rows.
#include <immintrin.h>

#include <algorithm>

#include "ops/gemm_ukernel.hpp"

namespace hepnn::cpu::detail {
namespace {

constexpr int MR = 14;

struct F32 {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr int W = 16;
  static V load(const T* p) { return _mm512_load_ps(p); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V mload(M k, const T* p) { return _mm512_maskz_loadu_ps(k, p); }
  static void mstore(T* p, M k, V v) { _mm512_mask_storeu_ps(p, k, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};
struct F64 {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr int W = 8;
  static V load(const T* p) { return _mm512_load_pd(p); }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V mload(M k, const T* p) { return _mm512_maskz_loadu_pd(k, p); }
  static void mstore(T* p, M k, V v) { _mm512_mask_storeu_pd(p, k, v); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
};

// Columns [lo, lo + W) of an n-wide row that exist, as a mask.
template <typename S>
typename S::M lane_mask(index_t n, index_t lo) {
  const index_t w = std::clamp<index_t>(n - lo, 0, S::W);
  return static_cast<typename S::M>(w >= S::W ? ~0u : (1u << w) - 1u);
}

// 14 rows x 2 vectors. The whole k loop is one assembly block with the accumulators in fixed
// registers zmm0-27 (GCC allows at most 30 asm operands, and "+v" accumulators count twice);
// zmm29 holds the broadcast, zmm30-31 the B vectors. One broadcast feeds two FMAs, so a k step
// is 16 loads for 28 FMAs, within the two 512-bit loads per cycle the core sustains. The
// finished tile goes through an L1-resident buffer to the (masked) store code.
#define HEPNN_ROW(P, R, ES, BC, FMA, C0, C1)                                      \
  BC " " #P "*14*" ES "+" #R "*" ES "(%[a]), %%zmm29\n\t"                         \
  FMA " %%zmm30, %%zmm29, %%zmm" #C0 "\n\t"                                      \
  FMA " %%zmm31, %%zmm29, %%zmm" #C1 "\n\t"
#define HEPNN_STEP(P, ES, BC, FMA)                                                \
  "vmovups " #P "*128(%[b]), %%zmm30\n\t"                                         \
  "vmovups " #P "*128+64(%[b]), %%zmm31\n\t"                                      \
  HEPNN_ROW(P, 0, ES, BC, FMA, 0, 1) HEPNN_ROW(P, 1, ES, BC, FMA, 2, 3)           \
  HEPNN_ROW(P, 2, ES, BC, FMA, 4, 5) HEPNN_ROW(P, 3, ES, BC, FMA, 6, 7)           \
  HEPNN_ROW(P, 4, ES, BC, FMA, 8, 9) HEPNN_ROW(P, 5, ES, BC, FMA, 10, 11)         \
  HEPNN_ROW(P, 6, ES, BC, FMA, 12, 13) HEPNN_ROW(P, 7, ES, BC, FMA, 14, 15)       \
  HEPNN_ROW(P, 8, ES, BC, FMA, 16, 17) HEPNN_ROW(P, 9, ES, BC, FMA, 18, 19)       \
  HEPNN_ROW(P, 10, ES, BC, FMA, 20, 21) HEPNN_ROW(P, 11, ES, BC, FMA, 22, 23)     \
  HEPNN_ROW(P, 12, ES, BC, FMA, 24, 25) HEPNN_ROW(P, 13, ES, BC, FMA, 26, 27)
#define HEPNN_ZERO(R) "vpxord %%zmm" #R ", %%zmm" #R ", %%zmm" #R "\n\t"
#define HEPNN_SAVE(R) "vmovaps %%zmm" #R ", " #R "*64(%[t])\n\t"
#define HEPNN_FOUR(X, R0, R1, R2, R3) X(R0) X(R1) X(R2) X(R3)
#define HEPNN_ALL(X)                                                                          \
  HEPNN_FOUR(X, 0, 1, 2, 3) HEPNN_FOUR(X, 4, 5, 6, 7) HEPNN_FOUR(X, 8, 9, 10, 11)            \
  HEPNN_FOUR(X, 12, 13, 14, 15) HEPNN_FOUR(X, 16, 17, 18, 19) HEPNN_FOUR(X, 20, 21, 22, 23) \
  HEPNN_FOUR(X, 24, 25, 26, 27)
#define HEPNN_KLOOP(ES, BC, FMA)                                                              \
  HEPNN_ALL(HEPNN_ZERO)                                                                       \
  "test %[n4], %[n4]\n\t"                                                                     \
  "jz 2f\n\t"                                                                                 \
  "1:\n\t"                                                                                    \
  "prefetcht0 1024(%[b])\n\t"                                                                 \
  HEPNN_STEP(0, ES, BC, FMA) HEPNN_STEP(1, ES, BC, FMA) HEPNN_STEP(2, ES, BC, FMA)            \
  HEPNN_STEP(3, ES, BC, FMA)                                                                  \
  "add $4*14*" ES ", %[a]\n\t"                                                                \
  "add $512, %[b]\n\t"                                                                        \
  "dec %[n4]\n\t"                                                                             \
  "jnz 1b\n\t"                                                                                \
  "2:\n\t"                                                                                    \
  "test %[n1], %[n1]\n\t"                                                                     \
  "jz 4f\n\t"                                                                                 \
  "3:\n\t"                                                                                    \
  HEPNN_STEP(0, ES, BC, FMA)                                                                  \
  "add $14*" ES ", %[a]\n\t"                                                                  \
  "add $128, %[b]\n\t"                                                                        \
  "dec %[n1]\n\t"                                                                             \
  "jnz 3b\n\t"                                                                                \
  "4:\n\t"                                                                                    \
  HEPNN_ALL(HEPNN_SAVE)
#define HEPNN_CLOBBERS                                                                        \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",    \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",        \
      "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm29",        \
      "xmm30", "xmm31", "memory", "cc"
template <typename S>
void avx512_ukernel(index_t k, const typename S::T* __restrict a, const typename S::T* __restrict b,
                    typename S::T* __restrict c, index_t ldc, typename S::T alpha,
                    typename S::T beta, index_t m, index_t n) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int W = S::W;
  for (index_t i = 0; i < m; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 2 * W - 1), _MM_HINT_T0);
  }
  alignas(64) T tile[MR * 2 * W];
  index_t n4 = k / 4, n1 = k % 4;
  if constexpr (W == 16)
    asm volatile(HEPNN_KLOOP("4", "vbroadcastss", "vfmadd231ps")
                 : [a] "+r"(a), [b] "+r"(b), [n4] "+r"(n4), [n1] "+r"(n1)
                 : [t] "r"(tile)
                 : HEPNN_CLOBBERS);
  else
    asm volatile(HEPNN_KLOOP("8", "vbroadcastsd", "vfmadd231pd")
                 : [a] "+r"(a), [b] "+r"(b), [n4] "+r"(n4), [n1] "+r"(n1)
                 : [t] "r"(tile)
                 : HEPNN_CLOBBERS);
#undef HEPNN_CLOBBERS
#undef HEPNN_KLOOP
#undef HEPNN_ALL
#undef HEPNN_FOUR
#undef HEPNN_SAVE
#undef HEPNN_ZERO
#undef HEPNN_STEP
#undef HEPNN_ROW

  // Masked stores make an edge tile as cheap as a full one.
  const V va = S::set1(alpha), vb = S::set1(beta);
  const typename S::M k0 = lane_mask<S>(n, 0), k1 = lane_mask<S>(n, W);
  for (index_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    V lo = S::mul(va, S::load(tile + i * 2 * W));
    V hi = S::mul(va, S::load(tile + i * 2 * W + W));
    if (beta != T(0)) {
      lo = S::fma(vb, S::mload(k0, ci), lo);
      hi = S::fma(vb, S::mload(k1, ci + W), hi);
    }
    S::mstore(ci, k0, lo);
    S::mstore(ci + W, k1, hi);
  }
}


}  // namespace

// Blocking for Sapphire Rapids (L1d 48K, L2 2M per core): the kc x 32 B panel (32 KB at kc = 256)
// stays in L1 beside the 14 x kc A panel it meets, the mc x kc A block (~340 KB) in L2, the
// kc x nc B block in L3.
KernelInfo<float> avx512_kernel_f32() {
  return {&avx512_ukernel<F32>, MR, 32, 336, 256, 4096, nullptr, nullptr};
}
KernelInfo<double> avx512_kernel_f64() {
  return {&avx512_ukernel<F64>, MR, 16, 168, 256, 2048, nullptr, nullptr};
}

// Each row: 16 lanes over K (the last partial chunk through a masked load), then the fixed
// reduction, so the sum order is one function of K whatever rows a call groups.
void avx512_dot_rows_f32(index_t n, index_t K, const float* mat, index_t ldm, const float* vec, float* out) {
  const index_t full = K / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (K - full)) - 1u);
  index_t j = 0;
  // Four rows share each load of the vector.
  for (; j + 4 <= n; j += 4) {
    const float* r0 = mat + j * ldm;
    const float* r1 = r0 + ldm;
    const float* r2 = r1 + ldm;
    const float* r3 = r2 + ldm;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (index_t p = 0; p < full; p += 16) {
      const __m512 v = _mm512_loadu_ps(vec + p);
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + p), v, a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + p), v, a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + p), v, a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + p), v, a3);
    }
    if (tail) {
      const __m512 v = _mm512_maskz_loadu_ps(tail, vec + full);
      a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r0 + full), v, a0);
      a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r1 + full), v, a1);
      a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r2 + full), v, a2);
      a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r3 + full), v, a3);
    }
    out[j] = _mm512_reduce_add_ps(a0);
    out[j + 1] = _mm512_reduce_add_ps(a1);
    out[j + 2] = _mm512_reduce_add_ps(a2);
    out[j + 3] = _mm512_reduce_add_ps(a3);
  }
  for (; j < n; ++j) {
    const float* r = mat + j * ldm;
    __m512 a = _mm512_setzero_ps();
    for (index_t p = 0; p < full; p += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(r + p), _mm512_loadu_ps(vec + p), a);
    if (tail) a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r + full), _mm512_maskz_loadu_ps(tail, vec + full), a);
    out[j] = _mm512_reduce_add_ps(a);
  }
}

}  // namespace hepnn::cpu::detail
