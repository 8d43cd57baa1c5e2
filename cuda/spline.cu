// CUDA rational-quadratic spline: forward, inverse and backward of the forward in grid-stride
// loops of one thread per element, on the per-element math shared with the CPU kernel
// (cpp/ops/spline_math.hpp). Elements are independent: the results are deterministic.
#include <cuda_runtime.h>

#include "cuda/device.hpp"
#include "cuda/launch.cuh"
#include "cuda/spline.hpp"
#include "ops/spline_math.hpp"

namespace hepnn::cuda {
namespace {

// NOTE: the NaN flag of locate() is dropped here; NaN parameters propagate to the outputs.
template <typename T>
__global__ void spline_fwd_kernel(SplineShape s, bool inverse, const T* __restrict__ in,
                                  const T* __restrict__ W, const T* __restrict__ H,
                                  const T* __restrict__ D, T* __restrict__ out, T* __restrict__ logdet) {
  const int K = s.K;
  for (index_t e = index_t(blockIdx.x) * blockDim.x + threadIdx.x; e < s.M;
       e += index_t(gridDim.x) * blockDim.x) {
    const T v = in[e];
    if (!spline::inside(s, v)) {
      out[e] = v;
      logdet[e] = T(0);
      continue;
    }
    bool nan = false;
    const auto b = spline::locate(s, W + e * K, H + e * K, D + e * (K - 1), v, inverse, nan);
    T o, l;
    if (inverse)
      spline::rq_inverse(b, v, o, l);
    else
      spline::rq_forward(b, v, o, l);
    out[e] = o;
    logdet[e] = l;
  }
}

template <typename T>
__global__ void spline_bwd_kernel(SplineShape s, const T* __restrict__ x, const T* __restrict__ W,
                                  const T* __restrict__ H, const T* __restrict__ D,
                                  const T* __restrict__ dy, const T* __restrict__ dlogdet,
                                  T* __restrict__ dx, T* __restrict__ dW, T* __restrict__ dH,
                                  T* __restrict__ dD) {
  const int K = s.K;
  for (index_t e = index_t(blockIdx.x) * blockDim.x + threadIdx.x; e < s.M;
       e += index_t(gridDim.x) * blockDim.x) {
    const T v = x[e];
    const T gy = dy ? dy[e] : T(0), gl = dlogdet ? dlogdet[e] : T(0);
    T* dw = dW ? dW + e * K : nullptr;
    T* dh = dH ? dH + e * K : nullptr;
    T* dd = dD ? dD + e * (K - 1) : nullptr;
    if (dd)
      for (int j = 0; j < K - 1; ++j) dd[j] = T(0);
    if (!spline::inside(s, v)) {
      if (dx) dx[e] = gy;
      if (dw)
        for (int j = 0; j < K; ++j) dw[j] = T(0);
      if (dh)
        for (int j = 0; j < K; ++j) dh[j] = T(0);
      continue;
    }
    const T* we = W + e * K;
    const T* he = H + e * K;
    const T* de = D + e * (K - 1);
    bool nan = false;
    const auto b = spline::locate(s, we, he, de, v, false, nan);
    const auto g = spline::rq_backward(b, v, gy, gl);
    if (dx) dx[e] = g.x;
    if (dw) spline::softmax_backward(s, s.min_width, b.sw, b.k, b.cum_pw, b.pw, g.xk, g.w, dw);
    if (dh) spline::softmax_backward(s, s.min_height, b.sh, b.k, b.cum_ph, b.ph, g.yk, g.h, dh);
    if (dd) {
      if (b.k > 0) dd[b.k - 1] = g.d0 * spline::sigmoid(de[b.k - 1]);
      if (b.k < K - 1) dd[b.k] = g.d1 * spline::sigmoid(de[b.k]);
    }
  }
}

template <typename T>
void launch_apply(const SplineShape& s, bool inverse, const T* in, const T* W, const T* H, const T* D,
                  T* out, T* logdet, Stream stream, const char* op) {
  check_spline_shape(s, op);
  if (s.M == 0) return;
  spline_fwd_kernel<T><<<grid_for(s.M), kBlock, 0, as_cuda(stream)>>>(s, inverse, in, W, H, D, out, logdet);
  check_launch(op);
}

}  // namespace

template <typename T>
void spline_forward(const SplineShape& s, const T* x, const T* W, const T* H, const T* D, T* y,
                    T* logdet, Stream stream) {
  launch_apply(s, false, x, W, H, D, y, logdet, stream, "spline_forward");
}

template <typename T>
void spline_inverse(const SplineShape& s, const T* y, const T* W, const T* H, const T* D, T* x,
                    T* logdet, Stream stream) {
  launch_apply(s, true, y, W, H, D, x, logdet, stream, "spline_inverse");
}

template <typename T>
void spline_backward(const SplineShape& s, const T* x, const T* W, const T* H, const T* D,
                     const T* dy, const T* dlogdet, T* dx, T* dW, T* dH, T* dD, Stream stream) {
  check_spline_shape(s, "spline_backward");
  if (s.M == 0) return;
  spline_bwd_kernel<T><<<grid_for(s.M), kBlock, 0, as_cuda(stream)>>>(s, x, W, H, D, dy, dlogdet, dx,
                                                                        dW, dH, dD);
  check_launch("spline_backward");
}

#define HEPNN_SPLINE_INSTANTIATE(T)                                                              \
  template void spline_forward<T>(const SplineShape&, const T*, const T*, const T*, const T*, T*, \
                                  T*, Stream);                                                   \
  template void spline_inverse<T>(const SplineShape&, const T*, const T*, const T*, const T*, T*, \
                                  T*, Stream);                                                   \
  template void spline_backward<T>(const SplineShape&, const T*, const T*, const T*, const T*,    \
                                   const T*, const T*, T*, T*, T*, T*, Stream);
HEPNN_SPLINE_INSTANTIATE(float)
HEPNN_SPLINE_INSTANTIATE(double)
#undef HEPNN_SPLINE_INSTANTIATE

}  // namespace hepnn::cuda
