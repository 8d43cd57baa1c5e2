// CUDA GEMM, row-major C = alpha * op(A) @ op(B) + beta * C, single and batched (grid z, stride 0
// broadcasts). Variants: float and double x the four transpose combinations, tile shapes chosen
// by size in gemm_tile.cuh. beta == 0 never reads C.
#include <cuda_runtime.h>

#include "cuda/device.hpp"
#include "cuda/gemm.hpp"
#include "cuda/gemm_tile.cuh"
#include "cuda/launch.cuh"

namespace hepnn::cuda {
namespace {

template <typename T>
struct AlphaBetaEpilogue {
  T* C;
  index_t ldc, stride_c;
  T alpha, beta;
  __device__ __forceinline__ void operator()(index_t z, index_t m, index_t n, T acc) const {
    T* c = C + z * stride_c + m * ldc + n;
    // BLAS convention: alpha == 0 does not propagate A or B, beta == 0 does not read C.
    T v = alpha == T(0) ? T(0) : alpha * acc;
    if (beta != T(0)) v += beta * *c;
    *c = v;
  }
};

}  // namespace

template <typename T>
void gemm_batched(Trans ta, Trans tb, index_t batch, index_t M, index_t N, index_t K, T alpha,
                  const T* A, index_t lda, index_t stride_a, const T* B, index_t ldb,
                  index_t stride_b, T beta, T* C, index_t ldc, index_t stride_c, Stream stream) {
  check_value(batch >= 0 && M >= 0 && N >= 0 && K >= 0, "gemm", "negative size");
  if (batch == 0 || M == 0 || N == 0) return;
  const tile::Operands<T> op{A, B, lda, ldb, stride_a, stride_b, M, N, K};
  const AlphaBetaEpilogue<T> epi{C, ldc, stride_c, alpha, beta};
  const cudaStream_t s = as_cuda(stream);
  const bool at = ta == Trans::T, bt = tb == Trans::T;
  if (!at && !bt) tile::run_tiles<T, false, false>(op, epi, batch, s, "gemm");
  else if (!at && bt) tile::run_tiles<T, false, true>(op, epi, batch, s, "gemm");
  else if (at && !bt) tile::run_tiles<T, true, false>(op, epi, batch, s, "gemm");
  else tile::run_tiles<T, true, true>(op, epi, batch, s, "gemm");
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
