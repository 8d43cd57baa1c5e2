// CUDA twin of cpp/ops/gemm.hpp (same signature plus the stream to launch on).
// Dense matrix multiply on the GPU, row-major: C = alpha * op(A) @ op(B) + beta * C.
// op(A) is M x K, op(B) is K x N; lda/ldb/ldc are row strides in elements. beta == 0 never reads C
// (so C may hold NaN or garbage). Instantiated for float and double.
#pragma once
#include "core/types.hpp"

namespace hepnn::cuda {

template <typename T>
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
          const T* B, index_t ldb, T beta, T* C, index_t ldc, Stream stream);

// `batch` independent products; stride_* is the element distance between consecutive matrices
// (0 broadcasts one operand over the batch).
template <typename T>
void gemm_batched(Trans ta, Trans tb, index_t batch, index_t M, index_t N, index_t K, T alpha,
                  const T* A, index_t lda, index_t stride_a, const T* B, index_t ldb,
                  index_t stride_b, T beta, T* C, index_t ldc, index_t stride_c, Stream stream);

// Opt-in TF32 tensor cores for every float product (gemm, linear, and the layers built on them):
// inputs rounded to a 10-bit mantissa, fp32 sums; about 1e-3 relative error instead of 1e-6.
// Off by default; process-wide, like torch.backends.cuda.matmul.allow_tf32.
bool tf32_allowed();
void set_tf32_allowed(bool allowed);

}  // namespace hepnn::cuda
