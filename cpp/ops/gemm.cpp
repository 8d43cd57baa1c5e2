// Blocked GEMM driver (GotoBLAS/BLIS loop order): B is packed in KC x NC blocks of NR-wide
// panels, A in MC x KC blocks of MR-tall panels, and a register-tile micro-kernel (AVX-512,
// AVX2+FMA or portable, chosen at run time) does the arithmetic. Threads take row (or column) items of the
// C block from a shared counter.
#include "ops/gemm.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>

#include "core/cpu_features.hpp"
#include "core/threadpool.hpp"
#include "ops/gemm_ukernel.hpp"

namespace hepnn::cpu {
namespace detail {

template <typename T>
KernelInfo<T> portable_kernel();  // gemm_portable.cpp

namespace {

template <typename T>
const KernelInfo<T>& select_kernel() {
  static const KernelInfo<T> info = [] {
#if defined(HEPNN_HAVE_AVX512_KERNELS)
    if (use_avx512()) {
      if constexpr (sizeof(T) == 4) return avx512_kernel_f32();
      else return avx512_kernel_f64();
    }
#endif
#if defined(HEPNN_HAVE_AVX2_KERNELS)
    if (use_avx2_fma()) {
      if constexpr (sizeof(T) == 4) return avx2_kernel_f32();
      else return avx2_kernel_f64();
    }
#endif
    return portable_kernel<T>();
  }();
  return info;
}

// Packing buffers live per thread and only grow, so steady-state calls never allocate.
struct AlignedBuffer {
  std::unique_ptr<void, void (*)(void*)> data{nullptr, std::free};
  size_t bytes = 0;
  void* get(size_t n) {
    if (n > bytes) {
      n = (n + 4095) / 4096 * 4096;
      data.reset(std::aligned_alloc(64, n));
      if (!data) throw std::bad_alloc();
      bytes = n;
    }
    return data.get();
  }
};

template <typename T>
T* thread_buffer(int slot, size_t count) {
  thread_local AlignedBuffer buffers[2];
  return static_cast<T*>(buffers[slot].get(count * sizeof(T)));
}

// A short copy of compile-time length: inlined vector moves instead of a call to memcpy.
template <typename T, int L>
inline void copy_fixed(const T* __restrict src, T* __restrict dst) {
  for (int i = 0; i < L; ++i) dst[i] = src[i];
}

// A(i0:i0+mc, p0:p0+kc) -> panels of mr rows, each kc steps of mr values (rows past mc are 0).
// Source rows are read contiguously in both layouts: a strided walk down a column of a large
// matrix touches a new page per element.
template <typename T>
void pack_a(Trans ta, const T* A, index_t lda, index_t i0, index_t mc, index_t p0, index_t kc,
            index_t mr, T* out) {
  if (ta == Trans::N) {
    for (index_t ir = 0; ir < mc; ir += mr) {
      const index_t m = std::min(mr, mc - ir);
      T* dst = out + ir * kc;
      for (index_t i = 0; i < m; ++i) {
        const T* src = A + (i0 + ir + i) * lda + p0;
        for (index_t p = 0; p < kc; ++p) dst[p * mr + i] = src[p];
      }
      for (index_t i = m; i < mr; ++i)
        for (index_t p = 0; p < kc; ++p) dst[p * mr + i] = T(0);
    }
    return;
  }
  // op(A) = A^T: row p of the stored matrix holds step p of every panel.
  for (index_t p = 0; p < kc; ++p) {
    const T* src = A + (p0 + p) * lda + i0;
    index_t ir = 0;
    if (mr == 6)  // every kernel's mr: a fixed-size copy the compiler turns into two moves
      for (; ir + 6 <= mc; ir += 6) copy_fixed<T, 6>(src + ir, out + ir * kc + p * 6);
    for (; ir < mc; ir += mr) {
      const index_t m = std::min(mr, mc - ir);
      T* d = out + ir * kc + p * mr;
      for (index_t i = 0; i < m; ++i) d[i] = src[ir + i];
      for (index_t i = m; i < mr; ++i) d[i] = T(0);
    }
  }
}

// B(p0:p0+kc, j0 + [pb*nr, pe*nr)) -> panels of nr columns, each kc steps of nr values
// (columns past nc are 0). Stored rows are read contiguously, as in pack_a.
template <typename T>
void pack_b(const KernelInfo<T>& ki, Trans tb, const T* B, index_t ldb, index_t p0, index_t kc,
            index_t j0, index_t nc, index_t nr, index_t pb, index_t pe, T* out) {
  if (tb == Trans::T && ki.pack_b_t) {
    const index_t jb = pb * nr, je = std::min(nc, pe * nr);
    ki.pack_b_t(B + (j0 + jb) * ldb + p0, ldb, je - jb, kc, out + jb * kc);
    return;
  }
  if (tb == Trans::N) {
    const index_t jb = pb * nr, je = std::min(nc, pe * nr);
    for (index_t p = 0; p < kc; ++p) {
      const T* src = B + (p0 + p) * ldb + j0;
      index_t jr = jb;
      if (nr == 32)
        for (; jr + 32 <= je; jr += 32) copy_fixed<T, 32>(src + jr, out + jr * kc + p * 32);
      else if (nr == 16)
        for (; jr + 16 <= je; jr += 16) copy_fixed<T, 16>(src + jr, out + jr * kc + p * 16);
      else if (nr == 8)
        for (; jr + 8 <= je; jr += 8) copy_fixed<T, 8>(src + jr, out + jr * kc + p * 8);
      for (; jr + nr <= je; jr += nr) std::memcpy(out + jr * kc + p * nr, src + jr, size_t(nr) * sizeof(T));
      if (jr < je) {
        T* d = out + jr * kc + p * nr;
        const index_t n = je - jr;
        for (index_t j = 0; j < n; ++j) d[j] = src[jr + j];
        for (index_t j = n; j < nr; ++j) d[j] = T(0);
      }
    }
    return;
  }
  for (index_t panel = pb; panel < pe; ++panel) {
    const index_t jr = panel * nr;
    const index_t n = std::min(nr, nc - jr);
    T* dst = out + jr * kc;
    for (index_t j = 0; j < n; ++j) {
      const T* src = B + (j0 + jr + j) * ldb + p0;
      for (index_t p = 0; p < kc; ++p) dst[p * nr + j] = src[p];
    }
    for (index_t j = n; j < nr; ++j)
      for (index_t p = 0; p < kc; ++p) dst[p * nr + j] = T(0);
  }
}

// Below this many flops a second thread costs more (wake-up, shared packing) than it saves.
constexpr double kMinFlopsPerThread = 0.75e6;

int choose_threads(index_t M, index_t N, index_t K, int max_threads) {
  const double flops = 2.0 * double(M) * double(N) * double(K);
  int t = std::min(get_num_threads(), max_threads);
  t = std::min<double>(t, std::max(1.0, flops / kMinFlopsPerThread));
  return std::max(1, t);
}

// body(item) for every item in [0, n) on up to `threads` threads, items handed out one at a time:
// on a shared machine a thread that is descheduled holds back one item, not half of the work.
// Each item writes its own C tiles, so results do not depend on the thread count.
template <typename F>
void run_items(index_t n, int threads, const F& body) {
  if (threads <= 1 || n <= 1) {
    for (index_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::atomic<index_t> next{0};
  parallel_for(std::min<index_t>(threads, n), 1, [&](index_t, index_t) {
    for (index_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed))
      body(i);
  });
}

// Units of `unit` split into items of whole units: about 4 items per thread for balance,
// at most max_units each.
inline index_t units_per_item(index_t units, int threads, index_t max_units) {
  const index_t target = (units + 4 * threads - 1) / (4 * threads);
  return std::max<index_t>(1, std::min(target, max_units));
}

// C = beta * C (beta == 0 writes zeros without reading), for K == 0 or alpha == 0.
template <typename T>
void scale_c(index_t M, index_t N, T beta, T* C, index_t ldc) {
  for (index_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) std::fill(c, c + N, T(0));
    else if (beta != T(1))
      for (index_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// Sum of x[p] * y[p] with eight partial sums, which the compiler keeps in vector registers
// (a single running sum cannot be vectorised without reassociating).
template <typename T>
T dot(index_t n, const T* __restrict x, const T* __restrict y) {
  T s[8] = {};
  index_t p = 0;
  for (; p + 8 <= n; p += 8)
    for (int l = 0; l < 8; ++l) s[l] += x[p + l] * y[p + l];
  T tail = T(0);
  for (; p < n; ++p) tail += x[p] * y[p];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])) + tail;
}

template <typename T>
void axpy(index_t n, T a, const T* __restrict x, T* __restrict y) {
  for (index_t j = 0; j < n; ++j) y[j] += a * x[j];
}

// M == 1 or N == 1: matrix-vector products. A register tile would be 15/16 padding here.
// The vector operand is gathered into scratch; threads split the output entries.
template <typename T>
void gemv(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
          const T* B, index_t ldb, T beta, T* C, index_t ldc, int max_threads) {
  const bool col = N == 1;  // C is a column: C[i] = op(A)[i, :] . b; else a row: C[j] = a . op(B)[:, j]
  const index_t n_out = col ? M : N;
  // The matrix side: `rows` layout gives each output a contiguous K-vector (dot products),
  // otherwise each k step is a contiguous row of outputs (axpy).
  const T* mat = col ? A : B;
  const index_t ldm = col ? lda : ldb;
  const bool rows = col ? ta == Trans::N : tb == Trans::T;
  T* vec = thread_buffer<T>(0, size_t(K) + size_t(n_out));
  for (index_t p = 0; p < K; ++p) {
    if (col) vec[p] = tb == Trans::N ? B[p * ldb] : B[p];
    else vec[p] = ta == Trans::N ? A[p] : A[p * lda];
  }
  T* acc = vec + K;
  const index_t cstride = col ? ldc : 1;
  auto store = [&](index_t j, T v) {
    T& c = C[j * cstride];
    c = beta == T(0) ? alpha * v : alpha * v + beta * c;
  };
  const double work = double(n_out) * double(K);
  const int threads = std::min<int>(std::min(get_num_threads(), max_threads), std::max(1.0, work / 262144.0));
  parallel_for(n_out, threads > 1 ? (n_out + threads - 1) / threads : n_out, [&](index_t b, index_t e) {
    if (rows) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
      if constexpr (std::is_same_v<T, float>) {
#if defined(HEPNN_HAVE_AVX512_KERNELS)
        if (use_avx512()) {
          avx512_dot_rows_f32(e - b, K, mat + b * ldm, ldm, vec, acc + b);
          for (index_t j = b; j < e; ++j) store(j, acc[j]);
          return;
        }
#endif
        if (use_avx2_fma()) {
          avx2_dot_rows_f32(e - b, K, mat + b * ldm, ldm, vec, acc + b);
          for (index_t j = b; j < e; ++j) store(j, acc[j]);
          return;
        }
      }
#endif
      for (index_t j = b; j < e; ++j) store(j, dot(K, mat + j * ldm, vec));
    } else {
      std::fill(acc + b, acc + e, T(0));
      for (index_t p = 0; p < K; ++p) axpy(e - b, vec[p], mat + p * ldm + b, acc + b);
      for (index_t j = b; j < e; ++j) store(j, acc[j]);
    }
  });
}

}  // namespace

template <typename T>
void gemm_ex(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
             const T* B, index_t ldb, T beta, T* C, index_t ldc, const Epilogue<T>* epilogue,
             int max_threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    if (epilogue) epilogue->fn(epilogue->ctx, C, ldc, 0, 0, M, N);
    return;
  }
  if (M == 1 || N == 1) {
    gemv(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, max_threads);
    if (epilogue) epilogue->fn(epilogue->ctx, C, ldc, 0, 0, M, N);
    return;
  }
  const KernelInfo<T>& ki = select_kernel<T>();
  const index_t mr = ki.mr, nr = ki.nr;
  const int threads = choose_threads(M, N, K, max_threads);
  // Equal K blocks: K = 300 runs as 2 x 150 rather than 256 + 44.
  const index_t nk = (K + ki.kc - 1) / ki.kc;
  const index_t kc_max = (K + nk - 1) / nk;
  const index_t nc_max = std::min(ki.nc, (N + nr - 1) / nr * nr);
  T* bpack = thread_buffer<T>(0, size_t(kc_max) * size_t(nc_max));

  for (index_t jc = 0; jc < N; jc += nc_max) {
    const index_t nc = std::min(nc_max, N - jc);
    const index_t n_panels = (nc + nr - 1) / nr;
    for (index_t pc = 0; pc < K; pc += kc_max) {
      const index_t kc = std::min(kc_max, K - pc);
      const T beta_k = pc == 0 ? beta : T(1);
      const bool last = pc + kc == K;

      {
        // A small B block is packed by this thread alone: one parallel region instead of two.
        const bool split = threads > 1 && kc * nc > 32768;
        const index_t per = split ? units_per_item(n_panels, threads, n_panels) : n_panels;
        run_items((n_panels + per - 1) / per, split ? threads : 1, [&](index_t item) {
          pack_b(ki, tb, B, ldb, pc, kc, jc, nc, nr, item * per, std::min(n_panels, (item + 1) * per), bpack);
        });
      }

      // Rows [i_begin, i_end) x columns [j_begin, j_end) of this C block (j relative to jc).
      auto macro = [&](index_t i_begin, index_t i_end, index_t j_begin, index_t j_end) {
        T* apack = thread_buffer<T>(1, size_t(ki.mc) * size_t(kc));
        for (index_t ic = i_begin; ic < i_end; ic += ki.mc) {
          const index_t mc = std::min(ki.mc, i_end - ic);
          if (ta == Trans::N && ki.pack_a_n) ki.pack_a_n(A + ic * lda + pc, lda, mc, kc, apack);
          else pack_a(ta, A, lda, ic, mc, pc, kc, mr, apack);
          for (index_t jr = j_begin; jr < j_end; jr += nr) {
            const index_t n = std::min(nr, j_end - jr);
            const T* bp = bpack + jr * kc;
            for (index_t ir = 0; ir < mc; ir += mr) {
              const index_t m = std::min(mr, mc - ir);
              T* c = C + (ic + ir) * ldc + jc + jr;
              ki.fn(kc, apack + ir * kc, bp, c, ldc, alpha, beta_k, m, n);
              if (last && epilogue) epilogue->fn(epilogue->ctx, c, ldc, ic + ir, jc + jr, m, n);
            }
          }
        }
      };

      const index_t m_tiles = (M + mr - 1) / mr;
      if (threads <= 1) {
        macro(0, M, 0, nc);
      } else if (m_tiles >= 2 * threads || m_tiles >= n_panels) {
        // Row items: each packs only its own rows of A.
        const index_t per = units_per_item(m_tiles, threads, ki.mc / mr);
        run_items((m_tiles + per - 1) / per, threads, [&](index_t item) {
          macro(item * per * mr, std::min(M, (item + 1) * per * mr), 0, nc);
        });
      } else {
        // Few rows, many columns: column items, each packing the (small) A block itself.
        const index_t per = units_per_item(n_panels, threads, n_panels);
        run_items((n_panels + per - 1) / per, threads, [&](index_t item) {
          macro(0, M, item * per * nr, std::min(nc, (item + 1) * per * nr));
        });
      }
    }
  }
}

}  // namespace detail

template <typename T>
void gemm(Trans ta, Trans tb, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
          const T* B, index_t ldb, T beta, T* C, index_t ldc) {
  detail::gemm_ex<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nullptr, INT_MAX);
}

template <typename T>
void gemm_batched(Trans ta, Trans tb, index_t batch, index_t M, index_t N, index_t K, T alpha,
                  const T* A, index_t lda, index_t stride_a, const T* B, index_t ldb,
                  index_t stride_b, T beta, T* C, index_t ldc, index_t stride_c) {
  if (batch <= 0) return;
  auto one = [&](index_t i, int max_threads) {
    detail::gemm_ex<T>(ta, tb, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
                       C + i * stride_c, ldc, nullptr, max_threads);
  };
  // Small matrices: one thread per matrix beats splitting each product (no shared packing).
  const int threads = get_num_threads();
  const double flops = 2.0 * double(M) * double(N) * double(K);
  if (threads > 1 && batch > 1 && flops < 32e6) {
    parallel_for(batch, 1, [&](index_t b, index_t e) {
      for (index_t i = b; i < e; ++i) one(i, 1);
    });
  } else {
    for (index_t i = 0; i < batch; ++i) one(i, INT_MAX);
  }
}

#define HEPNN_GEMM_INSTANTIATE(T)                                                                \
  template void gemm<T>(Trans, Trans, index_t, index_t, index_t, T, const T*, index_t, const T*, \
                        index_t, T, T*, index_t);                                                \
  template void gemm_batched<T>(Trans, Trans, index_t, index_t, index_t, index_t, T, const T*,   \
                                index_t, index_t, const T*, index_t, index_t, T, T*, index_t,    \
                                index_t);                                                        \
  template void detail::gemm_ex<T>(Trans, Trans, index_t, index_t, index_t, T, const T*, index_t, \
                                   const T*, index_t, T, T*, index_t, const detail::Epilogue<T>*, \
                                   int);
HEPNN_GEMM_INSTANTIATE(float)
HEPNN_GEMM_INSTANTIATE(double)
#undef HEPNN_GEMM_INSTANTIATE

}  // namespace hepnn::cpu
