// Index steps: Gather and GatherElements (indices may come from input data: each is range-checked
// as it is read, an error rather than an out-of-bounds read), ArgMax, TopK (values and int64
// indices; ties keep the lower index first, as ONNX specifies).
#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "runtime/ops.hpp"

namespace hepnn::rt {
namespace {

[[noreturn]] void bad_index(const Step& s, int64_t i, int64_t dim) {
  op_fail(s, "index " + std::to_string(i) + " is out of range for an axis of size " + std::to_string(dim));
}

inline int64_t fix_index(const Step& s, int64_t i, int64_t dim) {
  const int64_t j = i < 0 ? i + dim : i;
  if (j < 0 || j >= dim) bad_index(s, i, dim);
  return j;
}

template <typename T>
void argmax(const Step& s, const StepPlan& p, const T* x, int64_t* y) {
  for (int64_t o = 0; o < p.outer; ++o)
    for (int64_t i = 0; i < p.inner; ++i) {
      const T* row = x + o * p.dim * p.inner + i;
      int64_t best = 0;
      for (int64_t d = 1; d < p.dim; ++d) {
        const T v = row[d * p.inner], b = row[best * p.inner];
        if (s.flag ? v >= b : v > b) best = d;
      }
      y[o * p.inner + i] = best;
    }
}

template <typename T>
void topk(const Step& s, const StepPlan& p, const T* x, T* vals, int64_t* idx, int64_t* order) {
  const bool largest = s.flag;
  for (int64_t o = 0; o < p.outer; ++o)
    for (int64_t i = 0; i < p.inner; ++i) {
      const T* row = x + o * p.dim * p.inner + i;
      for (int64_t d = 0; d < p.dim; ++d) order[d] = d;
      // NOTE: std::partial_sort works in place (no allocation); ties go to the lower index.
      std::partial_sort(order, order + p.k, order + p.dim, [&](int64_t a, int64_t b) {
        const T va = row[a * p.inner], vb = row[b * p.inner];
        if (va == vb) return a < b;
        return largest ? va > vb : va < vb;
      });
      for (int64_t j = 0; j < p.k; ++j) {
        const int64_t at = (o * p.k + j) * p.inner + i;
        vals[at] = row[order[j] * p.inner];
        idx[at] = order[j];
      }
    }
}

}  // namespace

void infer_index(const Step& s, const std::vector<InferIn>& in, Shape& out, Shape& out2, StepPlan& p) {
  const Shape& x = *in[0].shape;
  const int64_t r = int64_t(x.size());
  if (r > 8) op_fail(s, "more than 8 dimensions");
  switch (s.kind) {
    case StepKind::gather: {
      if (r < 1) op_fail(s, "data must have at least one dimension");
      const Shape& ind = *in[1].shape;
      const size_t ax = size_t(norm_axis(s, s.axis, r, "axis"));
      p.outer = prod(x, 0, ax);
      p.k = x[ax];
      p.inner = prod(x, ax + 1, x.size());
      p.dim = prod(ind, 0, ind.size());
      out.assign(x.begin(), x.begin() + ax);
      out.insert(out.end(), ind.begin(), ind.end());
      out.insert(out.end(), x.begin() + ax + 1, x.end());
      if (out.size() > 8) op_fail(s, "more than 8 dimensions");
      break;
    }
    case StepKind::gather_elements: {
      const Shape& ind = *in[1].shape;
      if (ind.size() != x.size()) op_fail(s, "indices " + shape_str(ind) + " and data " + shape_str(x) + " differ in rank");
      if (r < 1) op_fail(s, "data must have at least one dimension");
      const int64_t ax = norm_axis(s, s.axis, r, "axis");
      int64_t st = 1;
      for (int64_t d = r; d-- > 0;) {
        if (d != ax && ind[d] > x[d]) op_fail(s, "indices " + shape_str(ind) + " exceed data " + shape_str(x));
        p.dims[d] = ind[d];
        p.sa[d] = st;
        st *= x[d];
      }
      p.rank = int(r);
      p.k = x[ax];
      p.dim = ax;
      out = ind;
      break;
    }
    case StepKind::argmax:
    case StepKind::topk: {
      if (r < 1) op_fail(s, "input must have at least one dimension");
      const size_t ax = size_t(norm_axis(s, s.axis, r, "axis"));
      p.outer = prod(x, 0, ax);
      p.dim = x[ax];
      p.inner = prod(x, ax + 1, x.size());
      out = x;
      if (s.kind == StepKind::argmax) {
        if (p.dim == 0) op_fail(s, "cannot take the maximum of an empty axis");
        if (s.keepdims) out[ax] = 1;
        else out.erase(out.begin() + ax);
      } else {
        const std::vector<int64_t> k = known_ints(s, in[1], "K");
        if (k.size() != 1) op_fail(s, "K must hold one value");
        if (k[0] < 0 || k[0] > p.dim) op_fail(s, "K = " + std::to_string(k[0]) + " for an axis of size " + std::to_string(p.dim));
        p.k = k[0];
        out[ax] = p.k;
        out2 = out;
        p.scratch = size_t(p.dim) * sizeof(int64_t);
      }
      break;
    }
    default: op_fail(s, "not an index step");
  }
}

void run_index(const Step& s, const StepPlan& p, const void* const* in, void* y, void* y2, void* scratch) {
  const size_t es = elem_size(s.elem);
  switch (s.kind) {
    case StepKind::gather: {
      const uint8_t* x = static_cast<const uint8_t*>(in[0]);
      const int64_t* ind = static_cast<const int64_t*>(in[1]);
      uint8_t* out = static_cast<uint8_t*>(y);
      const size_t row = size_t(p.inner) * es;
      for (int64_t j = 0; j < p.dim; ++j) fix_index(s, ind[j], p.k);  // all checked before writing
      for (int64_t o = 0; o < p.outer; ++o)
        for (int64_t j = 0; j < p.dim; ++j) {
          const int64_t i = fix_index(s, ind[j], p.k);
          std::memcpy(out + size_t(o * p.dim + j) * row, x + size_t(o * p.k + i) * row, row);
        }
      break;
    }
    case StepKind::gather_elements: {
      const uint8_t* x = static_cast<const uint8_t*>(in[0]);
      const int64_t* ind = static_cast<const int64_t*>(in[1]);
      uint8_t* out = static_cast<uint8_t*>(y);
      const int r = p.rank, ax = int(p.dim);
      int64_t idx[8] = {};
      for (int64_t k = 0; k < p.n; ++k) {
        int64_t off = fix_index(s, ind[k], p.k) * p.sa[ax];
        for (int d = 0; d < r; ++d)
          if (d != ax) off += idx[d] * p.sa[d];
        std::memcpy(out + size_t(k) * es, x + size_t(off) * es, es);
        for (int d = r - 1; d >= 0; --d) {
          if (++idx[d] < p.dims[d]) break;
          idx[d] = 0;
        }
      }
      break;
    }
    case StepKind::argmax:
      if (p.e0 == Elem::f32) argmax(s, p, static_cast<const float*>(in[0]), static_cast<int64_t*>(y));
      else argmax(s, p, static_cast<const int64_t*>(in[0]), static_cast<int64_t*>(y));
      break;
    case StepKind::topk:
      if (p.e0 == Elem::f32)
        topk(s, p, static_cast<const float*>(in[0]), static_cast<float*>(y), static_cast<int64_t*>(y2), static_cast<int64_t*>(scratch));
      else
        topk(s, p, static_cast<const int64_t*>(in[0]), static_cast<int64_t*>(y), static_cast<int64_t*>(y2), static_cast<int64_t*>(scratch));
      break;
    default: break;
  }
}

}  // namespace hepnn::rt
