// CUDA twin of cpp/ops/segment.hpp (same signature plus the stream to launch on).
// Row gathers and scatter / segment reductions (sum, mean, max) with their backward passes.
// Shape letters: R source rows, M index entries (message rows), S segments (output rows), F features.
#pragma once
#include "core/types.hpp"
#include "ops/segment.hpp"

namespace hepnn::cuda {

using cpu::SegReduce;  // one enum for both backends

// y[m, :] = x[idx[m], :] for x (R, F), idx (M,), y (M, F). idx[m] == -1 gives a zero row (the
// "no neighbour" marker of knn); any other index outside [0, R) throws ValueError.
template <typename T>
void gather_rows_forward(index_t R, index_t F, index_t M, const T* x, const index_t* idx, T* y, Stream stream);

// dx (R, F) = sum over m with idx[m] == r of dy[m, :]; accumulated per output row in the order
// of m (no atomics), so the result does not depend on the thread count.
template <typename T>
void gather_rows_backward(index_t R, index_t F, index_t M, const index_t* idx, const T* dy, T* dx, Stream stream);

// y[s, :] = reduce over m with index[m] == s of x[m, :] for x (M, F), index (M,), y (S, F).
// index[m] == -1 drops the row. Empty segments give 0 (sum, mean and max alike). For max, `arg`
// (S, F) receives the row m of the first maximum (-1 for an empty segment); NaN wins.
template <typename T>
void scatter_reduce_forward(index_t M, index_t F, index_t S, const T* x, const index_t* index,
                            SegReduce op, T* y, index_t* arg, Stream stream);

// dx (M, F) from dy (S, F): sum -> dy[index[m]], mean -> dy[index[m]] / count, max -> dy where m
// is the recorded arg; dropped rows get 0.
template <typename T>
void scatter_reduce_backward(index_t M, index_t F, index_t S, const index_t* index, SegReduce op,
                             const T* dy, const index_t* arg, T* dx, Stream stream);

// The same reductions over sorted segments given as CSR offsets (S + 1,): segment s holds rows
// [offsets[s], offsets[s + 1]); offsets start at 0, never decrease and end at M.
template <typename T>
void segment_reduce_forward(index_t M, index_t F, index_t S, const index_t* offsets, const T* x,
                            SegReduce op, T* y, index_t* arg, Stream stream);

template <typename T>
void segment_reduce_backward(index_t M, index_t F, index_t S, const index_t* offsets, SegReduce op,
                             const T* dy, const index_t* arg, T* dx, Stream stream);

// Indices are validated by the caller (the Python layer on CUDA arrays); out-of-range entries
// are skipped here, never dereferenced.

}  // namespace hepnn::cuda
