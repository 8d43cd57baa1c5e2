// AVX2 float32 2x2 / stride-2 max pooling of one output row: 16 inputs of each of the two rows
// give 8 outputs (the rows' maximum, then of neighbouring pairs de-interleaved by shuffles). The
// portable loop reaches SSE2 only, and compilers do not vectorise its pairwise step well.
#include "ops/pool_avx2.hpp"

#include <immintrin.h>

#include <algorithm>

namespace hepnn::cpu::avx2 {

void max_pool_2x2_row_f32(index_t n, const float* r0, const float* r1, float* y) {
  index_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 lo = _mm256_max_ps(_mm256_loadu_ps(r0 + 2 * j), _mm256_loadu_ps(r1 + 2 * j));
    const __m256 hi = _mm256_max_ps(_mm256_loadu_ps(r0 + 2 * j + 8), _mm256_loadu_ps(r1 + 2 * j + 8));
    // Per 128-bit lane: even elements of lo|hi, then odd ones; the lanes come out in the order
    // lo0 hi0 lo1 hi1, which the 64-bit permute puts back in order.
    const __m256 even = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 odd = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    const __m256 m = _mm256_max_ps(even, odd);
    _mm256_storeu_ps(y + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), _MM_SHUFFLE(3, 1, 2, 0))));
  }
  for (; j < n; ++j) y[j] = std::max(std::max(r0[2 * j], r0[2 * j + 1]), std::max(r1[2 * j], r1[2 * j + 1]));
}

}  // namespace hepnn::cpu::avx2
