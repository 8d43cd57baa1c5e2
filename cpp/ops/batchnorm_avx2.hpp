// AVX2 float32 reductions of batch normalisation (batchnorm_avx2.cpp): sums in double over one
// run of points; m (the run's mask bytes, nonzero = valid) may be null (all valid). Callers check hepnn::use_avx2_fma() first; only built where
// HEPNN_HAVE_AVX2_KERNELS is defined.
#pragma once
#include <cstdint>

#include "core/types.hpp"

namespace hepnn::cpu::avx2 {

// sum x[i] in double.
double bn_sum_f32(index_t n, const float* x, const std::uint8_t* m);
// sd += sum (x[i] - mean), sq += sum (x[i] - mean)^2, in double.
void bn_dev_f32(index_t n, const float* x, const std::uint8_t* m, double mean, double& sd,
                double& sq);
// sg += sum dy[i], sgx += sum dy[i] (x[i] - mean), sd += sum (x[i] - mean), in double.
void bn_grad_sums_f32(index_t n, const float* x, const float* dy, const std::uint8_t* m,
                      double mean, double& sg, double& sgx, double& sd);

}  // namespace hepnn::cpu::avx2
