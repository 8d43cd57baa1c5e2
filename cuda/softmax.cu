// CUDA softmax and log-softmax over the middle axis of (outer, dim, inner), forward and backward.
// Variants: inner == 1 rows with one warp per row (dim <= 1024) or one block per row (longer);
// inner > 1 with one thread per (outer, inner) column. An online running max and sum of exp keep
// it stable with one read of x before the write.
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/device.hpp"
#include "cuda/dmath.cuh"
#include "cuda/launch.cuh"
#include "cuda/reduce_util.cuh"
#include "cuda/softmax.hpp"

namespace hepnn::cuda {
namespace {

// A row slice: element j of the row sits at p[j * step]; a thread visits j = first, first + by...
template <typename T>
__device__ __forceinline__ MaxSum<T> row_maxsum(const T* x, index_t dim, index_t step,
                                                index_t first, index_t by) {
  MaxSum<T> a = ms_init<T>();
  for (index_t j = first; j < dim; j += by) a = ms_push(a, x[j * step]);
  return a;
}

template <typename T>
__device__ __forceinline__ void row_write(const T* x, T* y, index_t dim, index_t step,
                                          index_t first, index_t by, MaxSum<T> a, bool log) {
  if (log) {
    const T logs = dm::log(a.s);
    for (index_t j = first; j < dim; j += by) y[j * step] = (x[j * step] - a.m) - logs;
  } else {
    for (index_t j = first; j < dim; j += by) y[j * step] = dm::exp(x[j * step] - a.m) / a.s;
  }
}

// Backward needs one sum per row: sum dy (log) or sum dy * y (softmax).
template <typename T>
__device__ __forceinline__ T row_dot(const T* y, const T* dy, index_t dim, index_t step,
                                     index_t first, index_t by, bool log) {
  T s = T(0);
  for (index_t j = first; j < dim; j += by) s += log ? dy[j * step] : dy[j * step] * y[j * step];
  return s;
}

template <typename T>
__device__ __forceinline__ void row_grad(const T* y, const T* dy, T* dx, index_t dim, index_t step,
                                         index_t first, index_t by, T s, bool log) {
  for (index_t j = first; j < dim; j += by) {
    const index_t k = j * step;
    dx[k] = log ? dy[k] - dm::exp(y[k]) * s : y[k] * (dy[k] - s);
  }
}

template <typename T>
__global__ void fwd_warp_rows(index_t rows, index_t dim, const T* __restrict__ x,
                              T* __restrict__ y, bool log) {
  const int lane = threadIdx.x & 31;
  const index_t wpb = blockDim.x >> 5;
  for (index_t r = index_t(blockIdx.x) * wpb + (threadIdx.x >> 5); r < rows;
       r += index_t(gridDim.x) * wpb) {
    const MaxSum<T> a = warp_ms(row_maxsum(x + r * dim, dim, 1, lane, 32));
    row_write(x + r * dim, y + r * dim, dim, 1, lane, 32, a, log);
  }
}

template <typename T>
__global__ void fwd_block_rows(index_t rows, index_t dim, const T* __restrict__ x,
                               T* __restrict__ y, bool log) {
  __shared__ T sm[32], ss[32];
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const MaxSum<T> a = block_ms(row_maxsum(x + r * dim, dim, 1, threadIdx.x, blockDim.x), sm, ss);
    row_write(x + r * dim, y + r * dim, dim, 1, threadIdx.x, blockDim.x, a, log);
  }
}

template <typename T>
__global__ void fwd_columns(index_t outer, index_t dim, index_t inner, const T* __restrict__ x,
                            T* __restrict__ y, bool log) {
  const index_t total = outer * inner, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t c = index_t(blockIdx.x) * blockDim.x + threadIdx.x; c < total; c += stride) {
    const index_t o = c / inner, base = o * dim * inner + (c - o * inner);
    const MaxSum<T> a = row_maxsum(x + base, dim, inner, 0, 1);
    row_write(x + base, y + base, dim, inner, 0, 1, a, log);
  }
}

template <typename T>
__global__ void bwd_warp_rows(index_t rows, index_t dim, const T* __restrict__ y,
                              const T* __restrict__ dy, T* __restrict__ dx, bool log) {
  const int lane = threadIdx.x & 31;
  const index_t wpb = blockDim.x >> 5;
  for (index_t r = index_t(blockIdx.x) * wpb + (threadIdx.x >> 5); r < rows;
       r += index_t(gridDim.x) * wpb) {
    const index_t o = r * dim;
    const T s = warp_sum(row_dot(y + o, dy + o, dim, 1, lane, 32, log));
    row_grad(y + o, dy + o, dx + o, dim, 1, lane, 32, s, log);
  }
}

template <typename T>
__global__ void bwd_block_rows(index_t rows, index_t dim, const T* __restrict__ y,
                               const T* __restrict__ dy, T* __restrict__ dx, bool log) {
  __shared__ T smem[32];
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const index_t o = r * dim;
    const T s = block_sum(row_dot(y + o, dy + o, dim, 1, threadIdx.x, blockDim.x, log), smem);
    row_grad(y + o, dy + o, dx + o, dim, 1, threadIdx.x, blockDim.x, s, log);
  }
}

template <typename T>
__global__ void bwd_columns(index_t outer, index_t dim, index_t inner, const T* __restrict__ y,
                            const T* __restrict__ dy, T* __restrict__ dx, bool log) {
  const index_t total = outer * inner, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t c = index_t(blockIdx.x) * blockDim.x + threadIdx.x; c < total; c += stride) {
    const index_t o = c / inner, base = o * dim * inner + (c - o * inner);
    const T s = row_dot(y + base, dy + base, dim, inner, 0, 1, log);
    row_grad(y + base, dy + base, dx + base, dim, inner, 0, 1, s, log);
  }
}

constexpr index_t kWarpRowMax = 1024;  // longer rows get a whole block
constexpr index_t kMaxRowBlocks = 16384;

}  // namespace

template <typename T>
void softmax_forward(index_t outer, index_t dim, index_t inner, const T* x, T* y, bool log,
                     Stream stream) {
  check_value(outer >= 0 && dim >= 0 && inner >= 0, "softmax_forward", "negative size");
  if (outer == 0 || dim == 0 || inner == 0) return;
  const cudaStream_t s = as_cuda(stream);
  if (inner > 1) {
    fwd_columns<T><<<grid_for(outer * inner), kBlock, 0, s>>>(outer, dim, inner, x, y, log);
  } else if (dim <= kWarpRowMax) {
    const unsigned blocks = grid_for(outer, kBlock / 32, kMaxRowBlocks);
    fwd_warp_rows<T><<<blocks, kBlock, 0, s>>>(outer, dim, x, y, log);
  } else {
    const unsigned blocks = unsigned(std::min(outer, kMaxRowBlocks));
    fwd_block_rows<T><<<blocks, kBlock, 0, s>>>(outer, dim, x, y, log);
  }
  check_launch("softmax_forward");
}

template <typename T>
void softmax_backward(index_t outer, index_t dim, index_t inner, const T* y, const T* dy, T* dx,
                      bool log, Stream stream) {
  check_value(outer >= 0 && dim >= 0 && inner >= 0, "softmax_backward", "negative size");
  if (outer == 0 || dim == 0 || inner == 0) return;
  const cudaStream_t s = as_cuda(stream);
  if (inner > 1) {
    bwd_columns<T><<<grid_for(outer * inner), kBlock, 0, s>>>(outer, dim, inner, y, dy, dx, log);
  } else if (dim <= kWarpRowMax) {
    const unsigned blocks = grid_for(outer, kBlock / 32, kMaxRowBlocks);
    bwd_warp_rows<T><<<blocks, kBlock, 0, s>>>(outer, dim, y, dy, dx, log);
  } else {
    const unsigned blocks = unsigned(std::min(outer, kMaxRowBlocks));
    bwd_block_rows<T><<<blocks, kBlock, 0, s>>>(outer, dim, y, dy, dx, log);
  }
  check_launch("softmax_backward");
}

template void softmax_forward<float>(index_t, index_t, index_t, const float*, float*, bool,
                                     Stream);
template void softmax_forward<double>(index_t, index_t, index_t, const double*, double*, bool,
                                      Stream);
template void softmax_backward<float>(index_t, index_t, index_t, const float*, const float*,
                                      float*, bool, Stream);
template void softmax_backward<double>(index_t, index_t, index_t, const double*, const double*,
                                       double*, bool, Stream);

}  // namespace hepnn::cuda
