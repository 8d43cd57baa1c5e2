// Softmax and log-softmax over one axis of a contiguous array seen as (outer, dim, inner).
#pragma once
#include "core/types.hpp"

namespace hepnn::cpu {

// y = softmax(x) (or log_softmax when log) along the middle axis.
template <typename T>
void softmax_forward(index_t outer, index_t dim, index_t inner, const T* x, T* y, bool log);

// dx from the forward output y and the upstream gradient dy.
template <typename T>
void softmax_backward(index_t outer, index_t dim, index_t inner, const T* y, const T* dy, T* dx,
                      bool log);

}  // namespace hepnn::cpu
