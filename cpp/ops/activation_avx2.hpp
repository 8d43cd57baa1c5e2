// AVX2+FMA float32 paths of the activations and of softmax's exp (activation_avx2.cpp). Callers
// check hepnn::use_avx2_fma() first; only built where HEPNN_HAVE_AVX2_KERNELS is defined.
#pragma once
#include "core/types.hpp"

namespace hepnn::cpu::avx2 {

// y = act(x) for the transcendental activations; false (nothing written) for the others, whose
// portable loops the compiler already vectorises.
bool act_forward_f32(Act act, index_t n, const float* x, float* y, float alpha);
// dx = dy * act'(x) for elu, selu, gelu, gelu_tanh, softplus; false for the others.
bool act_backward_f32(Act act, index_t n, const float* x, const float* dy, float* dx, float alpha);

// Softmax's building blocks. y[i] = exp(x[i] - shift) (x[i] - shift <= 0) and returns the sum
// of y in double; y may be null (the sum only).
double exp_shifted_sum_f32(index_t n, const float* x, float shift, float* y);
// y[i] = exp(x[i]) for x[i] <= 0; y may be x.
void exp_nonpos_f32(index_t n, const float* x, float* y);
// The largest element (n >= 1); with a NaN in x the result may or may not be NaN.
float max_f32(index_t n, const float* x);

}  // namespace hepnn::cpu::avx2
