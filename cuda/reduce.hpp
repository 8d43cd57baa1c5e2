// CUDA twin of cpp/ops/reduce.hpp (same signature plus the stream to launch on).
// Reductions over one axis of a contiguous array seen as (outer, dim, inner) -> (outer, inner).
#pragma once
#include "core/types.hpp"
#include "ops/reduce.hpp"

namespace hepnn::cuda {

using cpu::ReduceOp;  // one enum for both backends

// For max, `argmax` (may be null) receives the index along dim of the first maximum; NaN
// propagates (a NaN in the slice makes the result NaN).
template <typename T>
void reduce_forward(ReduceOp op, index_t outer, index_t dim, index_t inner, const T* x, T* y,
                    index_t* argmax, Stream stream);

}  // namespace hepnn::cuda
