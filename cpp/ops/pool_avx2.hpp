// AVX2 float32 rows of 2x2 / stride-2 max pooling (pool_avx2.cpp), values only: the inference
// path of the CNN's pools. Callers check hepnn::avx2_f32() first and pass rows free of NaN (the
// vector max does not propagate NaN as torch does); only built where HEPNN_HAVE_AVX2_KERNELS is
// defined.
#pragma once

#include "core/types.hpp"

namespace hepnn::cpu::avx2 {

// y[j] = max(r0[2j], r0[2j+1], r1[2j], r1[2j+1]) for j < n.
void max_pool_2x2_row_f32(index_t n, const float* r0, const float* r1, float* y);

}  // namespace hepnn::cpu::avx2
