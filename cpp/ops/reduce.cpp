// Sum, mean and max (with optional first-argmax) over the middle axis of (outer, dim, inner).
// inner == 1 reduces contiguous rows (pairwise sums over 8 lanes); inner > 1 walks a block of
// columns row by row so memory is read in order. Work is split over the thread pool.
#include "ops/reduce.hpp"

#include <algorithm>
#include <limits>

#include "core/threadpool.hpp"

namespace hepnn::cpu {
namespace {

constexpr index_t kGrainElems = 32768;
constexpr index_t kBlock = 256;
constexpr index_t kLanes = 8;
constexpr index_t kPairwiseLeaf = 256;

// NOTE: pairwise summation in double: the error grows like log(n), not n, so float64 rows keep
// near full precision and float32 rows are exact to their own rounding.
template <typename T>
double pairwise_sum(const T* x, index_t n) {
  if (n <= kPairwiseLeaf) {
    double acc[kLanes] = {};
    index_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
      for (index_t j = 0; j < kLanes; ++j) acc[j] += static_cast<double>(x[i + j]);
    double s = 0.0;
    for (; i < n; ++i) s += static_cast<double>(x[i]);
    for (index_t j = 0; j < kLanes; ++j) s += acc[j];
    return s;
  }
  const index_t half = (n / 2 + kLanes - 1) / kLanes * kLanes;
  return pairwise_sum(x, half) + pairwise_sum(x + half, n - half);
}

// "a beats b" for a running maximum: larger, or the first NaN (which then stays). Bitwise
// operators, not && and ||: no branch, so the column loops vectorise.
template <typename T>
inline bool beats(T a, T b) {
  return (a > b) | ((a != a) & (b == b));
}

// Lanes keep a plain maximum and, apart, any NaN seen. GCC/Clang vector types make the lanes
// explicit: the compiler does not vectorise a NaN-aware max reduction on its own.
#if defined(__GNUC__)
template <typename T>
struct Vec16;
template <>
struct Vec16<float> {
  typedef float type __attribute__((vector_size(16)));
};
template <>
struct Vec16<double> {
  typedef double type __attribute__((vector_size(16)));
};
#endif

template <typename T>
T row_max(const T* x, index_t n) {
  T r = x[0];
  index_t i = 0;
#if defined(__GNUC__)
  using V = typename Vec16<T>::type;
  constexpr index_t L = 16 / sizeof(T);
  if (n >= 2 * L) {
    V m, nan;
    __builtin_memcpy(&m, x, sizeof(V));
    nan = m;
    for (i = L; i + L <= n; i += L) {
      V v;
      __builtin_memcpy(&v, x + i, sizeof(V));
      m = v > m ? v : m;
      nan = v != v ? v : nan;
    }
    for (index_t j = 0; j < L; ++j) {
      r = beats(m[j], r) ? m[j] : r;
      r = beats(nan[j], r) ? nan[j] : r;
    }
  }
#endif
  for (; i < n; ++i) r = beats(x[i], r) ? x[i] : r;
  return r;
}

// Index of the first element equal to m (the first NaN when m is NaN). Chunks of 16 are first
// tested with a branch-free OR, which the compiler vectorises; only the chunk that hits is scanned.
template <typename T, typename Match>
index_t first_match(const T* x, index_t n, Match match) {
  index_t i = 0;
  for (; i + 16 <= n; i += 16) {
    int hit = 0;
    for (index_t j = 0; j < 16; ++j) hit |= match(x[i + j]);
    if (hit) break;
  }
  for (; i < n; ++i)
    if (match(x[i])) return i;
  return 0;
}

template <typename T>
index_t first_index_of(const T* x, index_t n, T m) {
  if (m != m) return first_match(x, n, [](T v) { return int(v != v); });
  return first_match(x, n, [m](T v) { return int(v == m); });
}

template <typename T>
void reduce_row(ReduceOp op, index_t dim, const T* x, T* y, index_t* argmax) {
  if (op == ReduceOp::max) {
    const T m = row_max(x, dim);
    *y = m;
    if (argmax) *argmax = first_index_of(x, dim, m);
    return;
  }
  const double s = pairwise_sum(x, dim);
  *y = static_cast<T>(op == ReduceOp::mean ? s / static_cast<double>(dim) : s);
}

template <typename T>
void reduce_block(ReduceOp op, index_t dim, index_t inner, index_t w, const T* x, T* y,
                  index_t* argmax) {
  if (op == ReduceOp::max && !argmax) {
    T m[kBlock], nan[kBlock];
    for (index_t i = 0; i < w; ++i) m[i] = nan[i] = x[i];
    for (index_t d = 1; d < dim; ++d) {
      const T* xr = x + d * inner;
      for (index_t i = 0; i < w; ++i) {
        m[i] = xr[i] > m[i] ? xr[i] : m[i];
        nan[i] = xr[i] != xr[i] ? xr[i] : nan[i];
      }
    }
    for (index_t i = 0; i < w; ++i) y[i] = nan[i] != nan[i] ? nan[i] : m[i];
    return;
  }
  if (op == ReduceOp::max) {
    T m[kBlock];
    index_t a[kBlock];
    for (index_t i = 0; i < w; ++i) {
      m[i] = x[i];
      a[i] = 0;
    }
    for (index_t d = 1; d < dim; ++d) {
      const T* xr = x + d * inner;
      for (index_t i = 0; i < w; ++i) {
        const bool take = beats(xr[i], m[i]);
        m[i] = take ? xr[i] : m[i];
        a[i] = take ? d : a[i];
      }
    }
    std::copy(m, m + w, y);
    if (argmax) std::copy(a, a + w, argmax);
    return;
  }
  double s[kBlock] = {};
  for (index_t d = 0; d < dim; ++d) {
    const T* xr = x + d * inner;
    for (index_t i = 0; i < w; ++i) s[i] += static_cast<double>(xr[i]);
  }
  const double scale = op == ReduceOp::mean ? 1.0 / static_cast<double>(dim) : 1.0;
  for (index_t i = 0; i < w; ++i) y[i] = static_cast<T>(op == ReduceOp::mean ? s[i] * scale : s[i]);
}

}  // namespace

template <typename T>
void reduce_forward(ReduceOp op, index_t outer, index_t dim, index_t inner, const T* x, T* y,
                    index_t* argmax) {
  if (outer <= 0 || inner <= 0) return;
  if (dim <= 0) {
    // An empty axis: sum 0, mean NaN (0/0, like NumPy); max has no value (the binding refuses it).
    const T v = op == ReduceOp::sum ? T(0) : std::numeric_limits<T>::quiet_NaN();
    std::fill(y, y + outer * inner, v);
    if (argmax) std::fill(argmax, argmax + outer * inner, index_t(0));
    return;
  }
  if (inner == 1) {
    parallel_for(outer, std::max<index_t>(1, kGrainElems / dim), [&](index_t b, index_t e) {
      for (index_t o = b; o < e; ++o) reduce_row(op, dim, x + o * dim, y + o, argmax ? argmax + o : nullptr);
    });
    return;
  }
  const index_t blocks = (inner + kBlock - 1) / kBlock;
  const index_t grain = std::max<index_t>(1, kGrainElems / (dim * std::min(inner, kBlock)));
  parallel_for(outer * blocks, grain, [&](index_t b, index_t e) {
    for (index_t t = b; t < e; ++t) {
      const index_t o = t / blocks, i0 = (t % blocks) * kBlock;
      const index_t out = o * inner + i0;
      reduce_block(op, dim, inner, std::min(kBlock, inner - i0), x + o * dim * inner + i0, y + out,
                   argmax ? argmax + out : nullptr);
    }
  });
}

template void reduce_forward<float>(ReduceOp, index_t, index_t, index_t, const float*, float*, index_t*);
template void reduce_forward<double>(ReduceOp, index_t, index_t, index_t, const double*, double*,
                                     index_t*);

}  // namespace hepnn::cpu
