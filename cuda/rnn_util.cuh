// Internal to rnn_lstm.cu / rnn_gru.cu: what both recurrences share on the GPU. Step order, the
// active-row test, the combined bias, the input projection of all steps, deterministic column
// sums for the bias gradients and the weight-gradient GEMMs over all steps (CPU twin:
// cpp/ops/rnn_util.hpp).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/error.hpp"
#include "cuda/device.hpp"
#include "cuda/dmath.cuh"
#include "cuda/gemm.hpp"
#include "cuda/launch.cuh"
#include "cuda/linear.hpp"

namespace hepnn::cuda::rnn {
namespace {

inline index_t time_of(index_t s, index_t L, bool reverse) { return reverse ? L - 1 - s : s; }
inline index_t prev_time(index_t t, bool reverse) { return reverse ? t + 1 : t - 1; }

__device__ __forceinline__ bool active(const std::int64_t* lengths, index_t b, index_t t) {
  return !lengths || t < lengths[b];
}

template <typename T>
__global__ void combine_bias_kernel(index_t GH, index_t fold, const T* __restrict__ b_ih,
                                    const T* __restrict__ b_hh, T* __restrict__ out) {
  const index_t j = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j < GH) out[j] = (b_ih ? b_ih[j] : T(0)) + (b_hh && j < fold ? b_hh[j] : T(0));
}

// xg (rows, GH) = x @ w_ih^T + b_ih + b_hh[:fold] (no bias when both are null).
template <typename T>
void input_projection(index_t rows, index_t I, index_t GH, const T* x, const T* w_ih,
                      const T* b_ih, const T* b_hh, index_t fold, T* xg, cudaStream_t s,
                      const char* op) {
  const bool has_bias = b_ih || b_hh;
  Scratch<T> bias(has_bias ? static_cast<std::size_t>(GH) : 0, s, op);
  if (has_bias) {
    combine_bias_kernel<T><<<grid_for(GH), kBlock, 0, s>>>(GH, fold, b_ih, b_hh, bias.get());
    check_launch(op);
  }
  linear_forward<T>(rows, I, GH, x, w_ih, has_bias ? bias.get() : nullptr, Act::none, 0.0, xg,
                    nullptr, s);
}

constexpr int kSumX = 32, kSumY = 8;

// out[c] = sum over rows of a[r, c]: one block per 32 columns, 8 row lanes reduced in shared
// memory in a fixed order, so the result is the same on every run.
template <typename T>
__global__ void column_sums_kernel(index_t rows, index_t cols, const T* __restrict__ a,
                                   T* __restrict__ out) {
  __shared__ T part[kSumY][kSumX + 1];
  const index_t c = index_t(blockIdx.x) * kSumX + threadIdx.x;
  T acc = T(0);
  if (c < cols)
    for (index_t r = threadIdx.y; r < rows; r += kSumY) acc += a[r * cols + c];
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    T tot = part[0][threadIdx.x];
#pragma unroll
    for (int k = 1; k < kSumY; ++k) tot += part[k][threadIdx.x];
    out[c] = tot;
  }
}

template <typename T>
void column_sums(index_t rows, index_t cols, const T* a, T* out, cudaStream_t s, const char* op) {
  const unsigned gx = unsigned((cols + kSumX - 1) / kSumX);
  column_sums_kernel<T><<<gx, dim3(kSumX, kSumY), 0, s>>>(rows, cols, a, out);
  check_launch(op);
}

// dW (GH x H) = sum over steps of dg[t]^T @ previous state: one GEMM over the L-1 steps that
// follow another step (contiguous runs of dg and hs), one for the first step's h0.
template <typename T>
void hidden_weight_grad(index_t L, index_t B, index_t H, index_t GH, const T* dg, const T* hs,
                        const T* h0, bool reverse, T* dw, Stream stream) {
  const index_t K = (L - 1) * B;
  const T* dg_run = reverse ? dg : dg + B * GH;
  const T* hs_run = reverse ? hs + B * H : hs;
  gemm<T>(Trans::T, Trans::N, GH, H, K, T(1), dg_run, GH, hs_run, H, T(0), dw, H, stream);
  if (h0) {
    const T* dg_first = dg + (reverse ? (L - 1) * B * GH : 0);
    gemm<T>(Trans::T, Trans::N, GH, H, B, T(1), dg_first, GH, h0, H, T(1), dw, H, stream);
  }
}

// dw_ih = dgx^T x and dx (+)= dgx @ w_ih over all steps at once.
template <typename T>
void input_grads(index_t rows, index_t I, index_t GH, const T* x, const T* w_ih, const T* dgx,
                 T* dx, bool dx_accumulate, T* dw_ih, Stream stream) {
  gemm<T>(Trans::T, Trans::N, GH, I, rows, T(1), dgx, GH, x, I, T(0), dw_ih, I, stream);
  if (dx)
    gemm<T>(Trans::N, Trans::N, rows, I, GH, T(1), dgx, GH, w_ih, I, dx_accumulate ? T(1) : T(0),
            dx, I, stream);
}

// dst = src, or zeros when src is null (n elements, on the stream).
template <typename T>
void copy_or_zero(T* dst, const T* src, index_t n, cudaStream_t s) {
  if (n <= 0) return;
  if (src)
    cudaMemcpyAsync(dst, src, size_t(n) * sizeof(T), cudaMemcpyDeviceToDevice, s);
  else
    cudaMemsetAsync(dst, 0, size_t(n) * sizeof(T), s);
}

}  // namespace
}  // namespace hepnn::cuda::rnn
