// Deterministic warp and block reductions (xor butterflies: every lane ends with the bitwise-same
// value) and the running (max, sum of exp) pair behind softmax, log-sum-exp and cross-entropy.
#pragma once
#include <cuda_runtime.h>

#include "cuda/dmath.cuh"

namespace hepnn::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

// Sum over a block whose size is a multiple of 32; every thread gets the result. `smem` holds 32
// values and may be reused by the next call (the leading barrier protects it).
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? smem[lane] : T(0));
}

// Running max m and s = sum exp(x - m). NOTE: m never holds NaN (comparisons with NaN are false);
// a NaN input turns s into NaN instead, so it still reaches every output of the row.
template <typename T>
struct MaxSum {
  T m, s;
};

template <typename T>
__device__ __forceinline__ MaxSum<T> ms_init() {
  return {dm::neg_inf<T>(), T(0)};
}

template <typename T>
__device__ __forceinline__ MaxSum<T> ms_push(MaxSum<T> a, T x) {
  const T m = x > a.m ? x : a.m;
  if (m == dm::neg_inf<T>()) return {m, dm::isnan(x) ? x : a.s};  // only -inf (or NaN) so far
  return {m, a.s * dm::exp(a.m - m) + dm::exp(x - m)};
}

template <typename T>
__device__ __forceinline__ MaxSum<T> ms_merge(MaxSum<T> a, MaxSum<T> b) {
  const T m = a.m > b.m ? a.m : b.m;
  if (m == dm::neg_inf<T>()) return {m, a.s + b.s};
  return {m, a.s * dm::exp(a.m - m) + b.s * dm::exp(b.m - m)};
}

template <typename T>
__device__ __forceinline__ MaxSum<T> warp_ms(MaxSum<T> a) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const MaxSum<T> b{__shfl_xor_sync(kFullMask, a.m, o), __shfl_xor_sync(kFullMask, a.s, o)};
    a = ms_merge(a, b);
  }
  return a;
}

// Block-wide merge; `sm`, `ss` hold 32 values each.
template <typename T>
__device__ __forceinline__ MaxSum<T> block_ms(MaxSum<T> a, T* sm, T* ss) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  a = warp_ms(a);
  __syncthreads();
  if (lane == 0) {
    sm[warp] = a.m;
    ss[warp] = a.s;
  }
  __syncthreads();
  MaxSum<T> b = lane < warps ? MaxSum<T>{sm[lane], ss[lane]} : ms_init<T>();
  return warp_ms(b);
}

}  // namespace hepnn::cuda
