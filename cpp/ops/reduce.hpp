// Reductions over one axis of a contiguous array seen as (outer, dim, inner) -> (outer, inner).
#pragma once
#include "core/types.hpp"

namespace hepnn::cpu {

enum class ReduceOp : int { sum = 0, mean = 1, max = 2 };

// For max, `argmax` (may be null) receives the index along dim of the first maximum; NaN
// propagates (a NaN in the slice makes the result NaN).
template <typename T>
void reduce_forward(ReduceOp op, index_t outer, index_t dim, index_t inner, const T* x, T* y,
                    index_t* argmax);

}  // namespace hepnn::cpu
