// AVX2+FMA float32 inner loop of the direct (shallow) convolution in conv.cpp (conv_avx2.cpp).
// Callers check hepnn::use_avx2_fma() first; only built where HEPNN_HAVE_AVX2_KERNELS is defined.
#pragma once
#include "core/types.hpp"

namespace hepnn::cpu::avx2 {

// dst[j] = sum_t w[t] * src[t][off + j] for j in [0, n): all K taps summed in registers, one store.
void conv_taps_f32(index_t n, index_t K, const float* const* src, index_t off, const float* w, float* dst);

}  // namespace hepnn::cpu::avx2
