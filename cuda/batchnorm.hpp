// CUDA twin of cpp/ops/batchnorm.hpp (same signatures plus the stream to launch on).
// Batch normalisation over (N, C, S) with an optional (N, S) point mask, forward and backward.
#pragma once
#include <cstdint>

#include "core/types.hpp"

namespace hepnn::cuda {

// See cpp/ops/batchnorm.hpp. NOTE: the device cannot throw, so the "fewer than 2 valid values
// when training" check is the caller's (the Python layer counts the mask first).
template <typename T>
void batchnorm_forward(index_t N, index_t C, index_t S, const T* x, const std::uint8_t* mask,
                       const T* weight, const T* bias, T* running_mean, T* running_var,
                       bool training, double momentum, double eps, T* y, T* save_mean,
                       T* save_invstd, Stream stream);

template <typename T>
void batchnorm_backward(index_t N, index_t C, index_t S, const T* x, const std::uint8_t* mask,
                        const T* weight, const T* save_mean, const T* save_invstd, const T* dy,
                        bool training, T* dx, T* dweight, T* dbias, Stream stream);

}  // namespace hepnn::cuda
