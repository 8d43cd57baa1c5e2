// Internal to the GEMM: the micro-kernel ABI shared by the blocked driver (gemm.cpp) and the
// AVX2+FMA kernels (gemm_avx2.cpp), plus the epilogue hook the fused linear layer uses.
#pragma once
#include "core/types.hpp"

namespace hepnn::cpu::detail {

// C[m x n] = alpha * Apanel @ Bpanel + beta * C for one register tile. Apanel holds k steps of
// mr values (column of the tile's A rows), Bpanel k steps of nr values; both are zero-padded to
// the full mr/nr, so m < mr or n < nr only narrows the store. beta == 0 never reads C.
template <typename T>
using UKernel = void (*)(index_t k, const T* a, const T* b, T* c, index_t ldc, T alpha, T beta,
                         index_t m, index_t n);

// Packing of the two layouts that need a transpose on the way into the panels (A as stored,
// B transposed); null means the driver's generic loops. `src` points at the block's first
// element; rows of the source are `ld` apart; out gets ceil(rows / mr or nr) zero-padded panels.
template <typename T>
using PackFn = void (*)(const T* src, index_t ld, index_t rows, index_t kc, T* out);

// One micro-kernel and the cache blocking tuned for it (mc multiple of mr, nc of nr).
template <typename T>
struct KernelInfo {
  UKernel<T> fn;
  index_t mr, nr, mc, kc, nc;
  PackFn<T> pack_a_n = nullptr;  // A(i0:i0+mc, p0:p0+kc) from row-major A
  PackFn<T> pack_b_t = nullptr;  // op(B) = B^T: nc stored rows of B, kc columns each
};

// Called on a finished register tile (all of K accumulated), while it is still in L1:
// `c` points at C(row0, col0), the tile is m x n with row stride ldc.
template <typename T>
struct Epilogue {
  void (*fn)(const void* ctx, T* c, index_t ldc, index_t row0, index_t col0, index_t m, index_t n);
  const void* ctx;
};

// The blocked driver with an optional epilogue and a thread cap (1 = stay on this thread,
// as needed when the caller is already inside a parallel region).
template <typename T>
void gemm_ex(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
             const T* B, index_t ldb, T beta, T* C, index_t ldc, const Epilogue<T>* epilogue,
             int max_threads);

#if defined(HEPNN_HAVE_AVX2_KERNELS)
// gemm_avx2.cpp: 6x16 fp32 and 6x8 fp64 register tiles.
KernelInfo<float> avx2_kernel_f32();
KernelInfo<double> avx2_kernel_f64();
// out[j] = mat[j, :K] . vec for j in [0, n): the matrix-vector path (batch-1 inference, width-1
// layers). Each row's sum has the same order whatever rows it is grouped with, so results do
// not depend on how the rows are split between threads.
void avx2_dot_rows_f32(index_t n, index_t K, const float* mat, index_t ldm, const float* vec, float* out);
#endif

#if defined(HEPNN_HAVE_AVX512_KERNELS)
// gemm_avx512.cpp: 14x32 fp32 and 14x16 fp64 register tiles, and dot_rows as above (same
// thread-independence guarantee).
KernelInfo<float> avx512_kernel_f32();
KernelInfo<double> avx512_kernel_f64();
void avx512_dot_rows_f32(index_t n, index_t K, const float* mat, index_t ldm, const float* vec, float* out);
#endif

}  // namespace hepnn::cpu::detail
