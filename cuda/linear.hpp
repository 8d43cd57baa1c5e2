// CUDA twin of cpp/ops/linear.hpp (same signature plus the stream to launch on).
// Fused fully-connected layer: y = act(x @ W^T + b), PyTorch layout (W is out x in).
// Shape letters: B batch rows, I input features, O output features.
#pragma once
#include "core/types.hpp"

namespace hepnn::cuda {

// x: B x I, W: O x I, b: O or null, y: B x O. `z` (B x O, may be null) receives the
// pre-activation when the backward of `act` needs it (gelu, elu, selu, softplus, leaky_relu at 0).
template <typename T>
void linear_forward(index_t B, index_t I, index_t O, const T* x, const T* W, const T* b, Act act,
                    double alpha, T* y, T* z, Stream stream);

// Given dy (B x O) returns dx (B x I, may be null), dW (O x I), db (O, may be null).
// `z` may be null for activations whose derivative follows from y (none, relu, sigmoid, tanh).
// Unless act is none, a B x O scratch for dz comes from cudaMallocAsync on `stream` and is freed
// on it with cudaFreeAsync (no synchronisation).
template <typename T>
void linear_backward(index_t B, index_t I, index_t O, const T* x, const T* W, const T* z,
                     const T* y, const T* dy, Act act, double alpha, T* dx, T* dW, T* db, Stream stream);


}  // namespace hepnn::cuda
