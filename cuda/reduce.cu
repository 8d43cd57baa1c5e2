// CUDA reductions sum / mean / max (+ argmax of the first maximum, NaN propagating) over the middle
// axis of (outer, dim, inner). Variants: inner == 1 rows with a warp per row (dim <= 1024) or a
// block per row; inner > 1 with 32-column x 8-row blocks. Float and double; results are deterministic.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/device.hpp"
#include "cuda/dmath.cuh"
#include "cuda/launch.cuh"
#include "cuda/reduce.hpp"
#include "cuda/reduce_util.cuh"

namespace hepnn::cuda {
namespace {

// Running state for every op: the sum, or the best value and its index. The op is uniform over a
// launch, so branching on it costs no divergence.
template <typename T>
struct Acc {
  T v;
  index_t i;
};

constexpr index_t kNoIndex = INT64_MAX;  // loses every tie, so the first real index wins

template <typename T>
__device__ __forceinline__ Acc<T> acc_init(ReduceOp op) {
  return op == ReduceOp::max ? Acc<T>{dm::neg_inf<T>(), kNoIndex} : Acc<T>{T(0), 0};
}

// True when (v2, i2) should replace (v1, i1) for max: NaN ranks above every number, and among
// equal values (or two NaNs) the smaller index wins. A total order, so merging is commutative.
template <typename T>
__device__ __forceinline__ bool max_takes(T v1, index_t i1, T v2, index_t i2) {
  const bool n1 = dm::isnan(v1), n2 = dm::isnan(v2);
  if (n1 || n2) return n1 && n2 ? i2 < i1 : n2;
  if (v2 != v1) return v2 > v1;
  return i2 < i1;
}

template <typename T>
__device__ __forceinline__ Acc<T> acc_merge(ReduceOp op, Acc<T> a, Acc<T> b) {
  if (op != ReduceOp::max) return {a.v + b.v, 0};
  return max_takes(a.v, a.i, b.v, b.i) ? b : a;
}

template <typename T>
__device__ __forceinline__ Acc<T> acc_slice(ReduceOp op, const T* x, index_t dim, index_t step,
                                            index_t first, index_t by) {
  Acc<T> a = acc_init<T>(op);
  for (index_t j = first; j < dim; j += by) a = acc_merge(op, a, Acc<T>{x[j * step], j});
  return a;
}

template <typename T>
__device__ __forceinline__ Acc<T> warp_acc(ReduceOp op, Acc<T> a) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const Acc<T> b{__shfl_xor_sync(kFullMask, a.v, o),
                   static_cast<index_t>(__shfl_xor_sync(kFullMask, static_cast<long long>(a.i), o))};
    a = acc_merge(op, a, b);
  }
  return a;
}

template <typename T>
__device__ __forceinline__ void acc_store(ReduceOp op, Acc<T> a, index_t dim, index_t k, T* y,
                                          index_t* argmax) {
  y[k] = op == ReduceOp::mean ? a.v / T(dim) : a.v;
  if (argmax && op == ReduceOp::max) argmax[k] = a.i;
}

template <typename T>
__global__ void warp_rows(ReduceOp op, index_t rows, index_t dim, const T* __restrict__ x,
                          T* __restrict__ y, index_t* __restrict__ argmax) {
  const int lane = threadIdx.x & 31;
  const index_t wpb = blockDim.x >> 5;
  for (index_t r = index_t(blockIdx.x) * wpb + (threadIdx.x >> 5); r < rows;
       r += index_t(gridDim.x) * wpb) {
    const Acc<T> a = warp_acc(op, acc_slice(op, x + r * dim, dim, 1, lane, 32));
    if (lane == 0) acc_store(op, a, dim, r, y, argmax);
  }
}

template <typename T>
__global__ void block_rows(ReduceOp op, index_t rows, index_t dim, const T* __restrict__ x,
                           T* __restrict__ y, index_t* __restrict__ argmax) {
  __shared__ T sv[32];
  __shared__ index_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    Acc<T> a = warp_acc(op, acc_slice(op, x + r * dim, dim, 1, threadIdx.x, blockDim.x));
    __syncthreads();  // the previous row's readers are done with sv/si
    if (lane == 0) {
      sv[warp] = a.v;
      si[warp] = a.i;
    }
    __syncthreads();
    if (warp == 0) {
      a = lane < warps ? Acc<T>{sv[lane], si[lane]} : acc_init<T>(op);
      a = warp_acc(op, a);
      if (lane == 0) acc_store(op, a, dim, r, y, argmax);
    }
  }
}

// inner > 1: a 32 x 8 block owns 32 consecutive inner columns of one outer slice; threadIdx.x
// walks the contiguous columns (coalesced), threadIdx.y strides dim, and the 8 partial results
// merge in a fixed order.
constexpr int kColX = 32, kColY = 8;
template <typename T>
__global__ void columns(ReduceOp op, index_t outer, index_t dim, index_t inner,
                        const T* __restrict__ x, T* __restrict__ y, index_t* __restrict__ argmax) {
  __shared__ T sv[kColY][kColX + 1];
  __shared__ index_t si[kColY][kColX + 1];
  const index_t col_tiles = (inner + kColX - 1) / kColX, tiles = outer * col_tiles;
  for (index_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const index_t o = t / col_tiles, i = (t - o * col_tiles) * kColX + threadIdx.x;
    Acc<T> a = acc_init<T>(op);
    if (i < inner) a = acc_slice(op, x + o * dim * inner + i, dim, inner, threadIdx.y, kColY);
    __syncthreads();  // the previous tile's readers are done with sv/si
    sv[threadIdx.y][threadIdx.x] = a.v;
    si[threadIdx.y][threadIdx.x] = a.i;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
#pragma unroll
      for (int k = 1; k < kColY; ++k)
        a = acc_merge(op, a, Acc<T>{sv[k][threadIdx.x], si[k][threadIdx.x]});
      acc_store(op, a, dim, o * inner + i, y, argmax);
    }
  }
}

}  // namespace

template <typename T>
void reduce_forward(ReduceOp op, index_t outer, index_t dim, index_t inner, const T* x, T* y,
                    index_t* argmax, Stream stream) {
  check_value(outer >= 0 && dim >= 0 && inner >= 0, "reduce", "negative size");
  check_value(op == ReduceOp::sum || op == ReduceOp::mean || op == ReduceOp::max, "reduce",
              "unknown reduction");
  check_value(op != ReduceOp::max || dim > 0 || outer * inner == 0, "reduce",
              "max over an empty axis is undefined");
  if (outer == 0 || inner == 0) return;
  const cudaStream_t s = as_cuda(stream);
  if (inner > 1 || dim == 0) {
    const index_t tiles = outer * ((inner + kColX - 1) / kColX);
    columns<T><<<unsigned(std::min<index_t>(tiles, 16384)), dim3(kColX, kColY), 0, s>>>(
        op, outer, dim, inner, x, y, argmax);
  } else if (dim <= 1024) {
    warp_rows<T><<<grid_for(outer, kBlock / 32, 16384), kBlock, 0, s>>>(op, outer, dim, x, y,
                                                                          argmax);
  } else {
    const unsigned blocks = unsigned(std::min<index_t>(outer, 16384));
    block_rows<T><<<blocks, kBlock, 0, s>>>(op, outer, dim, x, y, argmax);
  }
  check_launch("reduce");
}

template void reduce_forward<float>(ReduceOp, index_t, index_t, index_t, const float*, float*,
                                    index_t*, Stream);
template void reduce_forward<double>(ReduceOp, index_t, index_t, index_t, const double*, double*,
                                     index_t*, Stream);

}  // namespace hepnn::cuda
