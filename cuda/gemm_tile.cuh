// Tiled SIMT GEMM body shared by gemm.cu (alpha/beta epilogue) and linear.cu (bias + activation
// epilogue). Row-major C = op(A) @ op(B): a block computes a BM x BN tile of C, stepping K by BK
// through shared memory; each thread holds a TM x TN register micro-tile.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/types.hpp"

namespace hepnn::cuda::tile {

template <typename T>
struct Operands {
  const T* A;
  const T* B;
  index_t lda, ldb;
  index_t stride_a, stride_b;  // element distance between batch matrices (0 = broadcast)
  index_t M, N, K;
  // Split-K: when > 0, product z covers k in [z * k_split, min(K, (z + 1) * k_split)) of the
  // same A and B (strides 0) and the epilogue receives a partial sum for slab z.
  index_t k_split = 0;
};

// NOTE: a thread's micro-tile rows are tr, tr + BM/TM, ... (strided, not contiguous) so that a
// warp reads consecutive shared-memory words (no bank conflicts) and writes consecutive columns
// of C (coalesced). Rows of shared tiles are padded by 16 bytes: loads that walk K fastest
// then hit distinct banks. Two shared buffers: the next K step's global loads are issued into
// registers before the current step's FMAs and stored to the other buffer after them, so the
// memory latency hides behind arithmetic and each step needs one barrier, not two.
template <typename T, int BM, int BN, int BK, int TM, int TN, bool TA, bool TB, typename Epi>
__global__ void __launch_bounds__((BM / TM) * (BN / TN))
    gemm_tile_kernel(Operands<T> op, Epi epi, index_t batch0) {
  constexpr int kThreads = (BM / TM) * (BN / TN);
  constexpr int kPad = 16 / int(sizeof(T));
  static_assert((BM * BK) % kThreads == 0 && (BN * BK) % kThreads == 0, "tile loads must divide");
  constexpr int kLA = BM * BK / kThreads, kLB = BN * BK / kThreads;
  __shared__ T As[2][BK][BM + kPad];
  __shared__ T Bs[2][BK][BN + kPad];

  const index_t z = batch0 + blockIdx.z;
  const T* __restrict__ A = op.A + z * op.stride_a;
  const T* __restrict__ B = op.B + z * op.stride_b;
  const index_t m0 = index_t(blockIdx.x) * BM;
  const index_t n0 = index_t(blockIdx.y) * BN;
  const int tid = threadIdx.x;
  const int tr = tid / (BN / TN);
  const int tc = tid % (BN / TN);

  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

  index_t k_begin = 0, k_end = op.K;
  if (op.k_split > 0) {
    k_begin = z * op.k_split;
    k_end = op.K < k_begin + op.k_split ? op.K : k_begin + op.k_split;
  }
  // This thread's share of one K step: element e = tid + r * kThreads of each tile, walking the
  // operand's contiguous axis fastest so that global reads coalesce.
  T ra[kLA], rb[kLB];
  auto fetch = [&](index_t k0) {
#pragma unroll
    for (int r = 0; r < kLA; ++r) {
      const int e = tid + r * kThreads;
      const int mm = TA ? e % BM : e / BK, kk = TA ? e / BM : e % BK;
      const index_t gm = m0 + mm, gk = k0 + kk;
      ra[r] = (gm < op.M && gk < k_end) ? (TA ? A[gk * op.lda + gm] : A[gm * op.lda + gk]) : T(0);
    }
#pragma unroll
    for (int r = 0; r < kLB; ++r) {
      const int e = tid + r * kThreads;
      const int nn = TB ? e / BK : e % BN, kk = TB ? e % BK : e / BN;
      const index_t gn = n0 + nn, gk = k0 + kk;
      rb[r] = (gn < op.N && gk < k_end) ? (TB ? B[gn * op.ldb + gk] : B[gk * op.ldb + gn]) : T(0);
    }
  };
  auto stash = [&](int buf) {
#pragma unroll
    for (int r = 0; r < kLA; ++r) {
      const int e = tid + r * kThreads;
      As[buf][TA ? e / BM : e % BK][TA ? e % BM : e / BK] = ra[r];
    }
#pragma unroll
    for (int r = 0; r < kLB; ++r) {
      const int e = tid + r * kThreads;
      Bs[buf][TB ? e % BK : e / BN][TB ? e / BK : e % BN] = rb[r];
    }
  };
  if (k_begin < k_end) {
    fetch(k_begin);
    stash(0);
  }
  __syncthreads();
  int buf = 0;
  for (index_t k0 = k_begin; k0 < k_end; k0 += BK) {
    const bool more = k0 + BK < k_end;
    if (more) fetch(k0 + BK);
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[buf][kk][tr + i * (BM / TM)];
#pragma unroll
      for (int j = 0; j < TN; ++j) b[j] = Bs[buf][kk][tc + j * (BN / TN)];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
    }
    // The other buffer was last read before the previous barrier: safe to overwrite now.
    if (more) stash(buf ^ 1);
    __syncthreads();
    buf ^= 1;
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const index_t gm = m0 + tr + i * (BM / TM);
    if (gm >= op.M) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const index_t gn = n0 + tc + j * (BN / TN);
      if (gn < op.N) epi(z, gm, gn, acc[i][j]);
    }
  }
}

// Grid: x over M tiles (up to 2^31-1), y over N tiles, z over the batch in chunks of 65535.
template <typename T, int BM, int BN, int BK, int TM, int TN, bool TA, bool TB, typename Epi>
void launch_tiles(const Operands<T>& op, const Epi& epi, index_t batch, cudaStream_t s,
                  const char* name) {
  constexpr int kThreads = (BM / TM) * (BN / TN);
  const index_t gx = (op.M + BM - 1) / BM;
  const index_t gy = (op.N + BN - 1) / BN;
  check_value(gx <= 0x7fffffff && gy <= 65535, name, "matrix too large for one launch");
  for (index_t b0 = 0; b0 < batch; b0 += 65535) {
    const dim3 grid(unsigned(gx), unsigned(gy), unsigned(std::min<index_t>(65535, batch - b0)));
    gemm_tile_kernel<T, BM, BN, BK, TM, TN, TA, TB, Epi><<<grid, kThreads, 0, s>>>(op, epi, b0);
  }
}

}  // namespace hepnn::cuda::tile
