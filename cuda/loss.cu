// CUDA fused losses (mse, bce_with_logits, softmax cross-entropy with int64 labels): per-element
// value and gradient in one pass, the reduced loss left in a device buffer (no host sync).
// Deterministic two-pass reduction: per-block partials (fixed grid for a given size), then one block.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/device.hpp"
#include "cuda/dmath.cuh"
#include "cuda/launch.cuh"
#include "cuda/loss.hpp"
#include "cuda/reduce_util.cuh"

namespace hepnn::cuda {
namespace {

constexpr index_t kMaxPartials = 1024;
constexpr int kRowsPerBlock = kBlock / 32;  // cross-entropy: one warp per sample

// Loss totals and the weight sum accumulate in double whatever T is: cheap next to the memory
// traffic, and the mean of a float32 loss over millions of events keeps its digits.
template <typename T>
__global__ void weight_partials(index_t B, const T* __restrict__ w, double* __restrict__ partial) {
  __shared__ double smem[32];
  double acc = 0.0;
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < B; i += stride)
    acc += double(w[i]);
  acc = block_sum(acc, smem);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// One block adds the G partials in a fixed order; writes the total to `total` and/or
// loss = total * scale / (*wsum when weighted mean).
template <typename T>
__global__ void finish_sum(unsigned G, const double* __restrict__ partial, double* total, T* loss,
                           double scale, const double* wsum) {
  __shared__ double smem[32];
  double acc = 0.0;
  for (unsigned i = threadIdx.x; i < G; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc, smem);
  if (threadIdx.x == 0) {
    if (total) *total = acc;
    if (loss) *loss = T(wsum ? acc * scale / *wsum : acc * scale);
  }
}

enum class Pointwise { mse, bce };

// out (per element, reduction none) = w_i l; grad = w_i * c * dl/dpred where c is the reduction's
// factor (1/n, 1/(F sum w), or 1); partial (null for none) = this block's sum of w_i l.
template <typename T, Pointwise K>
__global__ void pointwise_kernel(index_t n, index_t F, const T* __restrict__ p,
                                 const T* __restrict__ t, const T* __restrict__ w, double scale,
                                 const double* wsum, T* __restrict__ out, T* __restrict__ grad,
                                 double* __restrict__ partial) {
  __shared__ double smem[32];
  const T c = T(wsum ? scale / *wsum : scale);
  double acc = 0.0;
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const T wi = w ? w[i / F] : T(1);
    const T x = p[i], y = t[i];
    T l, dl;
    if constexpr (K == Pointwise::mse) {
      const T d = x - y;
      l = d * d;
      dl = T(2) * d;
    } else {
      // log(1 + exp(-|x|)) never overflows; max(x, 0) - x y restores the branch it dropped.
      l = (x > T(0) ? x : T(0)) - x * y + dm::log1p(dm::exp(-dm::fabs(x)));
      dl = dm::sigmoid(x) - y;
    }
    if (out) out[i] = wi * l;
    if (grad) grad[i] = (wi * c) * dl;
    acc += double(wi) * double(l);
  }
  if (partial) {
    acc = block_sum(acc, smem);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
  }
}

// One warp per sample row of C logits: l = log-sum-exp - x[label]; grad = softmax - onehot.
// NOTE: a label outside [0, C) cannot raise from the device: that sample's loss, out and grad
// row are NaN, so the reduced loss is NaN too.
template <typename T>
__global__ void cross_entropy_kernel(index_t B, index_t C, const T* __restrict__ x,
                                     const std::int64_t* __restrict__ labels,
                                     const T* __restrict__ w, double scale, const double* wsum,
                                     T* __restrict__ out, T* __restrict__ grad,
                                     double* __restrict__ partial) {
  __shared__ double smem[32];
  const int lane = threadIdx.x & 31;
  const index_t wpb = blockDim.x >> 5;
  const T c = T(wsum ? scale / *wsum : scale);
  double acc = 0.0;
  for (index_t r = index_t(blockIdx.x) * wpb + (threadIdx.x >> 5); r < B;
       r += index_t(gridDim.x) * wpb) {
    const T* xr = x + r * C;
    MaxSum<T> a = ms_init<T>();
    for (index_t j = lane; j < C; j += 32) a = ms_push(a, xr[j]);
    a = warp_ms(a);
    const std::int64_t y = labels[r];
    const bool ok = y >= 0 && y < C;
    const T nan = dm::quiet_nan<T>();
    const T l = ok ? (a.m - xr[y]) + dm::log(a.s) : nan;
    const T wi = w ? w[r] : T(1);
    if (lane == 0) {
      if (out) out[r] = wi * l;
      acc += double(wi) * double(l);
    }
    if (grad) {
      const T g = wi * c;
      T* gr = grad + r * C;
      for (index_t j = lane; j < C; j += 32) {
        const T prob = dm::exp(xr[j] - a.m) / a.s;
        gr[j] = ok ? g * (j == y ? prob - T(1) : prob) : nan;
      }
    }
  }
  if (partial) {
    acc = block_sum(acc, smem);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
  }
}

// Shared plan of every loss: weight sum first when the mean is weighted, then the main kernel
// (passed as `main(scale, wsum, partials)`), then the final block. `G` is the main grid size.
template <typename T, typename Main>
void run_loss(const char* op, Reduction red, index_t B, index_t F, const T* w, T* loss,
              unsigned G, cudaStream_t s, Main main) {
  check_value(red == Reduction::none || red == Reduction::mean || red == Reduction::sum, op,
              "unknown reduction");
  const bool none = red == Reduction::none;
  const bool weighted_mean = red == Reduction::mean && w != nullptr;
  const unsigned Gw = weighted_mean ? grid_for(B, kBlock, kMaxPartials) : 0;
  Scratch<double> buf(none ? 0 : 1 + std::max(G, Gw), s, op);
  double* wsum = nullptr;
  if (weighted_mean) {
    weight_partials<T><<<Gw, kBlock, 0, s>>>(B, w, buf.get() + 1);
    finish_sum<T><<<1, kBlock, 0, s>>>(Gw, buf.get() + 1, buf.get(), nullptr, 0.0, nullptr);
    wsum = buf.get();
  }
  double scale = 1.0;
  if (red == Reduction::mean) scale = w ? 1.0 / double(F) : 1.0 / (double(B) * double(F));
  main(scale, wsum, none ? nullptr : buf.get() + 1);
  if (none) {
    if (loss) cudaMemsetAsync(loss, 0, sizeof(T), s);  // all-zero bits are +0.0
  } else {
    finish_sum<T><<<1, kBlock, 0, s>>>(G, buf.get() + 1, nullptr, loss, scale, wsum);
  }
  check_launch(op);
}

template <typename T, Pointwise K>
void pointwise_loss(const char* op, index_t B, index_t F, const T* p, const T* t, const T* w,
                    Reduction red, T* out, T* grad, T* loss, Stream stream) {
  check_value(B >= 0 && F >= 0, op, "negative size");
  const cudaStream_t s = as_cuda(stream);
  const index_t n = B * F;
  const unsigned G = grid_for(n, kBlock, kMaxPartials);
  T* per_elem = red == Reduction::none ? out : nullptr;
  run_loss<T>(op, red, B, F, w, loss, G, s, [&](double scale, const double* wsum, double* part) {
    pointwise_kernel<T, K><<<G, kBlock, 0, s>>>(n, F, p, t, w, scale, wsum, per_elem, grad, part);
  });
}

}  // namespace

template <typename T>
void mse_loss(index_t B, index_t F, const T* pred, const T* target, const T* w, Reduction red,
              T* out, T* grad, T* loss, Stream stream) {
  pointwise_loss<T, Pointwise::mse>("mse_loss", B, F, pred, target, w, red, out, grad, loss,
                                    stream);
}

template <typename T>
void bce_with_logits_loss(index_t B, index_t F, const T* logits, const T* target, const T* w,
                          Reduction red, T* out, T* grad, T* loss, Stream stream) {
  pointwise_loss<T, Pointwise::bce>("bce_with_logits_loss", B, F, logits, target, w, red, out,
                                    grad, loss, stream);
}

template <typename T>
void cross_entropy_loss(index_t B, index_t C, const T* logits, const std::int64_t* labels,
                        const T* w, Reduction red, T* out, T* grad, T* loss, Stream stream) {
  const char* op = "cross_entropy_loss";
  check_value(B >= 0 && C >= 0, op, "negative size");
  const cudaStream_t s = as_cuda(stream);
  const unsigned G = grid_for(B, kRowsPerBlock, kMaxPartials);
  T* per_row = red == Reduction::none ? out : nullptr;
  run_loss<T>(op, red, B, 1, w, loss, G, s, [&](double scale, const double* wsum, double* part) {
    cross_entropy_kernel<T><<<G, kBlock, 0, s>>>(B, C, logits, labels, w, scale, wsum, per_row,
                                                 grad, part);
  });
}

#define HEPNN_LOSS_INSTANTIATE(T)                                                              \
  template void mse_loss<T>(index_t, index_t, const T*, const T*, const T*, Reduction, T*, T*, \
                            T*, Stream);                                                       \
  template void bce_with_logits_loss<T>(index_t, index_t, const T*, const T*, const T*,        \
                                        Reduction, T*, T*, T*, Stream);                        \
  template void cross_entropy_loss<T>(index_t, index_t, const T*, const std::int64_t*,         \
                                      const T*, Reduction, T*, T*, T*, Stream);
HEPNN_LOSS_INSTANTIATE(float)
HEPNN_LOSS_INSTANTIATE(double)
#undef HEPNN_LOSS_INSTANTIATE

}  // namespace hepnn::cuda
