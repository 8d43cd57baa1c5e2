// CUDA convolutions (NCHW), the twin of cpp/ops/conv.cpp: per group, im2col of the whole batch
// into stream-ordered scratch, one batched GEMM (cuda/gemm.hpp), then an elementwise bias +
// activation epilogue (z kept when asked). Backward: dz = dy * act', db by one block per channel,
// dW as per-sample GEMM partials summed over the batch in a fixed order, dx by a gather-form
// col2im (each input element sums its own taps: deterministic, no atomics). Float and double.
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/act_math.cuh"
#include "cuda/conv.hpp"
#include "cuda/conv_pool.hpp"
#include "cuda/device.hpp"
#include "cuda/gemm.hpp"
#include "cuda/launch.cuh"

namespace hepnn::cuda {
namespace {

bool is_pointwise(const ConvShape& s) {
  return s.KH == 1 && s.KW == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
}

// col (B, K, N) for group g: col[n][(c*KH + kh)*KW + kw][oh*OW + ow] = x[n][g*Cg + c][ih][iw] or 0.
template <typename T>
__global__ void im2col_kernel(ConvShape s, index_t g, const T* __restrict__ x, T* __restrict__ col) {
  const index_t K = s.C / s.groups * s.KH * s.KW, N = s.OH * s.OW, total = s.B * K * N;
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const index_t p = t % N, r = (t / N) % K, n = t / (N * K);
    const index_t kw = r % s.KW, kh = (r / s.KW) % s.KH, c = r / (s.KW * s.KH);
    const index_t ih = (p / s.OW) * s.sh - s.ph + kh * s.dh, iw = (p % s.OW) * s.sw - s.pw + kw * s.dw;
    const index_t ch = g * (s.C / s.groups) + c;
    col[t] = (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) ? x[((n * s.C + ch) * s.H + ih) * s.W + iw] : T(0);
  }
}

// dx[n][g*Cg + c][ih][iw] = sum of the taps of dcol (B, K, N) that read this element; written
// (not accumulated), so groups launched one by one fill disjoint channels.
template <typename T>
__global__ void col2im_kernel(ConvShape s, index_t g, const T* __restrict__ dcol, T* __restrict__ dx) {
  const index_t Cg = s.C / s.groups, K = Cg * s.KH * s.KW, N = s.OH * s.OW;
  const index_t total = s.B * Cg * s.H * s.W;
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += stride) {
    const index_t iw = t % s.W, ih = (t / s.W) % s.H, c = (t / (s.W * s.H)) % Cg, n = t / (s.W * s.H * Cg);
    T acc = T(0);
    for (index_t kh = 0; kh < s.KH; ++kh) {
      const index_t hh = ih + s.ph - kh * s.dh;
      if (hh < 0 || hh % s.sh != 0 || hh / s.sh >= s.OH) continue;
      const index_t oh = hh / s.sh;
      for (index_t kw = 0; kw < s.KW; ++kw) {
        const index_t ww = iw + s.pw - kw * s.dw;
        if (ww < 0 || ww % s.sw != 0 || ww / s.sw >= s.OW) continue;
        acc += dcol[(n * K + (c * s.KH + kh) * s.KW + kw) * N + oh * s.OW + ww / s.sw];
      }
    }
    dx[((n * s.C + g * Cg + c) * s.H + ih) * s.W + iw] = acc;
  }
}

// y (B, Cn, P) = act(y + b[c]); z keeps the pre-activation.
template <typename T>
__global__ void bias_act_kernel(index_t total, index_t Cn, index_t P, const T* __restrict__ b, Act act, T alpha,
                                T* __restrict__ y, T* __restrict__ z) {
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const T v = b ? y[i] + b[(i / P) % Cn] : y[i];
    if (z) z[i] = v;
    y[i] = act_apply(act, v, alpha);
  }
}

template <typename T>
__global__ void dz_kernel(Act act, index_t n, const T* __restrict__ z, const T* __restrict__ y,
                          const T* __restrict__ dy, T* __restrict__ dz, T alpha) {
  const bool reads_z = act_reads_input(act), reads_y = act_reads_output(act);
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dz[i] = act_grad(act, reads_z ? z[i] : T(0), reads_y ? y[i] : T(0), dy[i], alpha);
}

// db[c] = sum of g (B, Cn, P) over the batch and plane: one block per channel, a fixed tree.
template <typename T>
__global__ void channel_sum_kernel(index_t B, index_t Cn, index_t P, const T* __restrict__ g, T* __restrict__ db) {
  __shared__ T part[kBlock];
  const index_t c = blockIdx.x;
  T acc = T(0);
  for (index_t i = threadIdx.x; i < B * P; i += blockDim.x) acc += g[((i / P) * Cn + c) * P + i % P];
  part[threadIdx.x] = acc;
  __syncthreads();
  for (int w = kBlock / 2; w > 0; w /= 2) {
    if (threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) db[c] = part[0];
}

// out[i] = sum over the batch of parts (B, len) in sample order.
template <typename T>
__global__ void batch_sum_kernel(index_t B, index_t len, const T* __restrict__ parts, T* __restrict__ out) {
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < len; i += stride) {
    T acc = T(0);
    for (index_t n = 0; n < B; ++n) acc += parts[n * len + i];
    out[i] = acc;
  }
}

template <typename T>
void forward_core(const ConvShape& s, const T* in, const T* w, const T* b, Act act, double alpha, T* out, T* z,
                  Stream stream, const char* op) {
  const cudaStream_t cs = as_cuda(stream);
  const index_t G = s.groups, Og = s.Og(), Cg = s.Cg(), K = s.K(), N = s.N();
  const index_t total = s.B * s.O * N;
  if (total == 0) return;
  const bool pw = is_pointwise(s);
  Scratch<T> col(pw ? 0 : static_cast<std::size_t>(s.B * K * N), cs, op);
  for (index_t g = 0; g < G; ++g) {
    const T* src = in + g * Cg * s.H * s.W;
    index_t src_stride = s.C * s.H * s.W;
    if (!pw) {
      im2col_kernel<T><<<grid_for(s.B * K * N), kBlock, 0, cs>>>(s, g, in, col.get());
      check_launch(op);
      src = col.get();
      src_stride = K * N;
    }
    gemm_batched<T>(Trans::N, Trans::N, s.B, Og, N, K, T(1), w + g * Og * K, K, 0, src, N, src_stride, T(0),
                    out + g * Og * N, N, s.O * N, stream);
  }
  if (b || z || act != Act::none) {
    bias_act_kernel<T><<<grid_for(total), kBlock, 0, cs>>>(total, s.O, N, b, act, T(alpha), out, z);
    check_launch(op);
  }
}

// dw (may be null) from in and dout; din (may be null) from dout.
template <typename T>
void backward_core(const ConvShape& s, const T* in, const T* dout, const T* w, T* dw, T* din, Stream stream,
                   const char* op) {
  const cudaStream_t cs = as_cuda(stream);
  const index_t G = s.groups, Og = s.Og(), Cg = s.Cg(), K = s.K(), N = s.N();
  const bool pw = is_pointwise(s);
  if (s.B == 0 || N == 0 || s.O * K == 0) {
    if (dw) cudaMemsetAsync(dw, 0, sizeof(T) * s.O * K, cs);
    if (din) cudaMemsetAsync(din, 0, sizeof(T) * s.B * s.C * s.H * s.W, cs);
    return;
  }
  Scratch<T> col(pw ? 0 : static_cast<std::size_t>(s.B * K * N), cs, op);
  Scratch<T> parts(dw ? static_cast<std::size_t>(s.B * Og * K) : 0, cs, op);
  for (index_t g = 0; g < G; ++g) {
    const T* dz = dout + g * Og * N;
    if (dw) {
      const T* src = in + g * Cg * s.H * s.W;
      index_t src_stride = s.C * s.H * s.W;
      if (!pw) {
        im2col_kernel<T><<<grid_for(s.B * K * N), kBlock, 0, cs>>>(s, g, in, col.get());
        check_launch(op);
        src = col.get();
        src_stride = K * N;
      }
      gemm_batched<T>(Trans::N, Trans::T, s.B, Og, K, N, T(1), dz, N, s.O * N, src, N, src_stride, T(0),
                      parts.get(), K, Og * K, stream);
      batch_sum_kernel<T><<<grid_for(Og * K), kBlock, 0, cs>>>(s.B, Og * K, parts.get(), dw + g * Og * K);
      check_launch(op);
    }
    if (din) {
      if (pw) {
        gemm_batched<T>(Trans::T, Trans::N, s.B, K, N, Og, T(1), w + g * Og * K, K, 0, dz, N, s.O * N, T(0),
                        din + g * Cg * s.H * s.W, N, s.C * s.H * s.W, stream);
      } else {
        gemm_batched<T>(Trans::T, Trans::N, s.B, K, N, Og, T(1), w + g * Og * K, K, 0, dz, N, s.O * N, T(0),
                        col.get(), N, K * N, stream);
        col2im_kernel<T><<<grid_for(s.B * Cg * s.H * s.W), kBlock, 0, cs>>>(s, g, col.get(), din);
        check_launch(op);
      }
    }
  }
}

void check_shape(const ConvShape& s, const char* op) {
  check_value(s.B >= 0 && s.C >= 0 && s.H >= 0 && s.W >= 0 && s.O >= 0 && s.OH >= 0 && s.OW >= 0, op,
              "negative size");
  check_value(s.KH >= 1 && s.KW >= 1 && s.sh >= 1 && s.sw >= 1 && s.dh >= 1 && s.dw >= 1 && s.ph >= 0 &&
                  s.pw >= 0 && s.groups >= 1,
              op, "kernel, stride and dilation must be >= 1, padding >= 0, groups >= 1");
  check_value(s.C % s.groups == 0 && s.O % s.groups == 0, op, "channels not divisible by groups");
}

template <typename T>
void channel_sums(index_t B, index_t Cn, index_t P, const T* g, T* db, cudaStream_t cs, const char* op) {
  if (Cn == 0) return;
  channel_sum_kernel<T><<<unsigned(Cn), kBlock, 0, cs>>>(B, Cn, P, g, db);
  check_launch(op);
}

}  // namespace

template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, Act act, double alpha, T* y, T* z,
                    Stream stream) {
  check_shape(s, "conv2d_forward");
  forward_core(s, x, w, b, act, alpha, y, z, stream, "conv2d_forward");
}

template <typename T>
void conv2d_maxpool2d_forward(const ConvShape& s, const PoolShape& pool, const T* x, const T* w, const T* b,
                              Act act, double alpha, T* y, Stream stream) {
  const char* op = "conv2d_maxpool2d_forward";
  check_shape(s, op);
  check_value(pool.H == s.OH && pool.W == s.OW && pool.P == s.B * s.O, op,
              "pool geometry does not match the convolution output");
  Scratch<T> conv(static_cast<std::size_t>(s.B * s.O * s.N()), as_cuda(stream), op);
  forward_core(s, x, w, b, act, alpha, conv.get(), static_cast<T*>(nullptr), stream, op);
  max_pool2d_forward<T>(pool, conv.get(), y, nullptr, stream);
}

template <typename T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* z, const T* y, const T* dy, Act act,
                     double alpha, T* dx, T* dw, T* db, Stream stream) {
  const char* op = "conv2d_backward";
  check_shape(s, op);
  const index_t total = s.B * s.O * s.N();
  check_value(!act_reads_input(act) || z != nullptr || total == 0, op, "this activation needs the pre-activation z");
  const cudaStream_t cs = as_cuda(stream);
  Scratch<T> buf(act == Act::none ? 0 : static_cast<std::size_t>(total), cs, op);
  const T* dz = dy;
  if (act != Act::none && total > 0) {
    dz_kernel<T><<<grid_for(total), kBlock, 0, cs>>>(act, total, z, y, dy, buf.get(), T(alpha));
    check_launch(op);
    dz = buf.get();
  }
  if (db) channel_sums(s.B, s.O, s.N(), dz, db, cs, op);
  backward_core(s, x, dz, w, dw, dx, stream, op);
}

template <typename T>
void conv_transpose2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, T* y, Stream stream) {
  const char* op = "conv_transpose2d_forward";
  check_shape(s, op);
  backward_core<T>(s, nullptr, x, w, nullptr, y, stream, op);
  const index_t total = s.B * s.C * s.H * s.W;
  if (b && total > 0) {
    bias_act_kernel<T><<<grid_for(total), kBlock, 0, as_cuda(stream)>>>(total, s.C, s.H * s.W, b, Act::none, T(0),
                                                                        y, nullptr);
    check_launch(op);
  }
}

template <typename T>
void conv_transpose2d_backward(const ConvShape& s, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db,
                               Stream stream) {
  const char* op = "conv_transpose2d_backward";
  check_shape(s, op);
  if (db) channel_sums(s.B, s.C, s.H * s.W, dy, db, as_cuda(stream), op);
  backward_core<T>(s, dy, x, w, dw, nullptr, stream, op);
  if (dx) forward_core<T>(s, dy, w, nullptr, Act::none, 0.0, dx, nullptr, stream, op);
}

#define HEPNN_CONV_INSTANTIATE(T)                                                                              \
  template void conv2d_forward<T>(const ConvShape&, const T*, const T*, const T*, Act, double, T*, T*, Stream); \
  template void conv2d_maxpool2d_forward<T>(const ConvShape&, const PoolShape&, const T*, const T*, const T*, \
                                            Act, double, T*, Stream);                                         \
  template void conv2d_backward<T>(const ConvShape&, const T*, const T*, const T*, const T*, const T*, Act,    \
                                   double, T*, T*, T*, Stream);                                                \
  template void conv_transpose2d_forward<T>(const ConvShape&, const T*, const T*, const T*, T*, Stream);       \
  template void conv_transpose2d_backward<T>(const ConvShape&, const T*, const T*, const T*, T*, T*, T*, Stream);
HEPNN_CONV_INSTANTIATE(float)
HEPNN_CONV_INSTANTIATE(double)
#undef HEPNN_CONV_INSTANTIATE

}  // namespace hepnn::cuda
