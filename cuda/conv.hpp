// CUDA twin of cpp/ops/conv.hpp (same signatures plus the stream to launch on): conv2d with a
// fused bias + activation epilogue and its backward, conv_transpose2d forward and backward.
// Scratch (im2col columns, dW partials) comes from the stream-ordered allocator (launch.cuh).
#pragma once
#include "core/types.hpp"
#include "ops/conv_pool.hpp"
#include "ops/conv_shape.hpp"

namespace hepnn::cuda {

template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, Act act, double alpha,
                    T* y, T* z, Stream stream);

// Conv output in stream-ordered scratch, then max pooling without indices.
template <typename T>
void conv2d_maxpool2d_forward(const ConvShape& s, const PoolShape& pool, const T* x, const T* w, const T* b,
                              Act act, double alpha, T* y, Stream stream);

template <typename T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* z, const T* y,
                     const T* dy, Act act, double alpha, T* dx, T* dw, T* db, Stream stream);

template <typename T>
void conv_transpose2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, T* y,
                              Stream stream);

template <typename T>
void conv_transpose2d_backward(const ConvShape& s, const T* x, const T* w, const T* dy, T* dx,
                               T* dw, T* db, Stream stream);

}  // namespace hepnn::cuda
