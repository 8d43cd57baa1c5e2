// Reductions: Softmax/LogSoftmax (cpp/ops softmax_forward) and ReduceSum/Mean/Max/Min over any
// set of axes (float32, int64, bool for Max/Min). Reduced axes that form one block of float32
// sum/mean/max use cpp/ops reduce_forward; others take a strided accumulation loop.
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/error.hpp"
#include "ops/reduce.hpp"
#include "ops/softmax.hpp"
#include "runtime/ops.hpp"

namespace hepnn::rt {
namespace {

template <typename T>
T identity_of(RedOp op) {
  if (op == RedOp::max)
    return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
  if (op == RedOp::min)
    return std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
  return T(0);
}

// y[out(i)] op= x[i] over the input dims (p.dims, p.rank; p.sa: output stride per input dim, 0
// where reduced; p.K: input elements).
template <typename T>
void reduce_generic(const Step& s, const StepPlan& p, const T* x, T* y) {
  std::fill_n(y, p.n, identity_of<T>(s.red));
  const int r = p.rank;
  int64_t idx[8] = {};
  int64_t o = 0;
  for (int64_t i = 0; i < p.K; ++i) {
    T& acc = y[o];
    const T v = x[i];
    switch (s.red) {
      case RedOp::sum:
      case RedOp::mean:
        if constexpr (std::is_same_v<T, int64_t>) {
          if (__builtin_add_overflow(acc, v, &acc)) op_fail(s, "int64 overflow");
        } else {
          acc = T(acc + v);
        }
        break;
      case RedOp::max: if (v > acc || v != v) acc = v; break;  // NOTE: NaN propagates
      case RedOp::min: if (v < acc || v != v) acc = v; break;
    }
    for (int d = r - 1; d >= 0; --d) {
      o += p.sa[d];
      if (++idx[d] < p.dims[d]) break;
      o -= p.sa[d] * p.dims[d];
      idx[d] = 0;
    }
  }
  if (s.red == RedOp::mean) {
    const int64_t cnt = p.n ? p.K / p.n : 0;
    for (int64_t j = 0; j < p.n; ++j) {
      if constexpr (std::is_same_v<T, float>) y[j] = cnt ? y[j] / float(cnt) : std::numeric_limits<float>::quiet_NaN();
      else y[j] = cnt ? T(y[j] / cnt) : T(0);
    }
  }
}

}  // namespace

void infer_reduce(const Step& s, const std::vector<InferIn>& in, Shape& out, StepPlan& p) {
  const Shape& x = *in[0].shape;
  const int64_t r = int64_t(x.size());
  if (s.kind == StepKind::softmax) {
    if (r < 1) op_fail(s, "input must have at least one dimension");
    const size_t ax = size_t(norm_axis(s, s.axis, r, "axis"));
    p.outer = prod(x, 0, ax);
    p.dim = x[ax];
    p.inner = prod(x, ax + 1, x.size());
    out = x;
    return;
  }
  if (r > 8) op_fail(s, "more than 8 dimensions");
  std::vector<int64_t> axes = s.ints;
  if (in.size() > 1 && in[1].shape) axes = known_ints(s, in[1], "axes");
  std::vector<bool> red(size_t(r), false);
  if (axes.empty()) {
    if (!s.flag) red.assign(size_t(r), true);  // noop_with_empty_axes=0: reduce everything
  }
  for (int64_t a : axes) {
    const int64_t ax = norm_axis(s, a, r, "axis");
    if (red[ax]) op_fail(s, "repeated axis");
    red[ax] = true;
  }
  // Output strides per input dim, and the block structure for the fast path.
  Shape kept;
  for (int64_t d = 0; d < r; ++d) kept.push_back(red[d] ? 1 : x[d]);
  int64_t st = 1;
  p.rank = int(r);
  for (int64_t d = r; d-- > 0;) {
    p.dims[d] = x[d];
    p.sa[d] = red[d] ? 0 : st;
    st *= kept[d];
  }
  p.K = prod(x, 0, x.size());
  int64_t first = -1, last = -1;
  bool block = true;
  for (int64_t d = 0; d < r; ++d)
    if (red[d] && x[d] != 1) {
      if (first < 0) first = d;
      else if (last != d - 1) block = false;
      last = d;
    }
  p.general = !block || first < 0;
  if (!p.general) {
    p.outer = prod(x, 0, size_t(first));
    p.dim = prod(x, size_t(first), size_t(last) + 1);
    p.inner = prod(x, size_t(last) + 1, x.size());
  }
  for (int64_t d = 0; d < r; ++d)
    if (!red[d] || s.keepdims) out.push_back(kept[d]);
}

void run_reduce(const Step& s, const StepPlan& p, const void* const* in, void* y) {
  if (s.kind == StepKind::softmax) {
    cpu::softmax_forward<float>(p.outer, p.dim, p.inner, static_cast<const float*>(in[0]), static_cast<float*>(y), s.log);
    return;
  }
  if (s.elem == Elem::f32) {
    const float* x = static_cast<const float*>(in[0]);
    if (!p.general && p.dim > 0 && s.red != RedOp::min) {
      const cpu::ReduceOp op = s.red == RedOp::sum ? cpu::ReduceOp::sum : s.red == RedOp::mean ? cpu::ReduceOp::mean : cpu::ReduceOp::max;
      cpu::reduce_forward<float>(op, p.outer, p.dim, p.inner, x, static_cast<float*>(y), nullptr);
    } else {
      reduce_generic<float>(s, p, x, static_cast<float*>(y));
    }
  } else if (s.elem == Elem::i64) {
    reduce_generic<int64_t>(s, p, static_cast<const int64_t*>(in[0]), static_cast<int64_t*>(y));
  } else {
    reduce_generic<uint8_t>(s, p, static_cast<const uint8_t*>(in[0]), static_cast<uint8_t*>(y));
  }
}

}  // namespace hepnn::rt
