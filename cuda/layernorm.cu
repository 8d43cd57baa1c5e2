// CUDA layer norm over the last axis. Forward: one warp per row, a two-pass mean / variance with
// double accumulators. Backward: one warp per row for dx; dweight / dbias as partial column
// sums over 64 fixed row chunks (one thread per column and chunk) then summed in chunk order.
#include <cuda_runtime.h>

#include "cuda/device.hpp"
#include "cuda/dmath.cuh"
#include "cuda/launch.cuh"
#include "cuda/layernorm.hpp"
#include "cuda/reduce_util.cuh"

namespace hepnn::cuda {
namespace {

constexpr int kWarps = 8;
constexpr index_t kChunks = 64;

template <typename T>
__global__ void ln_fwd(index_t R, index_t C, const T* __restrict__ x, const T* __restrict__ w,
                       const T* __restrict__ b, double eps, T* __restrict__ y, T* __restrict__ mean,
                       T* __restrict__ rstd) {
  const int lane = threadIdx.x & 31;
  for (index_t r = index_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < R;
       r += index_t(gridDim.x) * kWarps) {
    const T* xr = x + r * C;
    double s = 0.0;
    for (index_t c = lane; c < C; c += 32) s += double(xr[c]);
    const double mu = warp_sum(s) / double(C);
    double ss = 0.0;
    for (index_t c = lane; c < C; c += 32) {
      const double d = double(xr[c]) - mu;
      ss += d * d;
    }
    const double rs = 1.0 / ::sqrt(warp_sum(ss) / double(C) + eps);
    const T m = T(mu), q = T(rs);
    for (index_t c = lane; c < C; c += 32) {
      T v = (xr[c] - m) * q;
      if (w) v *= w[c];
      if (b) v += b[c];
      y[r * C + c] = v;
    }
    if (lane == 0) {
      if (mean) mean[r] = m;
      if (rstd) rstd[r] = q;
    }
  }
}

template <typename T>
__global__ void ln_bwd_dx(index_t R, index_t C, const T* __restrict__ x, const T* __restrict__ w,
                          const T* __restrict__ mean, const T* __restrict__ rstd,
                          const T* __restrict__ dy, T* __restrict__ dx) {
  const int lane = threadIdx.x & 31;
  for (index_t r = index_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < R;
       r += index_t(gridDim.x) * kWarps) {
    const T m = mean[r], q = rstd[r];
    const T* xr = x + r * C;
    const T* gr = dy + r * C;
    double sg = 0.0, sgx = 0.0;
    for (index_t c = lane; c < C; c += 32) {
      const T g = w ? gr[c] * w[c] : gr[c];
      sg += double(g);
      sgx += double(g) * double((xr[c] - m) * q);
    }
    const T mg = T(warp_sum(sg) / double(C)), mgx = T(warp_sum(sgx) / double(C));
    for (index_t c = lane; c < C; c += 32) {
      const T g = w ? gr[c] * w[c] : gr[c];
      dx[r * C + c] = q * (g - mg - (xr[c] - m) * q * mgx);
    }
  }
}

// Partial sums of dy * xhat and dy over rows [chunk * per, ...) for column c.
template <typename T>
__global__ void ln_bwd_partial(index_t R, index_t C, index_t per, const T* __restrict__ x,
                               const T* __restrict__ mean, const T* __restrict__ rstd,
                               const T* __restrict__ dy, double* __restrict__ pw,
                               double* __restrict__ pb) {
  const index_t c = index_t(blockIdx.x) * blockDim.x + threadIdx.x, ch = blockIdx.y;
  if (c >= C) return;
  const index_t r0 = ch * per, r1 = r0 + per < R ? r0 + per : R;
  double sw = 0.0, sb = 0.0;
  for (index_t r = r0; r < r1; ++r) {
    const T g = dy[r * C + c];
    sw += double(g) * double((x[r * C + c] - mean[r]) * rstd[r]);
    sb += double(g);
  }
  pw[ch * C + c] = sw;
  pb[ch * C + c] = sb;
}

template <typename T>
__global__ void ln_bwd_reduce(index_t C, index_t chunks, const double* __restrict__ pw,
                              const double* __restrict__ pb, T* __restrict__ dw, T* __restrict__ db) {
  const index_t c = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sw = 0.0, sb = 0.0;
  for (index_t ch = 0; ch < chunks; ++ch) {
    sw += pw[ch * C + c];
    sb += pb[ch * C + c];
  }
  if (dw) dw[c] = T(sw);
  if (db) db[c] = T(sb);
}

}  // namespace

template <typename T>
void layer_norm_forward(index_t R, index_t C, const T* x, const T* weight, const T* bias, double eps,
                        T* y, T* mean, T* rstd, Stream stream) {
  check_value(R >= 0 && C >= 1, "layer_norm_forward", "needs rows >= 0 and a normalised size >= 1");
  check_value(eps >= 0.0, "layer_norm_forward", "eps must be >= 0");
  if (R == 0) return;
  ln_fwd<T><<<grid_for(R, kWarps, 65535), kWarps * 32, 0, as_cuda(stream)>>>(R, C, x, weight, bias,
                                                                              eps, y, mean, rstd);
  check_launch("layer_norm_forward");
}

template <typename T>
void layer_norm_backward(index_t R, index_t C, const T* x, const T* weight, const T* mean,
                         const T* rstd, const T* dy, T* dx, T* dweight, T* dbias, Stream stream) {
  check_value(R >= 0 && C >= 1, "layer_norm_backward", "needs rows >= 0 and a normalised size >= 1");
  const cudaStream_t s = as_cuda(stream);
  if (dx && R > 0) {
    ln_bwd_dx<T><<<grid_for(R, kWarps, 65535), kWarps * 32, 0, s>>>(R, C, x, weight, mean, rstd, dy, dx);
    check_launch("layer_norm_backward");
  }
  if (!dweight && !dbias) return;
  // The chunking depends only on R: the same sums in the same order on every run.
  const index_t chunks = R < kChunks ? (R > 0 ? R : 1) : kChunks;
  const index_t per = R > 0 ? (R + chunks - 1) / chunks : 0;
  Scratch<double> part(size_t(2 * chunks * C), s, "layer_norm_backward");
  const unsigned cblocks = unsigned((C + kBlock - 1) / kBlock);
  if (R > 0) {
    ln_bwd_partial<T><<<dim3(cblocks, unsigned(chunks)), kBlock, 0, s>>>(R, C, per, x, mean, rstd, dy,
                                                                          part.get(), part.get() + chunks * C);
    check_launch("layer_norm_backward");
  } else {
    cudaMemsetAsync(part.get(), 0, sizeof(double) * size_t(2 * chunks * C), s);
  }
  ln_bwd_reduce<T><<<cblocks, kBlock, 0, s>>>(C, chunks, part.get(), part.get() + chunks * C, dweight, dbias);
  check_launch("layer_norm_backward");
}

template void layer_norm_forward<float>(index_t, index_t, const float*, const float*, const float*,
                                        double, float*, float*, float*, Stream);
template void layer_norm_forward<double>(index_t, index_t, const double*, const double*,
                                         const double*, double, double*, double*, double*, Stream);
template void layer_norm_backward<float>(index_t, index_t, const float*, const float*, const float*,
                                         const float*, const float*, float*, float*, float*, Stream);
template void layer_norm_backward<double>(index_t, index_t, const double*, const double*,
                                          const double*, const double*, const double*, double*,
                                          double*, double*, Stream);

}  // namespace hepnn::cuda
