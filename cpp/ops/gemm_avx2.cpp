// AVX2+FMA GEMM micro-kernels (compiled with -mavx2 -mfma, chosen at run time): a 6x16 fp32 and
// a 6x8 fp64 register tile, i.e. 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16 ymm,
// and the transposing pack routines (A as stored, B transposed) that feed them.
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
  // The C tile is read at the end; a row of it spans two cache lines unless ldc keeps it aligned.
  for (index_t i = 0; i < m; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }

  V c00 = S::zero(), c01 = S::zero(), c10 = S::zero(), c11 = S::zero();
  V c20 = S::zero(), c21 = S::zero(), c30 = S::zero(), c31 = S::zero();
  V c40 = S::zero(), c41 = S::zero(), c50 = S::zero(), c51 = S::zero();
  // The k loop is written in assembly: with intrinsics GCC spills one accumulator per unrolled
  // iteration (it hoists broadcasts and runs out of the 16 ymm registers), putting a
  // store-to-load round trip on an FMA dependency chain. ymm13-15 hold the operands.
#define HEPNN_ROW(P, R, ES, BC, FMA, C0, C1)                                      \
  BC " " #P "*6*" ES "+" #R "*" ES "(%[a]), %%ymm13\n\t"                          \
  FMA " %%ymm14, %%ymm13, %[" C0 "]\n\t"                                          \
  FMA " %%ymm15, %%ymm13, %[" C1 "]\n\t"
#define HEPNN_STEP(P, ES, BC, FMA)                                                \
  "vmovups " #P "*64(%[b]), %%ymm14\n\t"                                          \
  "vmovups " #P "*64+32(%[b]), %%ymm15\n\t"                                       \
  HEPNN_ROW(P, 0, ES, BC, FMA, "c00", "c01") HEPNN_ROW(P, 1, ES, BC, FMA, "c10", "c11") \
  HEPNN_ROW(P, 2, ES, BC, FMA, "c20", "c21") HEPNN_ROW(P, 3, ES, BC, FMA, "c30", "c31") \
  HEPNN_ROW(P, 4, ES, BC, FMA, "c40", "c41") HEPNN_ROW(P, 5, ES, BC, FMA, "c50", "c51")
#define HEPNN_OPERANDS                                                            \
  : [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20), \
    [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31), [c40] "+x"(c40), [c41] "+x"(c41), \
    [c50] "+x"(c50), [c51] "+x"(c51)                                               \
  : [a] "r"(a), [b] "r"(b)                                                         \
  : "xmm13", "xmm14", "xmm15", "memory"
  index_t p = 0;
  if constexpr (W == 8) {
    for (; p + 4 <= k; p += 4) {
      asm volatile("prefetcht0 512(%[b])\n\t" HEPNN_STEP(0, "4", "vbroadcastss", "vfmadd231ps")
                   HEPNN_STEP(1, "4", "vbroadcastss", "vfmadd231ps")
                   HEPNN_STEP(2, "4", "vbroadcastss", "vfmadd231ps")
                   HEPNN_STEP(3, "4", "vbroadcastss", "vfmadd231ps") HEPNN_OPERANDS);
      a += 4 * MR;
      b += 4 * NR;
    }
    for (; p < k; ++p) {
      asm volatile(HEPNN_STEP(0, "4", "vbroadcastss", "vfmadd231ps") HEPNN_OPERANDS);
      a += MR;
      b += NR;
    }
  } else {
    for (; p + 4 <= k; p += 4) {
      asm volatile("prefetcht0 512(%[b])\n\t" HEPNN_STEP(0, "8", "vbroadcastsd", "vfmadd231pd")
                   HEPNN_STEP(1, "8", "vbroadcastsd", "vfmadd231pd")
                   HEPNN_STEP(2, "8", "vbroadcastsd", "vfmadd231pd")
                   HEPNN_STEP(3, "8", "vbroadcastsd", "vfmadd231pd") HEPNN_OPERANDS);
      a += 4 * MR;
      b += 4 * NR;
    }
    for (; p < k; ++p) {
      asm volatile(HEPNN_STEP(0, "8", "vbroadcastsd", "vfmadd231pd") HEPNN_OPERANDS);
      a += MR;
      b += NR;
    }
  }
#undef HEPNN_OPERANDS
#undef HEPNN_STEP
#undef HEPNN_ROW

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

// In-register transposes for the packing routines.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

inline void transpose4(__m256d r[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

// Gather `rows` (<= R) source rows into one panel of R values per k step; missing rows are 0.
template <typename T, int R>
void pack_tail(const T* src, index_t ld, index_t rows, index_t p, index_t kc, T* dst) {
  for (; p < kc; ++p)
    for (int i = 0; i < R; ++i) dst[p * R + i] = i < rows ? src[i * ld + p] : T(0);
}

// A as stored (fp32), 6-row panels: 8 k steps of 6 rows -> one 8x8 transpose, 6 values stored
// per step (4 + 2).
void pack_a_n_f32(const float* A, index_t lda, index_t mc, index_t kc, float* out) {
  for (index_t ir = 0; ir < mc; ir += 6) {
    const index_t m = std::min<index_t>(6, mc - ir);
    const float* src = A + ir * lda;
    float* dst = out + ir * kc;
    index_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = i < m ? _mm256_loadu_ps(src + i * lda + p) : _mm256_setzero_ps();
      transpose8(r);
      for (int j = 0; j < 8; ++j) {
        float* d = dst + (p + j) * 6;
        _mm_storeu_ps(d, _mm256_castps256_ps128(r[j]));
        _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), _mm256_extractf128_ps(r[j], 1));
      }
    }
    pack_tail<float, 6>(src, lda, m, p, kc, dst);
  }
}

// A as stored (fp64), 6-row panels: rows 0-3 by a 4x4 transpose, rows 4-5 by pair unpacks.
void pack_a_n_f64(const double* A, index_t lda, index_t mc, index_t kc, double* out) {
  for (index_t ir = 0; ir < mc; ir += 6) {
    const index_t m = std::min<index_t>(6, mc - ir);
    const double* src = A + ir * lda;
    double* dst = out + ir * kc;
    index_t p = 0;
    for (; p + 4 <= kc; p += 4) {
      __m256d r[6];
      for (int i = 0; i < 6; ++i) r[i] = i < m ? _mm256_loadu_pd(src + i * lda + p) : _mm256_setzero_pd();
      transpose4(r);
      const __m256d lo = _mm256_unpacklo_pd(r[4], r[5]), hi = _mm256_unpackhi_pd(r[4], r[5]);
      const __m128d pairs[4] = {_mm256_castpd256_pd128(lo), _mm256_castpd256_pd128(hi),
                                _mm256_extractf128_pd(lo, 1), _mm256_extractf128_pd(hi, 1)};
      for (int j = 0; j < 4; ++j) {
        double* d = dst + (p + j) * 6;
        _mm256_storeu_pd(d, r[j]);
        _mm_storeu_pd(d + 4, pairs[j]);
      }
    }
    pack_tail<double, 6>(src, lda, m, p, kc, dst);
  }
}

// B transposed (fp32), 16-column panels: the panel's 16 stored rows, 8 k steps at a time, as
// two 8x8 transposes.
void pack_b_t_f32(const float* B, index_t ldb, index_t nc, index_t kc, float* out) {
  for (index_t jr = 0; jr < nc; jr += 16) {
    const index_t n = std::min<index_t>(16, nc - jr);
    const float* src = B + jr * ldb;
    float* dst = out + jr * kc;
    index_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      __m256 lo[8], hi[8];
      for (int i = 0; i < 8; ++i) {
        lo[i] = i < n ? _mm256_loadu_ps(src + i * ldb + p) : _mm256_setzero_ps();
        hi[i] = i + 8 < n ? _mm256_loadu_ps(src + (i + 8) * ldb + p) : _mm256_setzero_ps();
      }
      transpose8(lo);
      transpose8(hi);
      for (int j = 0; j < 8; ++j) {
        _mm256_storeu_ps(dst + (p + j) * 16, lo[j]);
        _mm256_storeu_ps(dst + (p + j) * 16 + 8, hi[j]);
      }
    }
    pack_tail<float, 16>(src, ldb, n, p, kc, dst);
  }
}

// B transposed (fp64), 8-column panels: two 4x4 transposes per 4 k steps.
void pack_b_t_f64(const double* B, index_t ldb, index_t nc, index_t kc, double* out) {
  for (index_t jr = 0; jr < nc; jr += 8) {
    const index_t n = std::min<index_t>(8, nc - jr);
    const double* src = B + jr * ldb;
    double* dst = out + jr * kc;
    index_t p = 0;
    for (; p + 4 <= kc; p += 4) {
      __m256d lo[4], hi[4];
      for (int i = 0; i < 4; ++i) {
        lo[i] = i < n ? _mm256_loadu_pd(src + i * ldb + p) : _mm256_setzero_pd();
        hi[i] = i + 4 < n ? _mm256_loadu_pd(src + (i + 4) * ldb + p) : _mm256_setzero_pd();
      }
      transpose4(lo);
      transpose4(hi);
      for (int j = 0; j < 4; ++j) {
        _mm256_storeu_pd(dst + (p + j) * 8, lo[j]);
        _mm256_storeu_pd(dst + (p + j) * 8 + 4, hi[j]);
      }
    }
    pack_tail<double, 8>(src, ldb, n, p, kc, dst);
  }
}

}  // namespace

// Blocking for Zen-class cores (L1d 32K, L2 512K): the kc x nr B panel (16 KB) stays in L1,
// the mc x kc A block (~150 KB) in L2, the kc x nc B block in L3.
KernelInfo<float> avx2_kernel_f32() {
  return {&avx2_ukernel<F32>, 6, 16, 144, 256, 4080, &pack_a_n_f32, &pack_b_t_f32};
}
KernelInfo<double> avx2_kernel_f64() {
  return {&avx2_ukernel<F64>, 6, 8, 72, 256, 2040, &pack_a_n_f64, &pack_b_t_f64};
}

namespace {

float hsum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// One row: eight lanes over K, a fixed horizontal sum, then the scalar tail (the same sequence
// the four-row loop applies to each of its rows).
float dot_row(index_t K, const float* r, const float* v) {
  __m256 a = _mm256_setzero_ps();
  index_t p = 0;
  for (; p + 8 <= K; p += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(r + p), _mm256_loadu_ps(v + p), a);
  float s = hsum8(a);
  for (; p < K; ++p) s += r[p] * v[p];
  return s;
}

}  // namespace

void avx2_dot_rows_f32(index_t n, index_t K, const float* mat, index_t ldm, const float* vec, float* out) {
  index_t j = 0;
  // Four rows share each load of the vector.
  for (; j + 4 <= n; j += 4) {
    const float* r0 = mat + j * ldm;
    const float* r1 = r0 + ldm;
    const float* r2 = r1 + ldm;
    const float* r3 = r2 + ldm;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    index_t p = 0;
    for (; p + 8 <= K; p += 8) {
      const __m256 v = _mm256_loadu_ps(vec + p);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0 + p), v, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1 + p), v, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2 + p), v, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3 + p), v, a3);
    }
    float s0 = hsum8(a0), s1 = hsum8(a1), s2 = hsum8(a2), s3 = hsum8(a3);
    for (; p < K; ++p) {
      s0 += r0[p] * vec[p];
      s1 += r1[p] * vec[p];
      s2 += r2[p] * vec[p];
      s3 += r3[p] * vec[p];
    }
    out[j] = s0;
    out[j + 1] = s1;
    out[j + 2] = s2;
    out[j + 3] = s3;
  }
  for (; j < n; ++j) out[j] = dot_row(K, mat + j * ldm, vec);
}

}  // namespace hepnn::cpu::detail
