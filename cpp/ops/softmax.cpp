// Softmax and log-softmax over the middle axis of (outer, dim, inner), forward and backward.
// Two layouts: inner == 1 (the last axis, one contiguous row per task) and inner > 1 (a block of
// inner columns walked row by row, so every pass reads memory in order). Both split over the pool;
// float32 exp and max use the AVX2 primitives of activation_avx2.cpp when enabled.
#include "ops/softmax.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "core/cpu_features.hpp"
#include "core/threadpool.hpp"
#if defined(HEPNN_HAVE_AVX2_KERNELS)
#include "ops/activation_avx2.hpp"
#endif

namespace hepnn::cpu {
namespace {

// The three vector primitives: AVX2 for float32 when enabled, plain loops (libm exp) otherwise.
template <typename T>
T max_of(index_t n, const T* x) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>)
    if (avx2_f32()) return avx2::max_f32(n, x);
#endif
  T m = x[0];
  for (index_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// y[i] = exp(x[i] - shift) (y may be null) and the sum in double.
template <typename T>
double exp_shifted_sum(index_t n, const T* x, T shift, T* y) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>)
    if (avx2_f32()) return avx2::exp_shifted_sum_f32(n, x, shift, y);
#endif
  double sum = 0.0;
  for (index_t i = 0; i < n; ++i) {
    const T e = std::exp(x[i] - shift);
    if (y) y[i] = e;
    sum += e;
  }
  return sum;
}

// y[i] = exp(x[i]) for x[i] <= 0 (y may be x).
template <typename T>
void exp_nonpos(index_t n, const T* x, T* y) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>)
    if (avx2_f32()) return avx2::exp_nonpos_f32(n, x, y);
#endif
  for (index_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

// Elements per parallel task below which a single thread does the work.
constexpr index_t kGrainElems = 32768;
// Columns handled together when inner > 1: the running max/sum live on the stack.
constexpr index_t kBlock = 256;

// NOTE: the row is shifted by its maximum, so exp never overflows; a NaN in the row reaches the
// sum and makes the whole row NaN (like torch), and the sum is kept in double for float rows.
// log_softmax is (x - max) - log(sum), not x - (max + log(sum)): the shift's rounding at the
// magnitude of max would otherwise swamp the small outputs when inputs carry a large offset.
template <typename T>
void forward_row(index_t dim, const T* x, T* y, bool log) {
  const T m = max_of(dim, x);
  if (log) {
    const T lse = static_cast<T>(std::log(exp_shifted_sum(dim, x, m, static_cast<T*>(nullptr))));
    for (index_t d = 0; d < dim; ++d) y[d] = (x[d] - m) - lse;
  } else {
    const T inv = static_cast<T>(1.0 / exp_shifted_sum(dim, x, m, y));
    for (index_t d = 0; d < dim; ++d) y[d] *= inv;
  }
}

template <typename T>
void forward_block(index_t dim, index_t inner, index_t w, const T* x, T* y, bool log) {
  T m[kBlock], e[kBlock];
  double sum[kBlock];
  for (index_t i = 0; i < w; ++i) {
    m[i] = x[i];
    sum[i] = 0.0;
  }
  for (index_t d = 1; d < dim; ++d) {
    const T* xr = x + d * inner;
    for (index_t i = 0; i < w; ++i) m[i] = xr[i] > m[i] ? xr[i] : m[i];
  }
  for (index_t d = 0; d < dim; ++d) {
    const T* xr = x + d * inner;
    T* er = log ? e : y + d * inner;
    for (index_t i = 0; i < w; ++i) er[i] = xr[i] - m[i];
    exp_nonpos(w, er, er);
    for (index_t i = 0; i < w; ++i) sum[i] += er[i];
  }
  T scale[kBlock];
  for (index_t i = 0; i < w; ++i)
    scale[i] = log ? static_cast<T>(std::log(sum[i])) : static_cast<T>(1.0 / sum[i]);
  for (index_t d = 0; d < dim; ++d) {
    const T* xr = x + d * inner;
    T* yr = y + d * inner;
    if (log)
      for (index_t i = 0; i < w; ++i) yr[i] = (xr[i] - m[i]) - scale[i];
    else
      for (index_t i = 0; i < w; ++i) yr[i] *= scale[i];
  }
}

// softmax:     dx = y * (dy - sum(dy * y))
// log_softmax: dx = dy - exp(y) * sum(dy)
template <typename T>
void backward_row(index_t dim, const T* y, const T* dy, T* dx, bool log) {
  double s = 0.0;
  if (log) {
    for (index_t d = 0; d < dim; ++d) s += dy[d];
    const T st = static_cast<T>(s);
    // exp(y) goes through a stack buffer: dx may alias dy or y.
    T e[kBlock];
    for (index_t d0 = 0; d0 < dim; d0 += kBlock) {
      const index_t w = std::min(kBlock, dim - d0);
      exp_nonpos(w, y + d0, e);
      for (index_t d = 0; d < w; ++d) dx[d0 + d] = dy[d0 + d] - e[d] * st;
    }
  } else {
    for (index_t d = 0; d < dim; ++d) s += static_cast<double>(dy[d]) * y[d];
    const T st = static_cast<T>(s);
    for (index_t d = 0; d < dim; ++d) dx[d] = y[d] * (dy[d] - st);
  }
}

template <typename T>
void backward_block(index_t dim, index_t inner, index_t w, const T* y, const T* dy, T* dx, bool log) {
  double s[kBlock];
  for (index_t i = 0; i < w; ++i) s[i] = 0.0;
  for (index_t d = 0; d < dim; ++d) {
    const T* yr = y + d * inner;
    const T* gr = dy + d * inner;
    if (log)
      for (index_t i = 0; i < w; ++i) s[i] += gr[i];
    else
      for (index_t i = 0; i < w; ++i) s[i] += static_cast<double>(gr[i]) * yr[i];
  }
  T st[kBlock];
  for (index_t i = 0; i < w; ++i) st[i] = static_cast<T>(s[i]);
  for (index_t d = 0; d < dim; ++d) {
    const T* yr = y + d * inner;
    const T* gr = dy + d * inner;
    T* xr = dx + d * inner;
    if (log) {
      T e[kBlock];
      exp_nonpos(w, yr, e);
      for (index_t i = 0; i < w; ++i) xr[i] = gr[i] - e[i] * st[i];
    } else
      for (index_t i = 0; i < w; ++i) xr[i] = yr[i] * (gr[i] - st[i]);
  }
}

// Runs row(offset) for every (outer, dim) row when inner == 1, else block(offset, width) for
// every (outer, column block); tasks are grouped so each thread gets ~kGrainElems elements.
template <typename Row, typename Block>
void for_each_slice(index_t outer, index_t dim, index_t inner, Row row, Block block) {
  if (outer <= 0 || dim <= 0 || inner <= 0) return;
  if (inner == 1) {
    const index_t grain = std::max<index_t>(1, kGrainElems / dim);
    parallel_for(outer, grain, [&](index_t b, index_t e) {
      for (index_t o = b; o < e; ++o) row(o * dim);
    });
    return;
  }
  const index_t blocks = (inner + kBlock - 1) / kBlock;
  const index_t task_elems = dim * std::min(inner, kBlock);
  const index_t grain = std::max<index_t>(1, kGrainElems / task_elems);
  parallel_for(outer * blocks, grain, [&](index_t b, index_t e) {
    for (index_t t = b; t < e; ++t) {
      const index_t o = t / blocks, i0 = (t % blocks) * kBlock;
      block(o * dim * inner + i0, std::min(kBlock, inner - i0));
    }
  });
}

}  // namespace

template <typename T>
void softmax_forward(index_t outer, index_t dim, index_t inner, const T* x, T* y, bool log) {
  for_each_slice(
      outer, dim, inner, [&](index_t off) { forward_row(dim, x + off, y + off, log); },
      [&](index_t off, index_t w) { forward_block(dim, inner, w, x + off, y + off, log); });
}

template <typename T>
void softmax_backward(index_t outer, index_t dim, index_t inner, const T* y, const T* dy, T* dx,
                      bool log) {
  for_each_slice(
      outer, dim, inner, [&](index_t off) { backward_row(dim, y + off, dy + off, dx + off, log); },
      [&](index_t off, index_t w) { backward_block(dim, inner, w, y + off, dy + off, dx + off, log); });
}

template void softmax_forward<float>(index_t, index_t, index_t, const float*, float*, bool);
template void softmax_forward<double>(index_t, index_t, index_t, const double*, double*, bool);
template void softmax_backward<float>(index_t, index_t, index_t, const float*, const float*, float*,
                                      bool);
template void softmax_backward<double>(index_t, index_t, index_t, const double*, const double*,
                                       double*, bool);

}  // namespace hepnn::cpu
