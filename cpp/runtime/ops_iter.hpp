// The odometer shared by the broadcasting and strided kernels: walks an output of p.rank
// dimensions p.dims row by row, tracking the offset of up to three inputs (strides p.sa, p.sb, p.sc).
#pragma once
#include <cstdint>

#include "runtime/ops.hpp"

namespace hepnn::rt {

// Walks the broadcast output row by row (innermost dimension), tracking each input's offset.
// row(out_offset, off_a, off_b, off_c, n) handles one row; the inner strides are 0 or 1.
template <typename Row>
inline void rows(const StepPlan& p, Row row) {
  const int r = p.rank;
  if (r == 0) {
    row(0, 0, 0, 0, 1);
    return;
  }
  const int64_t inner = p.dims[r - 1];
  if (inner == 0 || p.n == 0) return;
  const int64_t nrows = p.n / inner;
  int64_t idx[8] = {};
  int64_t oa = 0, ob = 0, oc = 0;
  for (int64_t k = 0; k < nrows; ++k) {
    row(k * inner, oa, ob, oc, inner);
    for (int d = r - 2; d >= 0; --d) {
      oa += p.sa[d];
      ob += p.sb[d];
      oc += p.sc[d];
      if (++idx[d] < p.dims[d]) break;
      oa -= p.sa[d] * p.dims[d];
      ob -= p.sb[d] * p.dims[d];
      oc -= p.sc[d] * p.dims[d];
      idx[d] = 0;
    }
  }
}

}  // namespace hepnn::rt
