// CUDA elementwise activations, forward and backward, for every Act (formulas in act_math.cuh).
// Variants: one grid-stride kernel per direction, float and double; the Act switch is uniform
// across a launch, so it costs no divergence.
#include <cuda_runtime.h>

#include "cuda/act_math.cuh"
#include "cuda/activation.hpp"
#include "cuda/device.hpp"
#include "cuda/launch.cuh"

namespace hepnn::cuda {
namespace {

template <typename T>
__global__ void act_forward_kernel(Act act, index_t n, const T* __restrict__ x, T* __restrict__ y,
                                   T alpha) {
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    y[i] = act_apply(act, x[i], alpha);
}

template <typename T>
__global__ void act_backward_kernel(Act act, index_t n, const T* __restrict__ x,
                                    const T* __restrict__ y, const T* __restrict__ dy,
                                    T* __restrict__ dx, T alpha) {
  const bool reads_x = act_reads_input(act), reads_y = act_reads_output(act);
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    // Only the operand the rule needs is loaded: callers may pass a null x or y for the other.
    const T xi = reads_x ? x[i] : T(0);
    const T yi = reads_y ? y[i] : T(0);
    dx[i] = act_grad(act, xi, yi, dy[i], alpha);
  }
}

}  // namespace

template <typename T>
void act_forward(Act act, index_t n, const T* x, T* y, double alpha, Stream stream) {
  check_value(n >= 0, "act_forward", "negative element count");
  if (n == 0) return;
  act_forward_kernel<T><<<grid_for(n), kBlock, 0, as_cuda(stream)>>>(act, n, x, y, T(alpha));
  check_launch("act_forward");
}

template <typename T>
void act_backward(Act act, index_t n, const T* x, const T* y, const T* dy, T* dx, double alpha,
                  Stream stream) {
  check_value(n >= 0, "act_backward", "negative element count");
  if (n == 0) return;
  act_backward_kernel<T><<<grid_for(n), kBlock, 0, as_cuda(stream)>>>(act, n, x, y, dy, dx,
                                                                       T(alpha));
  check_launch("act_backward");
}

template void act_forward<float>(Act, index_t, const float*, float*, double, Stream);
template void act_forward<double>(Act, index_t, const double*, double*, double, Stream);
template void act_backward<float>(Act, index_t, const float*, const float*, const float*, float*,
                                  double, Stream);
template void act_backward<double>(Act, index_t, const double*, const double*, const double*,
                                   double*, double, Stream);

}  // namespace hepnn::cuda
