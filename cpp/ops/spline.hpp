// Monotone rational-quadratic spline (Durkan et al. 2019, "Neural Spline Flows"), elementwise:
// forward (x -> y, log|dy/dx|), inverse (y -> x, log|dx/dy|) and the backward of the forward.
// Shape letters: M transformed elements (everything of x), K bins. Each element has its own
// unnormalised widths (M, K), heights (M, K) and interior-knot derivatives (M, K-1); the
// softmax / softplus normalisation runs inside the kernels (see spline_math.hpp).
#pragma once
#include "core/types.hpp"

namespace hepnn {

// The spline maps [-bound, bound] onto itself with K bins; outside it is the identity (linear
// tails), so the boundary derivatives are 1. Every bin is at least min_width (min_height) of
// the interval wide (high), every interior derivative at least min_derivative.
struct SplineShape {
  index_t M = 0;
  int K = 0;
  double bound = 3.0, min_width = 1e-3, min_height = 1e-3, min_derivative = 1e-3;
};

constexpr int kSplineMaxBins = 256;

// Throws ValueError "[op] ..." unless M >= 0, 2 <= K <= kSplineMaxBins, bound finite and > 0,
// 0 < min_width * K < 1, 0 < min_height * K < 1 and min_derivative finite and > 0.
void check_spline_shape(const SplineShape& s, const char* op);

}  // namespace hepnn

namespace hepnn::cpu {

// y = spline(x), logdet = log|dy/dx|, elementwise. Throws ValueError when a width, height or
// derivative parameter is NaN (detected in the same pass).
template <typename T>
void spline_forward(const SplineShape& s, const T* x, const T* widths, const T* heights,
                    const T* derivs, T* y, T* logdet);

// x = spline^-1(y), logdet = log|dx/dy| = -log|dy/dx| at x.
template <typename T>
void spline_inverse(const SplineShape& s, const T* y, const T* widths, const T* heights,
                    const T* derivs, T* x, T* logdet);

// Gradients of sum(dy * y + dlogdet * logdet) of the forward w.r.t. x and the unnormalised
// parameters. dy / dlogdet may be null (zero); any output may be null (not wanted). Elements are
// independent, so the result does not depend on the thread count.
template <typename T>
void spline_backward(const SplineShape& s, const T* x, const T* widths, const T* heights,
                     const T* derivs, const T* dy, const T* dlogdet, T* dx, T* dwidths,
                     T* dheights, T* dderivs);

}  // namespace hepnn::cpu
