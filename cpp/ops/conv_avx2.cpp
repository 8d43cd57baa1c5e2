// AVX2+FMA float32 kernel of the direct convolution (see conv_avx2.hpp): 32 outputs in four
// registers accumulate every tap before a single store, so the output row is written once
// instead of once per tap. Compiled with -mavx2 -mfma (CMake's *_avx2.cpp rule).
#include "ops/conv_avx2.hpp"

#include <immintrin.h>

namespace hepnn::cpu::avx2 {

void conv_taps_f32(index_t n, index_t K, const float* const* src, index_t off, const float* w, float* dst) {
  index_t j = 0;
  for (; j + 32 <= n; j += 32) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (index_t t = 0; t < K; ++t) {
      const __m256 wt = _mm256_broadcast_ss(w + t);
      const float* s = src[t] + off + j;
      a0 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s), a0);
      a1 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 8), a1);
      a2 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 16), a2);
      a3 = _mm256_fmadd_ps(wt, _mm256_loadu_ps(s + 24), a3);
    }
    _mm256_storeu_ps(dst + j, a0);
    _mm256_storeu_ps(dst + j + 8, a1);
    _mm256_storeu_ps(dst + j + 16, a2);
    _mm256_storeu_ps(dst + j + 24, a3);
  }
  for (; j + 8 <= n; j += 8) {
    __m256 a = _mm256_setzero_ps();
    for (index_t t = 0; t < K; ++t) a = _mm256_fmadd_ps(_mm256_broadcast_ss(w + t), _mm256_loadu_ps(src[t] + off + j), a);
    _mm256_storeu_ps(dst + j, a);
  }
  for (; j < n; ++j) {
    float a = 0.0f;
    for (index_t t = 0; t < K; ++t) a += w[t] * src[t][off + j];
    dst[j] = a;
  }
}

}  // namespace hepnn::cpu::avx2
