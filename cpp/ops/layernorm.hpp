// Layer normalisation over the last axis of a contiguous (rows, dim) array, forward and backward.
// Shape letters: R rows (everything before the normalised axis), C the normalised axis.
#pragma once
#include "core/types.hpp"

namespace hepnn::cpu {

// y = (x - mean) * rstd * weight + bias per row; weight / bias (C) may be null (1 and 0).
// mean and rstd (R each, may be null) receive the row statistics the backward needs.
template <typename T>
void layer_norm_forward(index_t R, index_t C, const T* x, const T* weight, const T* bias, double eps,
                        T* y, T* mean, T* rstd);

// dx (R x C) and, when non-null, dweight / dbias (C) from dy and the saved mean / rstd.
// dweight needs weight != null in the forward; the column sums are deterministic (fixed row
// chunks reduced in order, whatever the thread count).
template <typename T>
void layer_norm_backward(index_t R, index_t C, const T* x, const T* weight, const T* mean,
                         const T* rstd, const T* dy, T* dx, T* dweight, T* dbias);

}  // namespace hepnn::cpu
