// CUDA pooling over NCHW planes, the twin of cpp/ops/conv_pool.cpp (float, double). Forward: one
// thread per output. Backward without atomics: max scatters to its indices one plane per thread
// (a fixed order where windows share a maximum); average and adaptive average gather, one thread
// per input element summing the windows that cover it.
#include <cuda_runtime.h>

#include "cuda/conv_pool.hpp"
#include "cuda/device.hpp"
#include "cuda/launch.cuh"

namespace hepnn::cuda {
namespace {

template <typename T>
__device__ __forceinline__ bool better(T v, T best) {
  return v > best || (v != v && best == best);  // NaN wins, ties keep the first (as torch)
}

template <typename T>
__global__ void max_pool_kernel(PoolShape s, const T* __restrict__ x, T* __restrict__ y, std::int64_t* __restrict__ idx) {
  const index_t total = s.P * s.OH * s.OW, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const index_t ow = t % s.OW, oh = (t / s.OW) % s.OH, p = t / (s.OW * s.OH);
    const T* xp = x + p * s.H * s.W;
    T best = T(0);
    index_t arg = -1;
    for (index_t kh = 0; kh < s.KH; ++kh) {
      const index_t ih = oh * s.sh - s.ph + kh * s.dh;
      if (ih < 0 || ih >= s.H) continue;
      for (index_t kw = 0; kw < s.KW; ++kw) {
        const index_t iw = ow * s.sw - s.pw + kw * s.dw;
        if (iw < 0 || iw >= s.W) continue;
        const T v = xp[ih * s.W + iw];
        if (arg < 0 || better(v, best)) best = v, arg = ih * s.W + iw;
      }
    }
    y[t] = best;
    if (idx) idx[t] = arg;
  }
}

template <typename T>
__global__ void max_backward_kernel(index_t P, index_t HW, index_t OHW, const T* __restrict__ dy,
                                    const std::int64_t* __restrict__ idx, T* __restrict__ dx) {
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t p = index_t(blockIdx.x) * blockDim.x + threadIdx.x; p < P; p += stride) {
    T* d = dx + p * HW;
    for (index_t i = 0; i < HW; ++i) d[i] = T(0);
    for (index_t o = 0; o < OHW; ++o) {
      const std::int64_t i = idx[p * OHW + o];
      if (i >= 0 && i < HW) d[i] += dy[p * OHW + o];
    }
  }
}

// Clipped window and divisor of output (oh, ow), as the CPU's avg_window.
__device__ __forceinline__ void avg_window(const PoolShape& s, bool inc, index_t oh, index_t ow, index_t& h0,
                                           index_t& h1, index_t& w0, index_t& w1, index_t& div) {
  h0 = oh * s.sh - s.ph, w0 = ow * s.sw - s.pw;
  h1 = min(h0 + s.KH, s.H + s.ph), w1 = min(w0 + s.KW, s.W + s.pw);
  const index_t padded = (h1 - h0) * (w1 - w0);
  h0 = max(h0, index_t(0)), w0 = max(w0, index_t(0)), h1 = min(h1, s.H), w1 = min(w1, s.W);
  div = inc ? padded : (h1 - h0) * (w1 - w0);
}

template <typename T>
__global__ void avg_pool_kernel(PoolShape s, bool inc, const T* __restrict__ x, T* __restrict__ y) {
  const index_t total = s.P * s.OH * s.OW, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const index_t ow = t % s.OW, oh = (t / s.OW) % s.OH, p = t / (s.OW * s.OH);
    index_t h0, h1, w0, w1, div;
    avg_window(s, inc, oh, ow, h0, h1, w0, w1, div);
    T acc = T(0);
    for (index_t ih = h0; ih < h1; ++ih)
      for (index_t iw = w0; iw < w1; ++iw) acc += x[(p * s.H + ih) * s.W + iw];
    y[t] = div > 0 ? acc / T(div) : T(0);
  }
}

template <typename T>
__global__ void avg_backward_kernel(PoolShape s, bool inc, const T* __restrict__ dy, T* __restrict__ dx) {
  const index_t total = s.P * s.H * s.W, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const index_t iw = t % s.W, ih = (t / s.W) % s.H, p = t / (s.W * s.H);
    // Outputs whose window [o*s - p, o*s - p + K) holds this element.
    const index_t oh0 = max(index_t(0), (ih + s.ph - s.KH + s.sh) / s.sh), oh1 = min(s.OH - 1, (ih + s.ph) / s.sh);
    const index_t ow0 = max(index_t(0), (iw + s.pw - s.KW + s.sw) / s.sw), ow1 = min(s.OW - 1, (iw + s.pw) / s.sw);
    T acc = T(0);
    for (index_t oh = oh0; oh <= oh1; ++oh)
      for (index_t ow = ow0; ow <= ow1; ++ow) {
        index_t h0, h1, w0, w1, div;
        avg_window(s, inc, oh, ow, h0, h1, w0, w1, div);
        if (div > 0 && ih >= h0 && ih < h1 && iw >= w0 && iw < w1) acc += dy[(p * s.OH + oh) * s.OW + ow] / T(div);
      }
    dx[t] = acc;
  }
}

__device__ __forceinline__ index_t a_start(index_t i, index_t in, index_t out) { return (i * in) / out; }
__device__ __forceinline__ index_t a_end(index_t i, index_t in, index_t out) { return ((i + 1) * in + out - 1) / out; }

template <typename T>
__global__ void adaptive_kernel(index_t P, index_t H, index_t W, index_t OH, index_t OW, bool is_max,
                                const T* __restrict__ x, T* __restrict__ y, std::int64_t* __restrict__ idx) {
  const index_t total = P * OH * OW, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const index_t ow = t % OW, oh = (t / OW) % OH, p = t / (OW * OH);
    const index_t h0 = a_start(oh, H, OH), h1 = a_end(oh, H, OH), w0 = a_start(ow, W, OW), w1 = a_end(ow, W, OW);
    const T* xp = x + p * H * W;
    if (is_max) {
      T best = xp[h0 * W + w0];
      index_t arg = h0 * W + w0;
      for (index_t ih = h0; ih < h1; ++ih)
        for (index_t iw = w0; iw < w1; ++iw)
          if (better(xp[ih * W + iw], best)) best = xp[ih * W + iw], arg = ih * W + iw;
      y[t] = best;
      idx[t] = arg;
    } else {
      T acc = T(0);
      for (index_t ih = h0; ih < h1; ++ih)
        for (index_t iw = w0; iw < w1; ++iw) acc += xp[ih * W + iw];
      y[t] = acc / T((h1 - h0) * (w1 - w0));
    }
  }
}

template <typename T>
__global__ void adaptive_avg_backward_kernel(index_t P, index_t H, index_t W, index_t OH, index_t OW,
                                             const T* __restrict__ dy, T* __restrict__ dx) {
  const index_t total = P * H * W, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const index_t iw = t % W, ih = (t / W) % H, p = t / (W * H);
    T acc = T(0);
    for (index_t oh = 0; oh < OH; ++oh) {
      const index_t h0 = a_start(oh, H, OH), h1 = a_end(oh, H, OH);
      if (ih < h0 || ih >= h1) continue;
      for (index_t ow = 0; ow < OW; ++ow) {
        const index_t w0 = a_start(ow, W, OW), w1 = a_end(ow, W, OW);
        if (iw >= w0 && iw < w1) acc += dy[(p * OH + oh) * OW + ow] / T((h1 - h0) * (w1 - w0));
      }
    }
    dx[t] = acc;
  }
}

void check_pool(const PoolShape& s, const char* op) {
  check_value(s.P >= 0 && s.H >= 0 && s.W >= 0 && s.OH >= 0 && s.OW >= 0, op, "negative size");
  check_value(s.KH >= 1 && s.KW >= 1 && s.sh >= 1 && s.sw >= 1 && s.dh >= 1 && s.dw >= 1 && s.ph >= 0 && s.pw >= 0,
              op, "kernel, stride and dilation must be >= 1, padding >= 0");
}

}  // namespace

template <typename T>
void max_pool2d_forward(const PoolShape& s, const T* x, T* y, std::int64_t* idx, Stream stream) {
  const char* op = "max_pool2d_forward";
  check_pool(s, op);
  const index_t n = s.P * s.OH * s.OW;
  if (n == 0) return;
  max_pool_kernel<T><<<grid_for(n), kBlock, 0, as_cuda(stream)>>>(s, x, y, idx);
  check_launch(op);
}

template <typename T>
void max_pool_backward(index_t P, index_t HW, index_t OHW, const T* dy, const std::int64_t* idx, T* dx, Stream stream) {
  const char* op = "max_pool_backward";
  check_value(P >= 0 && HW >= 0 && OHW >= 0, op, "negative size");
  if (P == 0 || HW == 0) return;
  max_backward_kernel<T><<<grid_for(P, 128), 128, 0, as_cuda(stream)>>>(P, HW, OHW, dy, idx, dx);
  check_launch(op);
}

template <typename T>
void avg_pool2d_forward(const PoolShape& s, bool inc, const T* x, T* y, Stream stream) {
  const char* op = "avg_pool2d_forward";
  check_pool(s, op);
  const index_t n = s.P * s.OH * s.OW;
  if (n == 0) return;
  avg_pool_kernel<T><<<grid_for(n), kBlock, 0, as_cuda(stream)>>>(s, inc, x, y);
  check_launch(op);
}

template <typename T>
void avg_pool2d_backward(const PoolShape& s, bool inc, const T* dy, T* dx, Stream stream) {
  const char* op = "avg_pool2d_backward";
  check_pool(s, op);
  const index_t n = s.P * s.H * s.W;
  if (n == 0) return;
  avg_backward_kernel<T><<<grid_for(n), kBlock, 0, as_cuda(stream)>>>(s, inc, dy, dx);
  check_launch(op);
}

template <typename T>
void adaptive_avg_pool2d_forward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* x, T* y,
                                 Stream stream) {
  const char* op = "adaptive_avg_pool2d_forward";
  check_value(P >= 0 && H >= 1 && W >= 1 && OH >= 1 && OW >= 1, op, "bad size");
  if (P == 0) return;
  adaptive_kernel<T><<<grid_for(P * OH * OW), kBlock, 0, as_cuda(stream)>>>(P, H, W, OH, OW, false, x, y, nullptr);
  check_launch(op);
}

template <typename T>
void adaptive_avg_pool2d_backward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* dy, T* dx,
                                  Stream stream) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_value(P >= 0 && H >= 1 && W >= 1 && OH >= 1 && OW >= 1, op, "bad size");
  if (P == 0) return;
  adaptive_avg_backward_kernel<T><<<grid_for(P * H * W), kBlock, 0, as_cuda(stream)>>>(P, H, W, OH, OW, dy, dx);
  check_launch(op);
}

template <typename T>
void adaptive_max_pool2d_forward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* x, T* y,
                                 std::int64_t* idx, Stream stream) {
  const char* op = "adaptive_max_pool2d_forward";
  check_value(P >= 0 && H >= 1 && W >= 1 && OH >= 1 && OW >= 1, op, "bad size");
  if (P == 0) return;
  adaptive_kernel<T><<<grid_for(P * OH * OW), kBlock, 0, as_cuda(stream)>>>(P, H, W, OH, OW, true, x, y, idx);
  check_launch(op);
}

#define HEPNN_POOL_INSTANTIATE(T)                                                                              \
  template void max_pool2d_forward<T>(const PoolShape&, const T*, T*, std::int64_t*, Stream);                  \
  template void max_pool_backward<T>(index_t, index_t, index_t, const T*, const std::int64_t*, T*, Stream);    \
  template void avg_pool2d_forward<T>(const PoolShape&, bool, const T*, T*, Stream);                           \
  template void avg_pool2d_backward<T>(const PoolShape&, bool, const T*, T*, Stream);                          \
  template void adaptive_avg_pool2d_forward<T>(index_t, index_t, index_t, index_t, index_t, const T*, T*, Stream); \
  template void adaptive_avg_pool2d_backward<T>(index_t, index_t, index_t, index_t, index_t, const T*, T*, Stream); \
  template void adaptive_max_pool2d_forward<T>(index_t, index_t, index_t, index_t, index_t, const T*, T*,      \
                                               std::int64_t*, Stream);
HEPNN_POOL_INSTANTIATE(float)
HEPNN_POOL_INSTANTIATE(double)
#undef HEPNN_POOL_INSTANTIATE

}  // namespace hepnn::cuda
