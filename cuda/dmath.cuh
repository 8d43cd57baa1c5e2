// Precision-exact device math: float arguments call the float functions (expf, ...), double the
// double ones, so no float kernel silently computes in double or the reverse.
#pragma once
#include <cuda_runtime.h>

namespace hepnn::cuda::dm {

#define HEPNN_DM_UNARY(name, f32, f64)                                         \
  __device__ __forceinline__ float name(float x) { return f32(x); }          \
  __device__ __forceinline__ double name(double x) { return f64(x); }

HEPNN_DM_UNARY(exp, ::expf, ::exp)
HEPNN_DM_UNARY(expm1, ::expm1f, ::expm1)
HEPNN_DM_UNARY(log, ::logf, ::log)
HEPNN_DM_UNARY(log1p, ::log1pf, ::log1p)
HEPNN_DM_UNARY(erf, ::erff, ::erf)
HEPNN_DM_UNARY(tanh, ::tanhf, ::tanh)
HEPNN_DM_UNARY(sqrt, ::sqrtf, ::sqrt)
HEPNN_DM_UNARY(fabs, ::fabsf, ::fabs)
#undef HEPNN_DM_UNARY

__device__ __forceinline__ bool isnan(float x) { return ::isnan(x); }
__device__ __forceinline__ bool isnan(double x) { return ::isnan(x); }

template <typename T>
__device__ __forceinline__ T neg_inf() {
  return -__int_as_float(0x7f800000);
}
template <>
__device__ __forceinline__ double neg_inf<double>() {
  return -__longlong_as_double(0x7ff0000000000000LL);
}

template <typename T>
__device__ __forceinline__ T quiet_nan() {
  return __int_as_float(0x7fc00000);
}
template <>
__device__ __forceinline__ double quiet_nan<double>() {
  return __longlong_as_double(0x7ff8000000000000LL);
}

// Logistic function without overflow for large |x|.
template <typename T>
__device__ __forceinline__ T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}

}  // namespace hepnn::cuda::dm
