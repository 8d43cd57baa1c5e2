// Opt-in TF32 tensor-core GEMM body (hepnn.cuda.set_allow_tf32(True)), float only, with the same
// operand description and epilogue as the SIMT tiles of gemm_tile.cuh, so gemm and linear both
// use it. Inputs are rounded to TF32 (10-bit mantissa) as they enter the tensor cores; sums stay
// fp32. A block computes a 128 x 128 tile with 8 warps of 64 x 32 (4 x 2 wmma 16x16x8
// fragments), stepping K by 16 through padded shared memory; results pass through a per-warp
// 16 x 16 staging tile so the element-wise epilogue (alpha/beta, bias, activation) is unchanged.
#pragma once
#include <cuda_runtime.h>
#include <mma.h>

#include "cuda/gemm_tile.cuh"

namespace hepnn::cuda::tile {

constexpr int kTfBM = 128, kTfBN = 128, kTfBK = 16, kTfThreads = 256;
constexpr int kTfPadA = 4, kTfPadB = 4;  // keeps rows 16-byte multiples and 32-byte fragment bases

template <bool TA, bool TB, typename Epi>
__global__ void __launch_bounds__(kTfThreads) gemm_tf32_kernel(Operands<float> op, Epi epi, index_t batch0) {
  namespace wmma = nvcuda::wmma;
  __shared__ __align__(32) float As[kTfBM][kTfBK + kTfPadA];
  __shared__ __align__(32) float Bs[kTfBK][kTfBN + kTfPadB];
  __shared__ __align__(32) float Cs[kTfThreads / 32][16][16];

  const index_t z = batch0 + blockIdx.z;
  const float* __restrict__ A = op.A + z * op.stride_a;
  const float* __restrict__ B = op.B + z * op.stride_b;
  const index_t m0 = index_t(blockIdx.x) * kTfBM, n0 = index_t(blockIdx.y) * kTfBN;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wm = warp / 4, wn = warp % 4;  // warp tile origin (wm * 64, wn * 32)

  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[4][2];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  index_t k_begin = 0, k_end = op.K;
  if (op.k_split > 0) {
    k_begin = z * op.k_split;
    k_end = op.K < k_begin + op.k_split ? op.K : k_begin + op.k_split;
  }
  for (index_t k0 = k_begin; k0 < k_end; k0 += kTfBK) {
    // Loads walk each operand's contiguous axis fastest (coalesced); zeros past the edges.
#pragma unroll
    for (int r = 0; r < kTfBM * kTfBK / kTfThreads; ++r) {
      const int e = tid + r * kTfThreads;
      const int mm = TA ? e % kTfBM : e / kTfBK, kk = TA ? e / kTfBM : e % kTfBK;
      const index_t gm = m0 + mm, gk = k0 + kk;
      As[mm][kk] = (gm < op.M && gk < k_end) ? (TA ? A[gk * op.lda + gm] : A[gm * op.lda + gk]) : 0.0f;
    }
#pragma unroll
    for (int r = 0; r < kTfBN * kTfBK / kTfThreads; ++r) {
      const int e = tid + r * kTfThreads;
      const int nn = TB ? e / kTfBK : e % kTfBN, kk = TB ? e % kTfBK : e / kTfBN;
      const index_t gn = n0 + nn, gk = k0 + kk;
      Bs[kk][nn] = (gn < op.N && gk < k_end) ? (TB ? B[gn * op.ldb + gk] : B[gk * op.ldb + gn]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTfBK; kk += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a[4];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b[2];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        wmma::load_matrix_sync(a[i], &As[wm * 64 + i * 16][kk], kTfBK + kTfPadA);
#pragma unroll
        for (int t = 0; t < a[i].num_elements; ++t) a[i].x[t] = wmma::__float_to_tf32(a[i].x[t]);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::load_matrix_sync(b[j], &Bs[kk][wn * 32 + j * 16], kTfBN + kTfPadB);
#pragma unroll
        for (int t = 0; t < b[j].num_elements; ++t) b[j].x[t] = wmma::__float_to_tf32(b[j].x[t]);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(&Cs[warp][0][0], acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      const index_t gm0 = m0 + wm * 64 + i * 16, gn0 = n0 + wn * 32 + j * 16;
#pragma unroll
      for (int t = 0; t < 8; ++t) {
        const int e = lane + 32 * t, r = e / 16, c = e % 16;
        if (gm0 + r < op.M && gn0 + c < op.N) epi(z, gm0 + r, gn0 + c, Cs[warp][r][c]);
      }
      __syncwarp();
    }
}

template <bool TA, bool TB, typename Epi>
void launch_tf32(const Operands<float>& op, const Epi& epi, index_t batch, cudaStream_t s, const char* name) {
  const index_t gx = (op.M + kTfBM - 1) / kTfBM, gy = (op.N + kTfBN - 1) / kTfBN;
  check_value(gx <= 0x7fffffff && gy <= 65535, name, "matrix too large for one launch");
  for (index_t b0 = 0; b0 < batch; b0 += 65535) {
    const dim3 grid(unsigned(gx), unsigned(gy), unsigned(std::min<index_t>(65535, batch - b0)));
    gemm_tf32_kernel<TA, TB, Epi><<<grid, kTfThreads, 0, s>>>(op, epi, b0);
  }
}

}  // namespace hepnn::cuda::tile
