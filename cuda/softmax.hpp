// CUDA twin of cpp/ops/softmax.hpp (same signature plus the stream to launch on).
// Softmax and log-softmax over one axis of a contiguous array seen as (outer, dim, inner).
#pragma once
#include "core/types.hpp"

namespace hepnn::cuda {

// y = softmax(x) (or log_softmax when log) along the middle axis.
template <typename T>
void softmax_forward(index_t outer, index_t dim, index_t inner, const T* x, T* y, bool log, Stream stream);

// dx from the forward output y and the upstream gradient dy.
template <typename T>
void softmax_backward(index_t outer, index_t dim, index_t inner, const T* y, const T* dy, T* dx,
                      bool log, Stream stream);

}  // namespace hepnn::cuda
