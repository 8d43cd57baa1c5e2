// Dispatch of infer_step/run_step to the op groups, and the helpers they share (messages, checked
// element counts, numpy broadcasting, axes, shape-defining inputs).
#include "runtime/ops.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "runtime/onnx_model.hpp"

namespace hepnn::rt {

const char* elem_name(Elem e) { return e == Elem::f32 ? "float32" : e == Elem::i64 ? "int64" : "bool"; }

void op_fail(const Step& s, const std::string& what) { throw ValueError("[runtime] " + s.op + ": " + what); }

std::string shape_str(const Shape& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

int64_t checked_numel(const Shape& s, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw ValueError("[runtime] " + what + " has a negative dimension");
    if (d > kMaxElements || (d > 0 && n > kMaxElements / d))
      throw ValueError("[runtime] " + what + " has more than 2^31 elements");
    n *= d;
  }
  return n;
}

int64_t prod(const Shape& s, size_t b, size_t e) {
  int64_t n = 1;
  for (size_t i = b; i < e; ++i) n *= s[i];
  return n;
}

Shape broadcast_plan(const Step& s, const Shape& a, const Shape& b, const Shape* c, StepPlan& p) {
  const Shape none;
  const Shape& cc = c ? *c : none;
  const size_t r = std::max({a.size(), b.size(), cc.size()});
  if (r > 8) op_fail(s, "more than 8 dimensions");
  Shape out(r, 1);
  p.rank = int(r);
  int64_t sa = 1, sb = 1, sc = 1;
  auto dim = [&](const Shape& x, size_t i) { return i + x.size() >= r ? x[i + x.size() - r] : int64_t(1); };
  for (size_t i = r; i-- > 0;) {
    const int64_t da = dim(a, i), db = dim(b, i), dc = dim(cc, i);
    int64_t d = 1;
    for (int64_t x : {da, db, dc})
      if (x != 1) {
        if (d != 1 && d != x)
          op_fail(s, "shapes " + shape_str(a) + ", " + shape_str(b) + (c ? ", " + shape_str(cc) : "") +
                         " do not broadcast");
        d = x;
      }
    out[i] = p.dims[i] = d;
    p.sa[i] = da == 1 ? 0 : sa;
    p.sb[i] = db == 1 ? 0 : sb;
    p.sc[i] = dc == 1 ? 0 : sc;
    sa *= da;
    sb *= db;
    sc *= dc;
  }
  return out;
}

int64_t norm_axis(const Step& s, int64_t axis, int64_t r, const char* what) {
  if (axis < -r || axis >= r)
    op_fail(s, std::string(what) + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(r));
  return axis < 0 ? axis + r : axis;
}

std::vector<int64_t> known_ints(const Step& s, const InferIn& in, const char* what) {
  if (!in.shape) op_fail(s, std::string(what) + " is missing");
  if (in.elem != Elem::i64) op_fail(s, std::string(what) + " must be int64");
  if (!in.known)
    op_fail(s, std::string(what) + " must be computable before running (from constants and input shapes), "
                                    "not from input data");
  const int64_t n = prod(*in.shape, 0, in.shape->size());
  const int64_t* v = static_cast<const int64_t*>(in.known);
  return std::vector<int64_t>(v, v + n);
}

void infer_step(const Step& s, const std::vector<InferIn>& in, Shape& out, Shape& out2, StepPlan& p) {
  p = StepPlan{};
  if (!in.empty()) p.e0 = in[0].elem;
  if (in.size() > 1) p.e1 = in[1].elem;
  out.clear();
  out2.clear();
  switch (s.kind) {
    case StepKind::linear:
    case StepKind::gemm:
    case StepKind::matmul: infer_linear(s, in, out, p); break;
    case StepKind::binary:
    case StepKind::compare:
    case StepKind::where:
    case StepKind::act:
    case StepKind::unary:
    case StepKind::clip:
    case StepKind::cast: infer_elementwise(s, in, out, p); break;
    case StepKind::softmax:
    case StepKind::reduce: infer_reduce(s, in, out, p); break;
    case StepKind::gather:
    case StepKind::gather_elements:
    case StepKind::argmax:
    case StepKind::topk: infer_index(s, in, out, out2, p); break;
    case StepKind::gru:
    case StepKind::lstm: infer_rnn(s, in, out, out2, p); break;
    default: infer_shape_op(s, in, out, p); break;
  }
  p.n = checked_numel(out, s.op + " output");
  if (s.kind == StepKind::range || s.kind == StepKind::constant_of_shape || s.kind == StepKind::tile ||
      s.kind == StepKind::expand)
    check_expansion(s, p);
  if (s.out2 >= 0) p.n2 = checked_numel(out2, s.op + " output");
}

void run_step(const Step& s, const StepPlan& p, const void* const* in, void* out, void* out2, void* scratch,
              void* out3) {
  switch (s.kind) {
    case StepKind::linear:
    case StepKind::gemm:
    case StepKind::matmul: run_linear(s, p, in, out); break;
    case StepKind::binary:
    case StepKind::compare:
    case StepKind::where:
    case StepKind::act:
    case StepKind::unary:
    case StepKind::clip:
    case StepKind::cast: run_elementwise(s, p, in, out); break;
    case StepKind::softmax:
    case StepKind::reduce: run_reduce(s, p, in, out); break;
    case StepKind::gather:
    case StepKind::gather_elements:
    case StepKind::argmax:
    case StepKind::topk: run_index(s, p, in, out, out2, scratch); break;
    case StepKind::gru:
    case StepKind::lstm: run_rnn(s, p, in, out, out2, out3, scratch); break;
    default: run_shape_op(s, p, in, out); break;
  }
}

}  // namespace hepnn::rt
