// AVX2+FMA float32 reductions of batch normalisation: four floats widen to four doubles per
// instruction, with two independent accumulator vectors per sum so the adds pipeline. Masked
// runs AND each lane with its mask bit (so padded values, even NaN, contribute exactly 0). The
// portable loops reach only SSE2's two doubles per instruction on baseline x86-64 builds.
#include "ops/batchnorm_avx2.hpp"

#include <immintrin.h>

#include <cstring>

namespace hepnn::cpu::avx2 {
namespace {

double hsum(__m256d v) {
  const __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
  const __m128d s = _mm_add_pd(lo, hi);
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// All-ones lanes where the 4 mask bytes at m are nonzero (all lanes when m is null).
__m256d lanes(const std::uint8_t* m) {
  if (!m) return _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
  int bytes;
  std::memcpy(&bytes, m, 4);
  const __m256i wide = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(bytes));
  const __m256i zero = _mm256_cmpeq_epi64(wide, _mm256_setzero_si256());
  return _mm256_castsi256_pd(_mm256_xor_si256(zero, _mm256_set1_epi64x(-1)));
}

__m256d load4(const float* x) { return _mm256_cvtps_pd(_mm_loadu_ps(x)); }

bool ok(const std::uint8_t* m, index_t i) { return !m || m[i]; }

}  // namespace

double bn_sum_f32(index_t n, const float* x, const std::uint8_t* m) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  index_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a0 = _mm256_add_pd(a0, _mm256_and_pd(lanes(m ? m + i : m), load4(x + i)));
    a1 = _mm256_add_pd(a1, _mm256_and_pd(lanes(m ? m + i + 4 : m), load4(x + i + 4)));
  }
  double s = hsum(_mm256_add_pd(a0, a1));
  for (; i < n; ++i)
    if (ok(m, i)) s += double(x[i]);
  return s;
}

void bn_dev_f32(index_t n, const float* x, const std::uint8_t* m, double mean, double& sd,
                double& sq) {
  const __m256d mv = _mm256_set1_pd(mean);
  __m256d d0 = _mm256_setzero_pd(), d1 = _mm256_setzero_pd();
  __m256d q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
  index_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d u = _mm256_and_pd(lanes(m ? m + i : m), _mm256_sub_pd(load4(x + i), mv));
    const __m256d v = _mm256_and_pd(lanes(m ? m + i + 4 : m), _mm256_sub_pd(load4(x + i + 4), mv));
    d0 = _mm256_add_pd(d0, u);
    d1 = _mm256_add_pd(d1, v);
    q0 = _mm256_fmadd_pd(u, u, q0);
    q1 = _mm256_fmadd_pd(v, v, q1);
  }
  double a = hsum(_mm256_add_pd(d0, d1)), b = hsum(_mm256_add_pd(q0, q1));
  for (; i < n; ++i) {
    if (!ok(m, i)) continue;
    const double d = double(x[i]) - mean;
    a += d;
    b += d * d;
  }
  sd += a;
  sq += b;
}

void bn_grad_sums_f32(index_t n, const float* x, const float* dy, const std::uint8_t* m,
                      double mean, double& sg, double& sgx, double& sd) {
  const __m256d mv = _mm256_set1_pd(mean);
  __m256d g0 = _mm256_setzero_pd(), g1 = _mm256_setzero_pd();
  __m256d p0 = _mm256_setzero_pd(), p1 = _mm256_setzero_pd();
  __m256d d0 = _mm256_setzero_pd(), d1 = _mm256_setzero_pd();
  index_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d ku = lanes(m ? m + i : m), kv = lanes(m ? m + i + 4 : m);
    const __m256d u = _mm256_and_pd(ku, _mm256_sub_pd(load4(x + i), mv));
    const __m256d v = _mm256_and_pd(kv, _mm256_sub_pd(load4(x + i + 4), mv));
    const __m256d gu = _mm256_and_pd(ku, load4(dy + i));
    const __m256d gv = _mm256_and_pd(kv, load4(dy + i + 4));
    g0 = _mm256_add_pd(g0, gu);
    g1 = _mm256_add_pd(g1, gv);
    p0 = _mm256_fmadd_pd(gu, u, p0);
    p1 = _mm256_fmadd_pd(gv, v, p1);
    d0 = _mm256_add_pd(d0, u);
    d1 = _mm256_add_pd(d1, v);
  }
  double a = hsum(_mm256_add_pd(g0, g1)), b = hsum(_mm256_add_pd(p0, p1));
  double c = hsum(_mm256_add_pd(d0, d1));
  for (; i < n; ++i) {
    if (!ok(m, i)) continue;
    const double g = double(dy[i]), d = double(x[i]) - mean;
    a += g;
    b += g * d;
    c += d;
  }
  sg += a;
  sgx += b;
  sd += c;
}

}  // namespace hepnn::cpu::avx2
