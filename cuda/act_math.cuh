// Activation formulas on the device, the one place for them: used by the elementwise kernels
// (activation.cu) and by the fused epilogue and backward of the linear layer (linear.cu).
// Definitions follow torch (selu constants, gelu erf/tanh forms, softplus beta=1 threshold=20).
#pragma once
#include <cuda_runtime.h>

#include "core/types.hpp"
#include "cuda/dmath.cuh"

namespace hepnn::cuda {

constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kInvSqrt2 = 0.70710678118654752440084436210485;
constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438;
constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;
constexpr double kGeluKappa = 0.044715;
constexpr double kSoftplusThreshold = 20.0;

// True when the backward of `act` reads the pre-activation x (the others need only y).
__host__ __device__ constexpr bool act_reads_input(Act act) {
  return act == Act::leaky_relu || act == Act::elu || act == Act::selu || act == Act::gelu_erf ||
         act == Act::gelu_tanh || act == Act::softplus;
}

// True when the backward of `act` reads the output y (none reads neither).
__host__ __device__ constexpr bool act_reads_output(Act act) {
  return act == Act::relu || act == Act::sigmoid || act == Act::tanh;
}

// y = act(x). `alpha`: negative slope of leaky_relu, alpha of elu.
template <typename T>
__device__ __forceinline__ T act_apply(Act act, T x, T alpha) {
  switch (act) {
    case Act::relu:
      return x < T(0) ? T(0) : x;  // NaN passes through, as in torch
    case Act::leaky_relu:
      return x > T(0) ? x : x * alpha;
    case Act::elu:
      return x > T(0) ? x : alpha * dm::expm1(x);
    case Act::selu:
      return T(kSeluScale) * (x > T(0) ? x : T(kSeluAlpha) * dm::expm1(x));
    case Act::gelu_erf:
      return T(0.5) * x * (T(1) + dm::erf(x * T(kInvSqrt2)));
    case Act::gelu_tanh:
      return T(0.5) * x * (T(1) + dm::tanh(T(kSqrt2OverPi) * (x + T(kGeluKappa) * x * x * x)));
    case Act::sigmoid:
      return dm::sigmoid(x);
    case Act::tanh:
      return dm::tanh(x);
    case Act::softplus:
      return x > T(kSoftplusThreshold) ? x : dm::log1p(dm::exp(x));
    case Act::none:
    default:
      return x;
  }
}

// dx = dy * act'(x), written as a select where torch selects (so an infinite dy times a zero
// slope gives 0, not NaN). x is only meaningful when act_reads_input(act), y when act_reads_output(act).
template <typename T>
__device__ __forceinline__ T act_grad(Act act, T x, T y, T dy, T alpha) {
  switch (act) {
    case Act::relu:
      return y > T(0) ? dy : T(0);
    case Act::leaky_relu:
      return x > T(0) ? dy : dy * alpha;
    case Act::elu:
      return x > T(0) ? dy : dy * alpha * dm::exp(x);
    case Act::selu:
      return x > T(0) ? dy * T(kSeluScale) : dy * T(kSeluScale * kSeluAlpha) * dm::exp(x);
    case Act::gelu_erf: {
      const T cdf = T(0.5) * (T(1) + dm::erf(x * T(kInvSqrt2)));
      const T pdf = T(kInvSqrt2Pi) * dm::exp(T(-0.5) * x * x);
      return dy * (cdf + x * pdf);
    }
    case Act::gelu_tanh: {
      const T x2 = x * x;
      const T t = dm::tanh(T(kSqrt2OverPi) * (x + T(kGeluKappa) * x2 * x));
      const T dinner = T(kSqrt2OverPi) * (T(1) + T(3.0 * kGeluKappa) * x2);
      return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner);
    }
    case Act::sigmoid:
      return dy * y * (T(1) - y);
    case Act::tanh:
      return dy * (T(1) - y * y);
    case Act::softplus: {
      if (x > T(kSoftplusThreshold)) return dy;
      const T e = dm::exp(x);
      return dy * e / (e + T(1));
    }
    case Act::none:
    default:
      return dy;
  }
}

}  // namespace hepnn::cuda
