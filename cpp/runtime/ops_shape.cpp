// Shape and layout steps: Identity/Dropout/Flatten/Reshape/Squeeze/Unsqueeze (a copy with a new
// shape), Transpose, Slice and Expand (one strided-copy kernel), Concat, Tile, and the producers
// of shape tensors: Shape, ConstantOfShape, Range. Any element type.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.hpp"
#include "runtime/onnx_model.hpp"
#include "runtime/ops.hpp"
#include "runtime/ops_iter.hpp"

namespace hepnn::rt {
namespace {

Shape strides_of(const Shape& x) {
  Shape st(x.size(), 1);
  for (size_t i = x.size(); i-- > 1;) st[i - 1] = st[i] * x[i];
  return st;
}

// y[i...] = x[offset + sum_d i_d * sa[d]] over the output dims p.dims.
template <typename T>
void strided_copy(const StepPlan& p, const void* vx, void* vy) {
  const T* x = static_cast<const T*>(vx) + p.offset;
  T* y = static_cast<T*>(vy);
  const int64_t st = p.rank ? p.sa[p.rank - 1] : 0;
  rows(p, [&](int64_t o, int64_t oa, int64_t, int64_t, int64_t n) {
    const T* src = x + oa;
    if (st == 1) std::memcpy(y + o, src, size_t(n) * sizeof(T));
    else for (int64_t i = 0; i < n; ++i) y[o + i] = src[i * st];
  });
}

void strided_copy(Elem e, const StepPlan& p, const void* x, void* y) {
  if (elem_size(e) == 4) strided_copy<uint32_t>(p, x, y);
  else if (elem_size(e) == 8) strided_copy<uint64_t>(p, x, y);
  else strided_copy<uint8_t>(p, x, y);
}

void check_rank(const Step& s, size_t r) {
  if (r > 8) op_fail(s, "more than 8 dimensions");
}

void infer_reshape(const Step& s, const Shape& x, const std::vector<int64_t>& spec, Shape& out) {
  check_rank(s, spec.size());
  const int64_t n = prod(x, 0, x.size());
  int64_t known = 1;
  int minus = -1;
  out = spec;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] < -1 || out[i] > kMaxElements) op_fail(s, "invalid target dimension " + std::to_string(out[i]));
    if (out[i] == 0 && !s.allowzero) {
      if (i >= x.size()) op_fail(s, "target dimension " + std::to_string(i) + " copies a dimension the input lacks");
      out[i] = x[i];
    }
    if (out[i] == -1) {
      if (minus >= 0) op_fail(s, "more than one -1 in the target shape");
      minus = int(i);
    } else {
      known *= out[i];
    }
    if (known > kMaxElements) op_fail(s, "target shape too large");
  }
  if (minus >= 0) {
    if (known == 0 || n % known) op_fail(s, "cannot infer -1 for " + shape_str(x) + " -> " + shape_str(spec));
    out[minus] = n / known;
  }
  if (prod(out, 0, out.size()) != n) op_fail(s, "cannot reshape " + shape_str(x) + " to " + shape_str(out));
}

// Sorted, normalised, duplicate-free axes against rank r.
std::vector<int64_t> axes_of(const Step& s, std::vector<int64_t> axes, int64_t r) {
  for (int64_t& a : axes) a = norm_axis(s, a, r, "axis");
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) op_fail(s, "repeated axis");
  return axes;
}

// Scalar input `i` of Range as double (with the exact int64 value alongside).
double range_arg(const Step& s, const InferIn& in, const char* what, int64_t& as_int) {
  if (!in.shape || prod(*in.shape, 0, in.shape->size()) != 1) op_fail(s, std::string(what) + " must be a scalar");
  if (!in.known) op_fail(s, std::string(what) + " must be computable before running, not from input data");
  if (in.elem == Elem::i64) {
    as_int = *static_cast<const int64_t*>(in.known);
    return double(as_int);
  }
  as_int = 0;
  return double(*static_cast<const float*>(in.known));
}

}  // namespace

void infer_shape_op(const Step& s, const std::vector<InferIn>& in, Shape& out, StepPlan& p) {
  const Shape& x = in.empty() || !in[0].shape ? Shape{} : *in[0].shape;
  const int64_t r = int64_t(x.size());
  switch (s.kind) {
    case StepKind::copy: out = x; break;
    case StepKind::flatten: {
      if (s.axis < -r || s.axis > r) op_fail(s, "axis " + std::to_string(s.axis) + " out of range for " + shape_str(x));
      const size_t ax = size_t(s.axis < 0 ? s.axis + r : s.axis);
      out = {prod(x, 0, ax), prod(x, ax, x.size())};
      break;
    }
    case StepKind::reshape: infer_reshape(s, x, known_ints(s, in[1], "the shape"), out); break;
    case StepKind::squeeze: {
      std::vector<int64_t> axes = s.ints;
      if (in.size() > 1 && in[1].shape) axes = known_ints(s, in[1], "axes");
      const bool all = !s.has_axes && !(in.size() > 1 && in[1].shape);
      axes = axes_of(s, axes, r);
      for (int64_t i = 0; i < r; ++i) {
        const bool listed = std::binary_search(axes.begin(), axes.end(), i);
        if (listed && x[i] != 1) op_fail(s, "cannot squeeze axis " + std::to_string(i) + " of " + shape_str(x));
        if (!(listed || (all && x[i] == 1))) out.push_back(x[i]);
      }
      break;
    }
    case StepKind::unsqueeze: {
      std::vector<int64_t> axes = s.ints;
      if (in.size() > 1 && in[1].shape) axes = known_ints(s, in[1], "axes");
      const int64_t ro = r + int64_t(axes.size());
      check_rank(s, size_t(ro));
      axes = axes_of(s, axes, ro);
      size_t j = 0;
      for (int64_t i = 0; i < ro; ++i)
        out.push_back(std::binary_search(axes.begin(), axes.end(), i) ? 1 : x[j++]);
      break;
    }
    case StepKind::transpose: {
      check_rank(s, x.size());
      std::vector<int64_t> perm = s.ints;
      if (perm.empty())
        for (int64_t i = r; i-- > 0;) perm.push_back(i);
      if (int64_t(perm.size()) != r) op_fail(s, "perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(r));
      std::vector<bool> seen(size_t(r), false);
      const Shape st = strides_of(x);
      p.rank = int(r);
      for (int64_t i = 0; i < r; ++i) {
        const int64_t a = perm[i];
        if (a < 0 || a >= r || seen[a]) op_fail(s, "perm is not a permutation of 0.." + std::to_string(r - 1));
        seen[a] = true;
        out.push_back(x[a]);
        p.dims[i] = x[a];
        p.sa[i] = st[a];
      }
      break;
    }
    case StepKind::concat: {
      if (x.empty()) op_fail(s, "inputs must have at least one dimension");
      const int64_t ax = norm_axis(s, s.axis, r, "axis");
      out = x;
      out[ax] = 0;
      p.outer = prod(x, 0, size_t(ax));
      p.inner = prod(x, size_t(ax) + 1, x.size());
      for (const InferIn& i : in) {
        const Shape& y = *i.shape;
        bool ok = y.size() == x.size();
        for (size_t d = 0; ok && d < y.size(); ++d) ok = int64_t(d) == ax || y[d] == x[d];
        if (!ok) op_fail(s, "cannot concatenate " + shape_str(x) + " and " + shape_str(y) + " along axis " + std::to_string(ax));
        out[ax] += y[ax];
        if (out[ax] > kMaxElements) op_fail(s, "output too large");
        p.v.push_back(y[ax] * p.inner);
      }
      break;
    }
    case StepKind::slice: {
      check_rank(s, x.size());
      const std::vector<int64_t> starts = known_ints(s, in[1], "starts"), ends = known_ints(s, in[2], "ends");
      std::vector<int64_t> axes, steps;
      if (in.size() > 3 && in[3].shape) axes = known_ints(s, in[3], "axes");
      else for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
      if (in.size() > 4 && in[4].shape) steps = known_ints(s, in[4], "steps");
      else steps.assign(starts.size(), 1);
      if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
        op_fail(s, "starts, ends, axes and steps differ in length");
      const Shape st = strides_of(x);
      out = x;
      p.rank = int(r);
      for (int64_t d = 0; d < r; ++d) {
        p.dims[d] = x[d];
        p.sa[d] = st[d];
      }
      std::vector<bool> seen(size_t(r), false);
      for (size_t i = 0; i < starts.size(); ++i) {
        const int64_t a = norm_axis(s, axes[i], r, "axis");
        if (seen[a]) op_fail(s, "repeated axis");
        seen[a] = true;
        const int64_t dim = x[a], step = steps[i];
        if (step == 0) op_fail(s, "step 0");
        // ONNX's clamping: negative indices count from the end; starts/ends clamp to [0, dim] for
        // positive steps and [-1, dim-1] for negative ones. NOTE: values like INT64_MAX are common.
        auto clampi = [&](int64_t v, int64_t lo, int64_t hi) {
          if (v < 0) v = v < -dim ? -dim - 1 : v + dim;  // no overflow: dim <= 2^31
          return std::min(std::max(v, lo), hi);
        };
        int64_t b, e, cnt;
        if (step > 0) {
          b = clampi(starts[i], 0, dim);
          e = clampi(ends[i], 0, dim);
          cnt = e > b ? (e - b + step - 1) / step : 0;
        } else {
          b = clampi(starts[i], -1, dim - 1);
          e = clampi(ends[i], -1, dim - 1);
          cnt = b > e ? (b - e + (-step) - 1) / (-step) : 0;
        }
        out[a] = cnt;
        p.dims[a] = cnt;
        if (cnt) p.offset += b * st[a];
        // |step| is unbounded: a stride beyond the dimension only matters for cnt == 1.
        p.sa[a] = cnt > 1 ? step * st[a] : 0;
      }
      break;
    }
    case StepKind::expand: {
      const std::vector<int64_t> shape = known_ints(s, in[1], "the shape");
      for (int64_t d : shape)
        if (d < 0 || d > kMaxElements) op_fail(s, "invalid target dimension " + std::to_string(d));
      StepPlan q;
      out = broadcast_plan(s, x, shape, nullptr, q);
      // NOTE: ONNX Expand broadcasts both ways (a target 1 keeps the input's dimension); the
      // output needs only the input's strides.
      p.rank = q.rank;
      std::copy(q.dims, q.dims + 8, p.dims);
      std::copy(q.sa, q.sa + 8, p.sa);
      break;
    }
    case StepKind::tile: {
      const std::vector<int64_t> rep = known_ints(s, in[1], "repeats");
      if (int64_t(rep.size()) != r) op_fail(s, "repeats has " + std::to_string(rep.size()) + " entries for rank " + std::to_string(r));
      check_rank(s, x.size());
      p.rank = int(r);
      const Shape st = strides_of(x);
      for (int64_t d = 0; d < r; ++d) {
        if (rep[d] < 0 || rep[d] > kMaxElements) op_fail(s, "invalid repeat " + std::to_string(rep[d]));
        out.push_back(x[d] * rep[d]);  // both <= 2^31: no overflow; the total is checked by the caller
        p.dims[d] = out.back();
        p.sb[d] = x[d];
        p.sa[d] = st[d];
      }
      break;
    }
    case StepKind::shape: {
      auto clampi = [&](int64_t v) { return std::min(std::max(v < 0 ? v + r : v, int64_t(0)), r); };
      const int64_t b = clampi(s.lo), e = clampi(s.hi);
      for (int64_t i = b; i < e; ++i) p.v.push_back(x[i]);
      out = {int64_t(p.v.size())};
      break;
    }
    case StepKind::constant_of_shape: {
      out = known_ints(s, in[0], "the shape");
      if (in[0].shape->size() != 1) op_fail(s, "the shape must be 1-D");
      check_rank(s, out.size());
      for (int64_t d : out)
        if (d < 0 || d > kMaxElements) op_fail(s, "invalid dimension " + std::to_string(d));
      break;
    }
    case StepKind::range: {
      int64_t i0, i1, i2;
      const double a = range_arg(s, in[0], "start", i0), b = range_arg(s, in[1], "limit", i1),
                   d = range_arg(s, in[2], "delta", i2);
      if (d == 0) op_fail(s, "delta is 0");
      int64_t n;
      if (s.elem == Elem::i64) {
        // Exact integer count; the difference of two int64 values may overflow, so use __int128.
        const __int128 span = __int128(i1) - i0;
        __int128 c = i2 > 0 ? (span + i2 - 1) / i2 : (span + i2 + 1) / i2;
        if (c < 0) c = 0;
        if (c > kMaxElements) op_fail(s, "the output would have more than 2^31 elements");
        n = int64_t(c);
        p.offset = i0;
        p.k = i2;
      } else {
        const double c = std::ceil((b - a) / d);
        if (!std::isfinite(c)) op_fail(s, "start, limit and delta must be finite");
        if (c > double(kMaxElements)) op_fail(s, "the output would have more than 2^31 elements");
        n = c > 0 ? int64_t(c) : 0;
        p.v = {0, 0};
        const float fa = float(a), fd = float(d);
        std::memcpy(&p.v[0], &fa, 4);
        std::memcpy(&p.v[1], &fd, 4);
      }
      out = {n};
      break;
    }
    default: op_fail(s, "not a shape step");
  }
}

void check_expansion(const Step& s, const StepPlan& p) {
  if (p.n > kMaxExpandElements)
    op_fail(s, "the output would have " + std::to_string(p.n) + " elements, more than the runtime's limit of 2^25 for " + s.op);
}

void run_shape_op(const Step& s, const StepPlan& p, const void* const* in, void* y) {
  const size_t es = elem_size(s.elem);
  switch (s.kind) {
    case StepKind::copy:
    case StepKind::flatten:
    case StepKind::reshape:
    case StepKind::squeeze:
    case StepKind::unsqueeze: std::memcpy(y, in[0], size_t(p.n) * es); break;
    case StepKind::transpose:
    case StepKind::slice:
    case StepKind::expand: strided_copy(s.elem, p, in[0], y); break;
    case StepKind::concat: {
      uint8_t* out = static_cast<uint8_t*>(y);
      for (int64_t o = 0; o < p.outer; ++o)
        for (size_t i = 0; i < p.v.size(); ++i) {
          const size_t bytes = size_t(p.v[i]) * es;
          std::memcpy(out, static_cast<const uint8_t*>(in[i]) + size_t(o) * bytes, bytes);
          out += bytes;
        }
      break;
    }
    case StepKind::tile: {
      // Output index i_d reads input index i_d mod x_d (p.sb holds the input dims, p.sa strides).
      const uint8_t* x = static_cast<const uint8_t*>(in[0]);
      uint8_t* out = static_cast<uint8_t*>(y);
      const int r = p.rank;
      if (r == 0) { std::memcpy(out, x, es); break; }
      int64_t idx[8] = {};
      for (int64_t k = 0; k < p.n; ++k) {
        int64_t off = 0;
        for (int d = 0; d < r; ++d) off += (idx[d] % p.sb[d]) * p.sa[d];
        std::memcpy(out + size_t(k) * es, x + size_t(off) * es, es);
        for (int d = r - 1; d >= 0; --d) {
          if (++idx[d] < p.dims[d]) break;
          idx[d] = 0;
        }
      }
      break;
    }
    case StepKind::shape:
      if (!p.v.empty()) std::memcpy(y, p.v.data(), p.v.size() * 8);
      break;
    case StepKind::constant_of_shape:
      if (s.elem == Elem::f32) std::fill_n(static_cast<float*>(y), p.n, s.fill_f);
      else if (s.elem == Elem::i64) std::fill_n(static_cast<int64_t*>(y), p.n, s.fill_i);
      else std::fill_n(static_cast<uint8_t*>(y), p.n, uint8_t(s.fill_i != 0));
      break;
    case StepKind::range:
      if (s.elem == Elem::i64) {
        int64_t* out = static_cast<int64_t*>(y);
        // NOTE: the product can exceed int64 on its own; the sum lies between start and limit.
        for (int64_t i = 0; i < p.n; ++i) out[i] = int64_t(__int128(p.offset) + __int128(i) * p.k);
      } else {
        float a, d;
        std::memcpy(&a, &p.v[0], 4);
        std::memcpy(&d, &p.v[1], 4);
        float* out = static_cast<float*>(y);
        for (int64_t i = 0; i < p.n; ++i) out[i] = a + float(i) * d;
      }
      break;
    default: break;
  }
}

}  // namespace hepnn::rt
