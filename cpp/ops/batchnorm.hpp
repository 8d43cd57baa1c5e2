// Batch normalisation over a contiguous input seen as (N, C, S): N samples, C channels, S points
// (spatial positions or particles; 1 for BatchNorm1d on (N, C)). Optional point mask (N, S).
#pragma once
#include <cstdint>

#include "core/types.hpp"

namespace hepnn::cpu {

// training: per-channel mean and biased variance over the valid (n, s) points, then
//   y = (x - mean) / sqrt(var + eps) * weight + bias
// and, when running_mean / running_var are non-null, in place
//   running_mean = (1 - momentum) running_mean + momentum mean
//   running_var  = (1 - momentum) running_var  + momentum var * M / (M - 1)   (M valid points).
// eval (training false): the running statistics (both required) normalise instead.
// mask (N, S), nonzero = valid, may be null (every point valid); padded points get y = 0.
// weight / bias may be null (1 / 0). save_mean / save_invstd (C,), may be null, receive the
// statistics used (what batchnorm_backward needs). Throws ValueError when training with M < 2.
template <typename T>
void batchnorm_forward(index_t N, index_t C, index_t S, const T* x, const std::uint8_t* mask,
                       const T* weight, const T* bias, T* running_mean, T* running_var,
                       bool training, double momentum, double eps, T* y, T* save_mean,
                       T* save_invstd);

// Gradients from the statistics saved by the forward pass. training: the batch statistics
// depend on x (the full rule); eval: they are constants, dx = dy * weight * invstd.
// dx, dweight, dbias may each be null (not wanted); padded points get dx = 0.
template <typename T>
void batchnorm_backward(index_t N, index_t C, index_t S, const T* x, const std::uint8_t* mask,
                        const T* weight, const T* save_mean, const T* save_invstd, const T* dy,
                        bool training, T* dx, T* dweight, T* dbias);

}  // namespace hepnn::cpu
