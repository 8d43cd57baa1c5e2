// Row gathers and scatter / segment reductions on the CPU. Every reduction runs per output row
// over that row's inputs in increasing input order (scatter first builds a stable CSR view of its
// index by counting sort), so no two threads ever write one row and results are deterministic.
// Variants: sum, mean, max (+ arg of the first maximum), each with backward; float and double.
#include "ops/segment.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/threadpool.hpp"

namespace hepnn::cpu {

void check_index_range(const char* op, const char* name, index_t n, const index_t* idx, index_t bound,
                       bool allow_minus_one) {
  for (index_t i = 0; i < n; ++i) {
    const index_t v = idx[i];
    if ((v < 0 || v >= bound) && !(allow_minus_one && v == -1))
      throw ValueError(op_message(op, std::string(name) + "[" + std::to_string(i) + "] = " +
                                          std::to_string(v) + " is out of range [0, " +
                                          std::to_string(bound) + ")" +
                                          (allow_minus_one ? " (or -1)" : "")));
  }
}

void check_offsets(const char* op, index_t S, const index_t* offsets, index_t M) {
  if (offsets[0] != 0)
    throw ValueError(op_message(op, "offsets[0] must be 0, got " + std::to_string(offsets[0])));
  for (index_t s = 0; s < S; ++s)
    if (offsets[s + 1] < offsets[s])
      throw ValueError(op_message(op, "offsets must not decrease (offsets[" + std::to_string(s + 1) +
                                          "] < offsets[" + std::to_string(s) + "])"));
  if (offsets[S] != M)
    throw ValueError(op_message(op, "offsets[-1] must equal the number of rows " + std::to_string(M) +
                                        ", got " + std::to_string(offsets[S])));
}

namespace {

constexpr index_t kGrainElems = 16384;

index_t grain_rows(index_t F, index_t avg_len) {
  return std::max<index_t>(1, kGrainElems / std::max<index_t>(1, F * std::max<index_t>(1, avg_len)));
}

// y[s] = reduce of x[rows[p]] for p in [off[s], off[s+1]); rows == null means rows[p] = p.
template <typename T>
void reduce_csr(index_t F, index_t S, const index_t* off, const index_t* rows, const T* x, SegReduce op,
                T* y, index_t* arg) {
  const index_t total = off[S];
  parallel_for(S, grain_rows(F, S ? total / S : 1), [&](index_t s0, index_t s1) {
    for (index_t s = s0; s < s1; ++s) {
      T* ys = y + s * F;
      const index_t b = off[s], e = off[s + 1];
      if (op != SegReduce::max) {
        std::fill(ys, ys + F, T(0));
        for (index_t p = b; p < e; ++p) {
          const T* xr = x + (rows ? rows[p] : p) * F;
          for (index_t f = 0; f < F; ++f) ys[f] += xr[f];
        }
        if (op == SegReduce::mean && e > b) {
          const T inv = T(1) / T(e - b);
          for (index_t f = 0; f < F; ++f) ys[f] *= inv;
        }
        continue;
      }
      index_t* as = arg ? arg + s * F : nullptr;
      if (e == b) {
        std::fill(ys, ys + F, T(0));
        if (as) std::fill(as, as + F, index_t(-1));
        continue;
      }
      const index_t r0 = rows ? rows[b] : b;
      std::copy(x + r0 * F, x + r0 * F + F, ys);
      if (as) std::fill(as, as + F, r0);
      for (index_t p = b + 1; p < e; ++p) {
        const index_t r = rows ? rows[p] : p;
        const T* xr = x + r * F;
        // NOTE: strict > keeps the first maximum; a NaN replaces a number once and then stays.
        for (index_t f = 0; f < F; ++f) {
          const bool take = (xr[f] > ys[f]) || (std::isnan(xr[f]) && !std::isnan(ys[f]));
          if (take) {
            ys[f] = xr[f];
            if (as) as[f] = r;
          }
        }
      }
    }
  });
}

// Stable CSR view of `index` (entries -1 dropped): off (S + 1) and rows in increasing m.
void build_csr(index_t M, index_t S, const index_t* index, std::vector<index_t>& off,
               std::vector<index_t>& rows) {
  off.assign(size_t(S) + 1, 0);
  for (index_t m = 0; m < M; ++m)
    if (index[m] >= 0) ++off[size_t(index[m]) + 1];
  for (index_t s = 0; s < S; ++s) off[size_t(s) + 1] += off[size_t(s)];
  rows.resize(size_t(off[size_t(S)]));
  std::vector<index_t> fill(off.begin(), off.end() - 1);
  for (index_t m = 0; m < M; ++m)
    if (index[m] >= 0) rows[size_t(fill[size_t(index[m])]++)] = m;
}

}  // namespace

template <typename T>
void scatter_reduce_forward(index_t M, index_t F, index_t S, const T* x, const index_t* index,
                            SegReduce op, T* y, index_t* arg) {
  check_index_range("scatter_reduce_forward", "index", M, index, S, true);
  std::vector<index_t> off, rows;
  build_csr(M, S, index, off, rows);
  reduce_csr(F, S, off.data(), rows.data(), x, op, y, arg);
}

template <typename T>
void scatter_reduce_backward(index_t M, index_t F, index_t S, const index_t* index, SegReduce op,
                             const T* dy, const index_t* arg, T* dx) {
  const char* opname = "scatter_reduce_backward";
  check_index_range(opname, "index", M, index, S, true);
  if (op == SegReduce::max && !arg) throw ValueError(op_message(opname, "max needs the forward's arg"));
  std::vector<index_t> count;
  if (op == SegReduce::mean) {
    count.assign(size_t(S), 0);
    for (index_t m = 0; m < M; ++m)
      if (index[m] >= 0) ++count[size_t(index[m])];
  }
  parallel_for(M, grain_rows(F, 1), [&](index_t m0, index_t m1) {
    for (index_t m = m0; m < m1; ++m) {
      T* d = dx + m * F;
      const index_t s = index[m];
      if (s < 0) {
        std::fill(d, d + F, T(0));
        continue;
      }
      const T* g = dy + s * F;
      if (op == SegReduce::max) {
        const index_t* a = arg + s * F;
        for (index_t f = 0; f < F; ++f) d[f] = a[f] == m ? g[f] : T(0);
      } else {
        const T scale = op == SegReduce::mean ? T(1) / T(count[size_t(s)]) : T(1);
        for (index_t f = 0; f < F; ++f) d[f] = g[f] * scale;
      }
    }
  });
}

template <typename T>
void segment_reduce_forward(index_t M, index_t F, index_t S, const index_t* offsets, const T* x,
                            SegReduce op, T* y, index_t* arg) {
  check_offsets("segment_reduce_forward", S, offsets, M);
  reduce_csr<T>(F, S, offsets, nullptr, x, op, y, arg);
}

template <typename T>
void segment_reduce_backward(index_t M, index_t F, index_t S, const index_t* offsets, SegReduce op,
                             const T* dy, const index_t* arg, T* dx) {
  const char* opname = "segment_reduce_backward";
  check_offsets(opname, S, offsets, M);
  if (op == SegReduce::max && !arg) throw ValueError(op_message(opname, "max needs the forward's arg"));
  parallel_for(S, grain_rows(F, S ? M / S : 1), [&](index_t s0, index_t s1) {
    for (index_t s = s0; s < s1; ++s) {
      const index_t b = offsets[s], e = offsets[s + 1];
      const T* g = dy + s * F;
      const T scale = op == SegReduce::mean && e > b ? T(1) / T(e - b) : T(1);
      for (index_t m = b; m < e; ++m) {
        T* d = dx + m * F;
        if (op == SegReduce::max) {
          const index_t* a = arg + s * F;
          for (index_t f = 0; f < F; ++f) d[f] = a[f] == m ? g[f] : T(0);
        } else {
          for (index_t f = 0; f < F; ++f) d[f] = g[f] * scale;
        }
      }
    }
  });
}

template <typename T>
void gather_rows_forward(index_t R, index_t F, index_t M, const T* x, const index_t* idx, T* y) {
  check_index_range("gather", "index", M, idx, R, true);
  parallel_for(M, grain_rows(F, 1), [&](index_t m0, index_t m1) {
    for (index_t m = m0; m < m1; ++m) {
      T* d = y + m * F;
      if (idx[m] < 0)
        std::fill(d, d + F, T(0));
      else
        std::copy(x + idx[m] * F, x + idx[m] * F + F, d);
    }
  });
}

template <typename T>
void gather_rows_backward(index_t R, index_t F, index_t M, const index_t* idx, const T* dy, T* dx) {
  check_index_range("gather_backward", "index", M, idx, R, true);
  std::vector<index_t> off, rows;
  build_csr(M, R, idx, off, rows);
  reduce_csr(F, R, off.data(), rows.data(), dy, SegReduce::sum, dx, static_cast<index_t*>(nullptr));
}

#define HEPNN_SEGMENT_INSTANTIATE(T)                                                               \
  template void gather_rows_forward<T>(index_t, index_t, index_t, const T*, const index_t*, T*);   \
  template void gather_rows_backward<T>(index_t, index_t, index_t, const index_t*, const T*, T*);  \
  template void scatter_reduce_forward<T>(index_t, index_t, index_t, const T*, const index_t*,     \
                                          SegReduce, T*, index_t*);                                \
  template void scatter_reduce_backward<T>(index_t, index_t, index_t, const index_t*, SegReduce,   \
                                           const T*, const index_t*, T*);                          \
  template void segment_reduce_forward<T>(index_t, index_t, index_t, const index_t*, const T*,     \
                                          SegReduce, T*, index_t*);                                \
  template void segment_reduce_backward<T>(index_t, index_t, index_t, const index_t*, SegReduce,   \
                                           const T*, const index_t*, T*);
HEPNN_SEGMENT_INSTANTIATE(float)
HEPNN_SEGMENT_INSTANTIATE(double)
#undef HEPNN_SEGMENT_INSTANTIATE

}  // namespace hepnn::cpu
