// CUDA fused optimizer steps, one grid-stride kernel per optimizer: SGD (momentum, dampening,
// nesterov), Adam / AdamW (amsgrad), RMSprop (centered, momentum), Adagrad (lr decay); float and
// double. Per-element formulas follow torch.optim's single-tensor code; scalars are folded on the host.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "cuda/device.hpp"
#include "cuda/dmath.cuh"
#include "cuda/launch.cuh"
#include "cuda/optim.hpp"

namespace hepnn::cuda {
namespace {

// torch.lerp: start + w (end - start), evaluated from the nearer end for w >= 0.5.
template <typename T>
__device__ __forceinline__ T lerp(T start, T end, T w) {
  return w < T(0.5) ? start + w * (end - start) : end - (end - start) * (T(1) - w);
}

// torch.maximum: NaN in either operand gives NaN.
template <typename T>
__device__ __forceinline__ T nan_max(T a, T b) {
  return a > b ? a : (dm::isnan(a) ? a : b);
}

#define HEPNN_GRID_STRIDE(i, n)                                                      \
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);        \
       i += index_t(gridDim.x) * blockDim.x)

template <typename T>
__global__ void sgd_kernel(index_t n, T* __restrict__ p, const T* __restrict__ g,
                           T* __restrict__ buf, T lr, T momentum, T one_minus_dampening, T wd,
                           bool nesterov, bool maximize, bool first) {
  HEPNN_GRID_STRIDE(i, n) {
    T d = maximize ? -g[i] : g[i];
    if (wd != T(0)) d += wd * p[i];
    if (momentum != T(0)) {
      const T b = first ? d : momentum * buf[i] + one_minus_dampening * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] -= lr * d;
  }
}

template <typename T>
__global__ void adam_kernel(index_t n, T* __restrict__ p, const T* __restrict__ g,
                            T* __restrict__ m, T* __restrict__ v, T* __restrict__ vmax,
                            T beta1c, T beta2, T beta2c, T eps, T wd, T decay_factor,
                            T step_size, T bc2_sqrt, bool decoupled, bool amsgrad,
                            bool maximize) {
  HEPNN_GRID_STRIDE(i, n) {
    T gi = maximize ? -g[i] : g[i];
    T pi = p[i];
    if (wd != T(0)) {
      if (decoupled) pi *= decay_factor;
      else gi += wd * pi;
    }
    const T mi = lerp(m[i], gi, beta1c);
    const T vi = v[i] * beta2 + beta2c * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    T second = vi;
    if (amsgrad) {
      second = nan_max(vmax[i], vi);
      vmax[i] = second;
    }
    const T denom = dm::sqrt(second) / bc2_sqrt + eps;
    p[i] = pi - step_size * (mi / denom);
  }
}

template <typename T>
__global__ void rmsprop_kernel(index_t n, T* __restrict__ p, const T* __restrict__ g,
                               T* __restrict__ sq, T* __restrict__ ga, T* __restrict__ buf, T lr,
                               T alpha, T alphac, T eps, T wd, T momentum, bool centered,
                               bool maximize) {
  HEPNN_GRID_STRIDE(i, n) {
    T gi = maximize ? -g[i] : g[i];
    if (wd != T(0)) gi += wd * p[i];
    const T s = sq[i] * alpha + alphac * (gi * gi);
    sq[i] = s;
    T avg;
    if (centered) {
      const T a = lerp(ga[i], gi, alphac);
      ga[i] = a;
      avg = dm::sqrt(s - a * a);
    } else {
      avg = dm::sqrt(s);
    }
    avg += eps;
    if (momentum > T(0)) {
      const T b = buf[i] * momentum + gi / avg;
      buf[i] = b;
      p[i] -= lr * b;
    } else {
      p[i] -= lr * (gi / avg);
    }
  }
}

template <typename T>
__global__ void adagrad_kernel(index_t n, T* __restrict__ p, const T* __restrict__ g,
                               T* __restrict__ ss, T clr, T wd, T eps, bool maximize) {
  HEPNN_GRID_STRIDE(i, n) {
    T gi = maximize ? -g[i] : g[i];
    if (wd != T(0)) gi += wd * p[i];
    const T s = ss[i] + gi * gi;
    ss[i] = s;
    p[i] -= clr * (gi / (dm::sqrt(s) + eps));
  }
}

#undef HEPNN_GRID_STRIDE

}  // namespace

template <typename T>
void sgd_step(index_t n, T* p, const T* g, T* momentum_buf, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool maximize, bool first,
              Stream stream) {
  const char* op = "sgd";
  check_value(n >= 0, op, "negative element count");
  check_value(momentum == 0.0 || momentum_buf != nullptr, op, "momentum needs a momentum buffer");
  if (n == 0) return;
  sgd_kernel<T><<<grid_for(n), kBlock, 0, as_cuda(stream)>>>(
      n, p, g, momentum_buf, T(lr), T(momentum), T(1.0 - dampening), T(weight_decay), nesterov,
      maximize, first);
  check_launch(op);
}

template <typename T>
void adam_step(index_t n, T* p, const T* g, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
               std::int64_t step, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled, bool amsgrad, bool maximize, Stream stream) {
  const char* op = decoupled ? "adamw" : "adam";
  check_value(n >= 0, op, "negative element count");
  check_value(step >= 1, op, "step counts from 1");
  check_value(!amsgrad || max_exp_avg_sq != nullptr, op, "amsgrad needs max_exp_avg_sq");
  if (n == 0) return;
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2 = 1.0 - std::pow(beta2, double(step));
  adam_kernel<T><<<grid_for(n), kBlock, 0, as_cuda(stream)>>>(
      n, p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, T(1.0 - beta1), T(beta2), T(1.0 - beta2),
      T(eps), T(weight_decay), T(1.0 - lr * weight_decay), T(lr / bc1), T(std::sqrt(bc2)),
      decoupled, amsgrad, maximize);
  check_launch(op);
}

template <typename T>
void rmsprop_step(index_t n, T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buf,
                  double lr, double alpha, double eps, double weight_decay, double momentum,
                  bool centered, bool maximize, Stream stream) {
  const char* op = "rmsprop";
  check_value(n >= 0, op, "negative element count");
  check_value(!centered || grad_avg != nullptr, op, "centered needs grad_avg");
  check_value(!(momentum > 0.0) || momentum_buf != nullptr, op, "momentum needs a momentum buffer");
  if (n == 0) return;
  rmsprop_kernel<T><<<grid_for(n), kBlock, 0, as_cuda(stream)>>>(
      n, p, g, square_avg, grad_avg, momentum_buf, T(lr), T(alpha), T(1.0 - alpha), T(eps),
      T(weight_decay), T(momentum), centered, maximize);
  check_launch(op);
}

template <typename T>
void adagrad_step(index_t n, T* p, const T* g, T* state_sum, std::int64_t step, double lr,
                  double lr_decay, double weight_decay, double eps, bool maximize, Stream stream) {
  const char* op = "adagrad";
  check_value(n >= 0, op, "negative element count");
  check_value(step >= 1, op, "step counts from 1");
  if (n == 0) return;
  const double clr = lr / (1.0 + double(step - 1) * lr_decay);
  adagrad_kernel<T><<<grid_for(n), kBlock, 0, as_cuda(stream)>>>(
      n, p, g, state_sum, T(clr), T(weight_decay), T(eps), maximize);
  check_launch(op);
}

#define HEPNN_OPTIM_INSTANTIATE(T)                                                             \
  template void sgd_step<T>(index_t, T*, const T*, T*, double, double, double, double, bool,   \
                            bool, bool, Stream);                                               \
  template void adam_step<T>(index_t, T*, const T*, T*, T*, T*, std::int64_t, double, double,  \
                             double, double, double, bool, bool, bool, Stream);                \
  template void rmsprop_step<T>(index_t, T*, const T*, T*, T*, T*, double, double, double,     \
                                double, double, bool, bool, Stream);                           \
  template void adagrad_step<T>(index_t, T*, const T*, T*, std::int64_t, double, double,       \
                                double, double, bool, Stream);
HEPNN_OPTIM_INSTANTIATE(float)
HEPNN_OPTIM_INSTANTIATE(double)
#undef HEPNN_OPTIM_INSTANTIATE

}  // namespace hepnn::cuda
