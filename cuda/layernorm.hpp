// CUDA twin of cpp/ops/layernorm.hpp (same signature plus the stream to launch on).
// Layer normalisation over the last axis of a contiguous (R, C) array, forward and backward.
#pragma once
#include "core/types.hpp"

namespace hepnn::cuda {

// y = (x - mean) * rstd * weight + bias per row; weight / bias (C) may be null; mean / rstd
// (R each) may be null.
template <typename T>
void layer_norm_forward(index_t R, index_t C, const T* x, const T* weight, const T* bias, double eps,
                        T* y, T* mean, T* rstd, Stream stream);

// dx (may be null) and dweight / dbias (C, may be null) from dy and the saved statistics. The
// column sums go through a fixed number of row-chunk partials (cudaMallocAsync scratch on
// `stream`) reduced in order: deterministic.
template <typename T>
void layer_norm_backward(index_t R, index_t C, const T* x, const T* weight, const T* mean,
                         const T* rstd, const T* dy, T* dx, T* dweight, T* dbias, Stream stream);

}  // namespace hepnn::cuda
