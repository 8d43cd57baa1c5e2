// CUDA twin of cpp/ops/activation.hpp (same signature plus the stream to launch on).
// Elementwise activations, forward and backward, on contiguous buffers of n elements.
// Backward gets both the input x and the output y: each rule uses whichever is cheaper/stabler.
#pragma once
#include "core/types.hpp"

namespace hepnn::cuda {

// y = act(x). `alpha`: negative slope for leaky_relu, alpha for elu; ignored otherwise.
template <typename T>
void act_forward(Act act, index_t n, const T* x, T* y, double alpha, Stream stream);

// dx = dy * act'(x). x and y are the forward input and output; only the one the rule reads is
// loaded (x for leaky_relu, elu, selu, gelu*, softplus; y for relu, sigmoid, tanh).
template <typename T>
void act_backward(Act act, index_t n, const T* x, const T* y, const T* dy, T* dx, double alpha, Stream stream);


}  // namespace hepnn::cuda
