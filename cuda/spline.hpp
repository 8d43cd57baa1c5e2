// CUDA twin of cpp/ops/spline.hpp (same signatures plus the stream to launch on): the
// rational-quadratic spline forward, inverse and backward of the forward, one thread per element.
// NOTE: unlike the CPU kernels these do not report NaN parameters (that would need a host
// synchronisation); an element with a NaN parameter gets NaN outputs.
#pragma once
#include "core/types.hpp"
#include "ops/spline.hpp"

namespace hepnn::cuda {

template <typename T>
void spline_forward(const SplineShape& s, const T* x, const T* widths, const T* heights,
                    const T* derivs, T* y, T* logdet, Stream stream);

template <typename T>
void spline_inverse(const SplineShape& s, const T* y, const T* widths, const T* heights,
                    const T* derivs, T* x, T* logdet, Stream stream);

template <typename T>
void spline_backward(const SplineShape& s, const T* x, const T* widths, const T* heights,
                     const T* derivs, const T* dy, const T* dlogdet, T* dx, T* dwidths,
                     T* dheights, T* dderivs, Stream stream);

}  // namespace hepnn::cuda
