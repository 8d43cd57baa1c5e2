// Convolutions on the CPU, NCHW like PyTorch: conv2d with a fused bias + activation epilogue and
// its backward (dx, dw, db), and conv_transpose2d (the adjoint of conv2d) forward and backward.
// Conv1d runs as conv2d with H = 1. Geometry in ConvShape (ops/conv_shape.hpp).
#pragma once
#include "core/types.hpp"
#include "ops/conv_pool.hpp"
#include "ops/conv_shape.hpp"

namespace hepnn::cpu {

// x (B, C, H, W), w (O, C/groups, KH, KW), b (O) or null -> y = act(conv(x, w) + b) of shape
// (B, O, OH, OW). `z` (same shape, may be null) receives the pre-activation, needed by the
// backward of the activations for which act_needs_preactivation (ops/linear.hpp) is true.
template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, Act act, double alpha,
                    T* y, T* z);

// Inference fusion of conv2d_forward and max_pool2d_forward (no indices): y (B, O, pool.OH,
// pool.OW) = max_pool(act(conv(x, w) + b)); pool describes the pooling of the (B * O) conv
// output planes. Each sample's conv output stays in cache between the two.
template <typename T>
void conv2d_maxpool2d_forward(const ConvShape& s, const PoolShape& pool, const T* x, const T* w, const T* b,
                              Act act, double alpha, T* y);

// Gradients of conv2d_forward from dy: dx (may be null), dw, db (may be null). z may be null
// when the activation's derivative follows from y. Deterministic: the batch is summed in fixed
// chunks whose number does not depend on the thread count.
template <typename T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* z, const T* y,
                     const T* dy, Act act, double alpha, T* dx, T* dw, T* db);

// Transposed convolution: x (B, O, OH, OW), w (O, C/groups, KH, KW), b (C) or null ->
// y (B, C, H, W) (see the NOTE on ConvShape).
template <typename T>
void conv_transpose2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, T* y);

// Gradients of conv_transpose2d_forward: dx (may be null), dw, db (may be null).
template <typename T>
void conv_transpose2d_backward(const ConvShape& s, const T* x, const T* w, const T* dy, T* dx,
                               T* dw, T* db);

}  // namespace hepnn::cpu
