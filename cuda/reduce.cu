// CUDA reductions sum / mean / max (+ argmax of the first maximum, NaN propagating) over the middle
// axis of (outer, dim, inner). Variants: inner == 1 rows (a warp per row up to 1024, else a block),
// inner > 1 with 32-column x 8-row blocks; few long slices split dim into chunks and reduce the chunk
// partials in a second pass. Float and double; the result depends only on the sizes (deterministic).
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
// launch, so branching on it costs no divergence. Sums accumulate in double for float inputs too,
// as the CPU kernel does: the two backends then agree to float32 rounding of the result, and long
// float32 rows keep their precision (a reduction is memory-bound; the double adds are free).
template <typename T>
struct Acc {
  double v;
  index_t i;
};

constexpr index_t kNoIndex = INT64_MAX;  // loses every tie, so the first real index wins

template <typename T>
__device__ __forceinline__ Acc<T> acc_init(ReduceOp op) {
  return op == ReduceOp::max ? Acc<T>{dm::neg_inf<double>(), kNoIndex} : Acc<T>{0.0, 0};
}

// True when (v2, i2) should replace (v1, i1) for max: NaN ranks above every number, and among
// equal values (or two NaNs) the smaller index wins. A total order, so merging is commutative.
__device__ __forceinline__ bool max_takes(double v1, index_t i1, double v2, index_t i2) {
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

// Elements come from x (index = position j along dim) or, in a second pass, from chunk partials
// that carry their own index in xi.
template <typename T>
__device__ __forceinline__ Acc<T> acc_slice(ReduceOp op, const T* x, const index_t* xi,
                                            index_t j0, index_t j1, index_t step, index_t first,
                                            index_t by) {
  Acc<T> a = acc_init<T>(op);
  for (index_t j = j0 + first; j < j1; j += by)
    a = acc_merge(op, a, Acc<T>{static_cast<double>(x[j * step]), xi ? xi[j * step] : j});
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

// Where results go: final (mean divides by the full dim, argmax optional) or raw chunk partials.
template <typename T>
struct Sink {
  T* y;
  index_t* idx;
  index_t divisor;
  bool raw;
  __device__ __forceinline__ void store(ReduceOp op, Acc<T> a, index_t k) const {
    if (raw) {
      y[k] = static_cast<T>(a.v);
      idx[k] = a.i;
      return;
    }
    y[k] = static_cast<T>(op == ReduceOp::mean ? a.v / static_cast<double>(divisor) : a.v);
    if (idx && op == ReduceOp::max) idx[k] = a.i;
  }
};

template <typename T>
__global__ void warp_rows(ReduceOp op, index_t rows, index_t dim, const T* __restrict__ x,
                          const index_t* __restrict__ xi, Sink<T> out) {
  const int lane = threadIdx.x & 31;
  const index_t wpb = blockDim.x >> 5;
  for (index_t r = index_t(blockIdx.x) * wpb + (threadIdx.x >> 5); r < rows;
       r += index_t(gridDim.x) * wpb) {
    const Acc<T> a =
        warp_acc(op, acc_slice(op, x + r * dim, xi ? xi + r * dim : nullptr, 0, dim, 1, lane, 32));
    if (lane == 0) out.store(op, a, r);
  }
}

// Block-wide merge; thread 0 gets the result.
template <typename T>
__device__ __forceinline__ Acc<T> block_acc(ReduceOp op, Acc<T> a) {
  __shared__ double sv[32];
  __shared__ index_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  a = warp_acc(op, a);
  __syncthreads();  // the previous call's readers are done with sv/si
  if (lane == 0) {
    sv[warp] = a.v;
    si[warp] = a.i;
  }
  __syncthreads();
  if (warp == 0) a = warp_acc(op, lane < warps ? Acc<T>{sv[lane], si[lane]} : acc_init<T>(op));
  return a;
}

template <typename T>
__global__ void block_rows(ReduceOp op, index_t rows, index_t dim, const T* __restrict__ x,
                           const index_t* __restrict__ xi, Sink<T> out) {
  for (index_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const Acc<T> a = block_acc(
        op, acc_slice(op, x + r * dim, xi ? xi + r * dim : nullptr, 0, dim, 1, threadIdx.x,
                      blockDim.x));
    if (threadIdx.x == 0) out.store(op, a, r);
  }
}

// First pass for few long rows: block (c, r) reduces chunk c = [c L, (c + 1) L) of row r into
// partial r * gridDim.x + c.
template <typename T>
__global__ void row_chunks(ReduceOp op, index_t dim, index_t L, const T* __restrict__ x,
                           Sink<T> out) {
  const index_t r = blockIdx.y, c = blockIdx.x, j0 = c * L;
  const index_t j1 = j0 + L < dim ? j0 + L : dim;
  const Acc<T> a = block_acc(op, acc_slice(op, x + r * dim, static_cast<const index_t*>(nullptr),
                                           j0, j1, 1, threadIdx.x, blockDim.x));
  if (threadIdx.x == 0) out.store(op, a, r * gridDim.x + c);
}

// inner > 1: a 32 x 8 block owns 32 consecutive inner columns of one outer slice and one chunk
// [p L, (p + 1) L) of dim; threadIdx.x walks the contiguous columns (coalesced), threadIdx.y
// strides the chunk, and the 8 partial results merge in a fixed order. Result (o, p, i) goes to
// (o * P + p) * inner + i, which is the final (o, i) when P == 1.
constexpr int kColX = 32, kColY = 8;
template <typename T>
__global__ void columns(ReduceOp op, index_t outer, index_t dim, index_t inner, index_t L,
                        index_t P, const T* __restrict__ x, const index_t* __restrict__ xi,
                        Sink<T> out) {
  __shared__ double sv[kColY][kColX + 1];
  __shared__ index_t si[kColY][kColX + 1];
  const index_t col_tiles = (inner + kColX - 1) / kColX, tiles = outer * col_tiles * P;
  for (index_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const index_t p = t % P, ot = t / P;
    const index_t o = ot / col_tiles, i = (ot - o * col_tiles) * kColX + threadIdx.x;
    const index_t j0 = p * L, j1 = j0 + L < dim ? j0 + L : dim;
    Acc<T> a = acc_init<T>(op);
    if (i < inner) {
      const index_t base = o * dim * inner + i;
      a = acc_slice(op, x + base, xi ? xi + base : nullptr, j0, j1, inner, threadIdx.y, kColY);
    }
    __syncthreads();  // the previous tile's readers are done with sv/si
    sv[threadIdx.y][threadIdx.x] = a.v;
    si[threadIdx.y][threadIdx.x] = a.i;
    __syncthreads();
    if (threadIdx.y == 0 && i < inner) {
#pragma unroll
      for (int k = 1; k < kColY; ++k)
        a = acc_merge(op, a, Acc<T>{sv[k][threadIdx.x], si[k][threadIdx.x]});
      out.store(op, a, (o * P + p) * inner + i);
    }
  }
}

constexpr index_t kMaxBlocks = 16384;

template <typename T>
void rows_pass(ReduceOp op, index_t rows, index_t dim, const T* x, const index_t* xi, Sink<T> out,
               cudaStream_t s) {
  if (dim <= 1024)
    warp_rows<T><<<grid_for(rows, kBlock / 32, kMaxBlocks), kBlock, 0, s>>>(op, rows, dim, x, xi,
                                                                             out);
  else
    block_rows<T><<<unsigned(std::min(rows, kMaxBlocks)), kBlock, 0, s>>>(op, rows, dim, x, xi,
                                                                          out);
}

template <typename T>
void columns_pass(ReduceOp op, index_t outer, index_t dim, index_t inner, index_t L, index_t P,
                  const T* x, const index_t* xi, Sink<T> out, cudaStream_t s) {
  const index_t blocks = outer * ((inner + kColX - 1) / kColX) * P;
  columns<T><<<unsigned(std::min(blocks, kMaxBlocks)), dim3(kColX, kColY), 0, s>>>(
      op, outer, dim, inner, L, P, x, xi, out);
}

// Chunks along dim when the slices alone cannot occupy the GPU (e.g. a full sum, or a mean over
// the batch axis of a few features): aim at ~1024 blocks, chunks of at least 8192 elements for
// rows and 512 rows for columns. 1 = no split.
index_t row_chunk_count(index_t outer, index_t dim) {
  if (outer >= 256 || dim < 4 * 8192) return 1;
  return std::min((dim + 8191) / 8192, std::max<index_t>(2, 1024 / outer));
}
index_t column_chunk_count(index_t outer, index_t dim, index_t inner) {
  const index_t tiles = outer * ((inner + kColX - 1) / kColX);
  if (tiles >= 256 || dim < 4 * 512) return 1;
  return std::min((dim + 511) / 512, std::max<index_t>(2, 1024 / tiles));
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
  const Sink<T> final_out{y, argmax, dim, false};
  const bool rows = inner == 1;
  index_t P = rows ? row_chunk_count(outer, dim) : column_chunk_count(outer, dim, inner);
  if (P == 1) {
    if (rows) rows_pass<T>(op, outer, dim, x, nullptr, final_out, s);
    else columns_pass<T>(op, outer, dim, inner, dim, 1, x, nullptr, final_out, s);
    check_launch("reduce");
    return;
  }
  const index_t L = (dim + P - 1) / P;
  P = (dim + L - 1) / L;
  const std::size_t parts = static_cast<std::size_t>(outer * P * inner);
  Scratch<T> pv(parts, s, "reduce");
  Scratch<index_t> pi(parts, s, "reduce");
  const Sink<T> partial_out{pv.get(), pi.get(), 1, true};
  if (rows) {
    row_chunks<T><<<dim3(unsigned(P), unsigned(outer)), kBlock, 0, s>>>(op, dim, L, x, partial_out);
    rows_pass<T>(op, outer, P, pv.get(), pi.get(), final_out, s);
  } else {
    columns_pass<T>(op, outer, dim, inner, L, P, x, nullptr, partial_out, s);
    columns_pass<T>(op, outer, P, inner, P, 1, pv.get(), pi.get(), final_out, s);
  }
  check_launch("reduce");
}

template void reduce_forward<float>(ReduceOp, index_t, index_t, index_t, const float*, float*,
                                    index_t*, Stream);
template void reduce_forward<double>(ReduceOp, index_t, index_t, index_t, const double*, double*,
                                     index_t*, Stream);

}  // namespace hepnn::cuda
