// CUDA GEMM, row-major C = alpha * op(A) @ op(B) + beta * C, single and batched (grid z, stride 0
// broadcasts). Variants: float and double x the four transpose combinations, tile shapes chosen
// by size in gemm_tile.cuh (or the opt-in TF32 tensor-core tiles of gemm_tf32.cuh), and a
// deterministic split-K for small outputs with a long K.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>

#include "cuda/device.hpp"
#include "cuda/gemm.hpp"
#include "cuda/gemm_dispatch.cuh"
#include "cuda/launch.cuh"

namespace hepnn::cuda {
namespace {

// alpha * acc + beta * C into C; or, for split-K (slab != null), the raw partial sum into slab z.
// One epilogue type for both keeps the number of kernel instantiations (and compile time) down.
template <typename T>
struct GemmEpilogue {
  T* C;
  index_t ldc, stride_c;
  T alpha, beta;
  T* slab;
  index_t slab_stride;
  __device__ __forceinline__ void operator()(index_t z, index_t m, index_t n, T acc) const {
    if (slab) {
      slab[z * slab_stride + m * ldc + n] = acc;
      return;
    }
    T* c = C + z * stride_c + m * ldc + n;
    // BLAS convention: alpha == 0 does not propagate A or B, beta == 0 does not read C.
    T v = alpha == T(0) ? T(0) : alpha * acc;
    if (beta != T(0)) v += beta * *c;
    *c = v;
  }
};

// C = alpha * (sum of the S slabs, added in slab order: deterministic) + beta * C.
template <typename T>
__global__ void split_sum_kernel(index_t M, index_t N, index_t S, const T* __restrict__ slabs,
                                 T alpha, T beta, T* __restrict__ C, index_t ldc) {
  const index_t mn = M * N, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t e = index_t(blockIdx.x) * blockDim.x + threadIdx.x; e < mn; e += stride) {
    T acc = T(0);
    for (index_t z = 0; z < S; ++z) acc += slabs[z * mn + e];
    const index_t m = e / N, n = e - m * N;
    T* c = C + m * ldc + n;
    T v = alpha == T(0) ? T(0) : alpha * acc;
    if (beta != T(0)) v += beta * *c;
    *c = v;
  }
}

// Split-K pays when the output has too few 64 x 64 tiles to occupy the GPU (e.g. dW = dz^T x of a
// narrow layer, K = batch) and K is long: aim at ~2 blocks per SM of a 132-SM part, with at least
// 128 k per split so the extra pass over the slabs stays small.
constexpr index_t kSplitTargetBlocks = 264;
constexpr index_t kSplitMinK = 128;

index_t split_k_length(index_t M, index_t N, index_t K) {
  const index_t tiles = ((M + 63) / 64) * ((N + 63) / 64);
  if (tiles * 4 > kSplitTargetBlocks || K < 2 * kSplitMinK) return 0;
  const index_t splits = std::min(kSplitTargetBlocks / tiles, K / kSplitMinK);
  if (splits < 2) return 0;
  const index_t len = (K + splits - 1) / splits;
  return (len + 7) / 8 * 8;  // whole BK steps per split
}

template <typename T, bool TA, bool TB>
void gemm_combo(tile::Operands<T> op, index_t batch, T alpha, T beta, T* C, index_t ldc,
                index_t stride_c, cudaStream_t s) {
  const index_t k_len = batch == 1 ? split_k_length(op.M, op.N, op.K) : 0;
  if (k_len == 0) {
    tile::run_tiles<T, TA, TB>(op, GemmEpilogue<T>{C, ldc, stride_c, alpha, beta, nullptr, 0},
                               batch, s, "gemm");
    return;
  }
  const index_t splits = (op.K + k_len - 1) / k_len;
  const index_t mn = op.M * op.N;
  Scratch<T> slabs(static_cast<std::size_t>(splits * mn), s, "gemm");
  op.k_split = k_len;
  op.stride_a = op.stride_b = 0;
  // Slabs are dense M x N (row stride N).
  const GemmEpilogue<T> epi{nullptr, op.N, 0, T(1), T(0), slabs.get(), mn};
  tile::run_split_tiles<T, TA, TB>(op, epi, splits, s, "gemm");
  split_sum_kernel<T><<<grid_for(mn), kBlock, 0, s>>>(op.M, op.N, splits, slabs.get(), alpha, beta,
                                                      C, ldc);
}

std::atomic<bool> g_tf32{false};

}  // namespace

bool tf32_allowed() { return g_tf32.load(std::memory_order_relaxed); }
void set_tf32_allowed(bool allowed) { g_tf32.store(allowed, std::memory_order_relaxed); }

template <typename T>
void gemm_batched(Trans ta, Trans tb, index_t batch, index_t M, index_t N, index_t K, T alpha,
                  const T* A, index_t lda, index_t stride_a, const T* B, index_t ldb,
                  index_t stride_b, T beta, T* C, index_t ldc, index_t stride_c, Stream stream) {
  check_value(batch >= 0 && M >= 0 && N >= 0 && K >= 0, "gemm", "negative size");
  if (batch == 0 || M == 0 || N == 0) return;
  const tile::Operands<T> op{A, B, lda, ldb, stride_a, stride_b, M, N, K};
  const cudaStream_t s = as_cuda(stream);
  const bool at = ta == Trans::T, bt = tb == Trans::T;
  if (!at && !bt) gemm_combo<T, false, false>(op, batch, alpha, beta, C, ldc, stride_c, s);
  else if (!at && bt) gemm_combo<T, false, true>(op, batch, alpha, beta, C, ldc, stride_c, s);
  else if (at && !bt) gemm_combo<T, true, false>(op, batch, alpha, beta, C, ldc, stride_c, s);
  else gemm_combo<T, true, true>(op, batch, alpha, beta, C, ldc, stride_c, s);
  check_launch("gemm");
}

template <typename T>
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
          const T* B, index_t ldb, T beta, T* C, index_t ldc, Stream stream) {
  gemm_batched<T>(ta, tb, 1, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, stream);
}

template void gemm<float>(Trans, Trans, index_t, index_t, index_t, float, const float*, index_t,
                          const float*, index_t, float, float*, index_t, Stream);
template void gemm<double>(Trans, Trans, index_t, index_t, index_t, double, const double*, index_t,
                           const double*, index_t, double, double*, index_t, Stream);
template void gemm_batched<float>(Trans, Trans, index_t, index_t, index_t, index_t, float,
                                  const float*, index_t, index_t, const float*, index_t, index_t,
                                  float, float*, index_t, index_t, Stream);
template void gemm_batched<double>(Trans, Trans, index_t, index_t, index_t, index_t, double,
                                   const double*, index_t, index_t, const double*, index_t,
                                   index_t, double, double*, index_t, index_t, Stream);

}  // namespace hepnn::cuda
