// ONNX node -> Step at load: arity, attributes (finish() refuses unread ones), element types of
// the inputs, and the element type of the outputs. Gemm/MatMul with constant weights become linear
// steps in linear_forward's layout. Independent of input shapes.
#include <initializer_list>
#include <map>
#include <set>

#include "core/error.hpp"
#include "runtime/builder.hpp"
#include "runtime/node_attrs.hpp"

namespace hepnn::rt {
namespace {

bool is_float_const(const Model& m, int v) { return v >= 0 && m.values[v].is_const && m.values[v].elem == Elem::f32; }

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Activation ops that the fused linear kernel and act_forward both implement.
bool activation_of(const OnnxNode& n, NodeAttrs& a, Act& act, double& alpha, float& scale) {
  const std::string& op = n.op_type;
  alpha = 0;
  scale = 1;
  if (op == "Relu") act = Act::relu;
  else if (op == "Sigmoid") act = Act::sigmoid;
  else if (op == "Tanh") act = Act::tanh;
  else if (op == "Softplus") act = Act::softplus;
  else if (op == "LeakyRelu") { act = Act::leaky_relu; alpha = a.get_float("alpha", 0.01f); }
  else if (op == "Elu") { act = Act::elu; alpha = a.get_float("alpha", 1.0f); }
  else if (op == "Selu") {
    // NOTE: the standard constants use the selu kernel (fusable into linear); other values run as
    // gamma * elu_alpha(x), the same function.
    const float al = a.get_float("alpha", 1.67326319217681884765625f);
    const float ga = a.get_float("gamma", 1.05070102214813232421875f);
    if (al == 1.67326319217681884765625f && ga == 1.05070102214813232421875f) {
      act = Act::selu;
    } else {
      act = Act::elu;
      alpha = al;
      scale = ga;
    }
  } else if (op == "Gelu") {
    const std::string approx = a.get_string("approximate", "none");
    if (approx == "none") act = Act::gelu_erf;
    else if (approx == "tanh") act = Act::gelu_tanh;
    else load_fail(node_label(n) + ": approximate='" + approx + "' is not 'none' or 'tanh'");
  } else {
    return false;
  }
  return true;
}

const std::set<std::string> kOps = {
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh",
    "Softplus", "Gelu", "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs", "Clip", "Where", "Equal", "Less", "Greater",
    "Not", "And", "Cast", "Softmax", "LogSoftmax", "Identity", "Dropout", "Flatten", "Reshape", "Constant",
    "ConstantOfShape", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Slice", "Gather", "GatherElements",
    "Expand", "Shape", "Range", "Tile", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ArgMax", "TopK",
    "GRU", "LSTM", "Mod"};

const std::map<std::string, UnOp>& unary_ops() {
  static const std::map<std::string, UnOp> ops = {{"Erf", UnOp::erf}, {"Exp", UnOp::exp}, {"Log", UnOp::log},
                                                  {"Sqrt", UnOp::sqrt}, {"Neg", UnOp::neg}, {"Abs", UnOp::abs},
                                                  {"Not", UnOp::logical_not}};
  return ops;
}

}  // namespace

bool is_supported_op(const std::string& op) { return kOps.count(op) > 0; }

Step build_step(Builder& b, const OnnxNode& n) {
  Model& m = b.m;
  Step s;
  s.op = n.op_type;
  const std::string& op = n.op_type;
  NodeAttrs a(n);
  auto input_id = [&](size_t i) { return i < n.inputs.size() && !n.inputs[i].empty() ? b.id(n.inputs[i]) : -1; };
  auto inputs = [&](size_t count) {
    s.in.clear();
    for (size_t i = 0; i < count; ++i) s.in.push_back(input_id(i));
  };
  auto elem = [&](size_t i) { return m.values[s.in[i]].elem; };
  // Input i must have one of the listed element types.
  auto want = [&](size_t i, std::initializer_list<Elem> ok, const char* what) {
    if (i >= s.in.size() || s.in[i] < 0) return;
    for (Elem e : ok)
      if (elem(i) == e) return;
    std::string list;
    for (Elem e : ok) list += (list.empty() ? "" : " or ") + std::string(elem_name(e));
    load_fail(node_label(n) + ": " + what + " '" + m.values[s.in[i]].name + "' is " + elem_name(elem(i)) + ", expected " + list);
  };
  auto same = [&](size_t i, size_t j) {
    if (i < s.in.size() && j < s.in.size() && s.in[i] >= 0 && s.in[j] >= 0 && elem(i) != elem(j))
      load_fail(node_label(n) + ": inputs '" + m.values[s.in[i]].name + "' (" + elem_name(elem(i)) + ") and '" +
                m.values[s.in[j]].name + "' (" + elem_name(elem(j)) + ") differ in element type");
  };
  const auto F = Elem::f32, I = Elem::i64, B = Elem::b8;

  if (op == "Gemm") {
    require_arity(n, 2, 3, 1);
    s.g_alpha = a.get_float("alpha", 1.0f);
    s.g_beta = a.get_float("beta", 1.0f);
    s.trans_a = a.get_int("transA", 0) != 0;
    s.trans_b = a.get_int("transB", 0) != 0;
    s.kind = StepKind::gemm;
    inputs(3);
    for (size_t i = 0; i < 3; ++i) want(i, {F}, "input");
    const int wb = s.in[1], wc = s.in[2];
    if (is_float_const(m, wb) && m.values[wb].shape.size() != 2) load_fail(node_label(n) + ": B must be 2-D");
    if (is_float_const(m, wb) && !s.trans_a && !m.values[s.in[0]].is_const) {
      const Value& Bv = m.values[wb];
      const int64_t O = s.trans_b ? Bv.shape[0] : Bv.shape[1], In = s.trans_b ? Bv.shape[1] : Bv.shape[0];
      const bool c_ok = wc < 0 || (is_float_const(m, wc) && m.values[wc].shape.size() <= 2 &&
                                   (numel(m.values[wc].shape) == 1 || numel(m.values[wc].shape) == O) &&
                                   (m.values[wc].shape.size() < 2 || m.values[wc].shape[0] == 1));
      if (c_ok) {
        // PyTorch exports transB=1: B is already out x in, linear's layout; else transpose once.
        std::vector<float> W(size_t(O * In));
        for (int64_t o = 0; o < O; ++o)
          for (int64_t i = 0; i < In; ++i)
            W[o * In + i] = s.g_alpha * (s.trans_b ? Bv.data[o * In + i] : Bv.data[i * O + o]);
        s.kind = StepKind::linear;
        s.rank2_input = true;
        s.in = {s.in[0], b.add_internal({O, In}, std::move(W)), -1};
        if (wc >= 0 && s.g_beta != 0.0f) {
          const Value& C = m.values[wc];
          std::vector<float> bias(static_cast<size_t>(O));
          for (int64_t o = 0; o < O; ++o) bias[o] = s.g_beta * C.data[C.data.size() == 1 ? 0 : o];
          s.in[2] = b.add_internal({O}, std::move(bias));
        }
      }
    }
  } else if (op == "MatMul") {
    require_arity(n, 2, 2, 1);
    s.kind = StepKind::matmul;
    inputs(2);
    want(0, {F}, "input");
    want(1, {F}, "input");
    if (is_float_const(m, s.in[1]) && m.values[s.in[1]].shape.size() == 2 && !m.values[s.in[0]].is_const) {
      const Value& Bv = m.values[s.in[1]];
      const int64_t In = Bv.shape[0], O = Bv.shape[1];
      std::vector<float> W(size_t(O * In));
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < In; ++i) W[o * In + i] = Bv.data[i * O + o];
      s.kind = StepKind::linear;
      s.in = {s.in[0], b.add_internal({O, In}, std::move(W)), -1};
    }
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow") {
    require_arity(n, 2, 2, 1);
    s.kind = StepKind::binary;
    s.bin = op == "Add" ? BinOp::add : op == "Sub" ? BinOp::sub : op == "Mul" ? BinOp::mul : op == "Div" ? BinOp::div : BinOp::pow;
    inputs(2);
    want(0, {F, I}, "input");
    want(1, {F, I}, "input");
    if (op != "Pow") same(0, 1);
    s.elem = elem(0);
  } else if (op == "Equal" || op == "Less" || op == "Greater" || op == "And") {
    require_arity(n, 2, 2, 1);
    s.kind = StepKind::compare;
    s.bin = op == "Equal" ? BinOp::equal : op == "Less" ? BinOp::less : op == "Greater" ? BinOp::greater : BinOp::logical_and;
    inputs(2);
    if (op == "And") want(0, {B}, "input");
    else if (op == "Equal") want(0, {F, I, B}, "input");
    else want(0, {F, I}, "input");
    same(0, 1);
    s.elem = B;
  } else if (op == "Where") {
    require_arity(n, 3, 3, 1);
    s.kind = StepKind::where;
    inputs(3);
    want(0, {B}, "condition");
    same(1, 2);
    s.elem = elem(1);
  } else if (unary_ops().count(op)) {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::unary;
    s.un = unary_ops().at(op);
    inputs(1);
    if (op == "Not") want(0, {B}, "input");
    else if (op == "Neg" || op == "Abs") want(0, {F, I}, "input");
    else want(0, {F}, "input");
    s.elem = elem(0);
  } else if (op == "Clip") {
    require_arity(n, 1, 3, 1);
    s.kind = StepKind::clip;
    inputs(3);
    want(0, {F, I}, "input");
    same(0, 1);
    same(0, 2);
    s.elem = elem(0);
  } else if (op == "Cast") {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::cast;
    inputs(1);
    const int64_t to = a.get_int("to", -1);
    a.get_int("saturate", 1);  // opset 19: concerns float8 targets only
    if (to == kFloat) s.elem = F;
    else if (to == kInt64) s.elem = I;
    else if (to == kBool) s.elem = B;
    else load_fail(node_label(n) + ": cast to element type " + std::to_string(to) + " is not supported (FLOAT, INT64, BOOL)");
  } else if (op == "Softmax" || op == "LogSoftmax") {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::softmax;
    s.log = op == "LogSoftmax";
    s.axis = a.get_int("axis", -1);
    inputs(1);
    want(0, {F}, "input");
  } else if (op == "Identity") {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::copy;
    inputs(1);
    s.elem = elem(0);
  } else if (op == "Dropout") {
    require_arity(n, 1, 3, 1);
    a.get_int("seed", 0);
    const int tm = input_id(2);
    if (tm >= 0) {
      const Value& v = m.values[tm];
      const bool off = v.is_const && ((v.elem == B && v.bools.size() == 1 && v.bools[0] == 0) ||
                                      (v.elem == I && v.ints.size() == 1 && v.ints[0] == 0) ||
                                      (v.elem == F && v.data.size() == 1 && v.data[0] == 0.0f));
      if (!off) load_fail(node_label(n) + ": training_mode must be a constant false");
    }
    s.kind = StepKind::copy;
    inputs(1);
    s.elem = elem(0);
  } else if (op == "Flatten") {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::flatten;
    s.axis = a.get_int("axis", 1);
    inputs(1);
    s.elem = elem(0);
  } else if (op == "Reshape") {
    require_arity(n, 2, 2, 1);
    s.kind = StepKind::reshape;
    s.allowzero = a.get_int("allowzero", 0) != 0;
    inputs(2);
    want(1, {I}, "the shape (a constant or computed from shapes)");
    s.elem = elem(0);
  } else if (op == "Squeeze" || op == "Unsqueeze") {
    require_arity(n, op == "Squeeze" ? 1 : 2, 2, 1);
    s.kind = op == "Squeeze" ? StepKind::squeeze : StepKind::unsqueeze;
    inputs(2);
    want(1, {I}, "axes");
    s.elem = elem(0);
  } else if (op == "Transpose") {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::transpose;
    s.ints = a.get_ints("perm", {});
    inputs(1);
    s.elem = elem(0);
  } else if (op == "Concat") {
    if (n.inputs.empty()) load_fail(node_label(n) + " has no inputs");
    require_arity(n, n.inputs.size(), n.inputs.size(), 1);
    s.kind = StepKind::concat;
    if (!a.has("axis")) load_fail(node_label(n) + ": the axis attribute is required");
    s.axis = a.get_int("axis", 0);
    inputs(n.inputs.size());
    for (size_t i = 1; i < s.in.size(); ++i) same(0, i);
    s.elem = elem(0);
  } else if (op == "Slice") {
    require_arity(n, 3, 5, 1);
    s.kind = StepKind::slice;
    inputs(5);
    for (size_t i = 1; i < 5; ++i) want(i, {I}, "input");
    s.elem = elem(0);
  } else if (op == "Gather" || op == "GatherElements") {
    require_arity(n, 2, 2, 1);
    s.kind = op == "Gather" ? StepKind::gather : StepKind::gather_elements;
    s.axis = a.get_int("axis", 0);
    inputs(2);
    want(1, {I}, "indices");
    s.elem = elem(0);
  } else if (op == "Expand" || op == "Tile") {
    require_arity(n, 2, 2, 1);
    s.kind = op == "Expand" ? StepKind::expand : StepKind::tile;
    inputs(2);
    want(1, {I}, op == "Expand" ? "the shape" : "repeats");
    s.elem = elem(0);
  } else if (op == "Shape") {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::shape;
    s.lo = a.get_int("start", 0);
    s.hi = a.get_int("end", INT64_MAX);
    inputs(1);
    s.elem = I;
  } else if (op == "ConstantOfShape") {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::constant_of_shape;
    inputs(1);
    want(0, {I}, "the shape");
    s.elem = F;
    if (const OnnxTensor* t = a.get_tensor("value")) {
      if (t->floats.size() + t->ints.size() != 1) load_fail(node_label(n) + ": value must hold one element");
      if (t->data_type != kFloat && t->data_type != kInt64 && t->data_type != kBool)
        load_fail(node_label(n) + ": value of element type " + std::to_string(t->data_type) + " is not supported (FLOAT, INT64, BOOL)");
      s.elem = elem_of_tensor(*t);
      if (s.elem == F) s.fill_f = t->floats[0];
      else s.fill_i = t->ints[0];
    }
  } else if (op == "Range") {
    require_arity(n, 3, 3, 1);
    s.kind = StepKind::range;
    inputs(3);
    want(0, {F, I}, "start");
    same(0, 1);
    same(0, 2);
    s.elem = elem(0);
  } else if (op == "ReduceSum" || op == "ReduceMean" || op == "ReduceMax" || op == "ReduceMin") {
    require_arity(n, 1, 2, 1);
    s.kind = StepKind::reduce;
    s.red = op == "ReduceSum" ? RedOp::sum : op == "ReduceMean" ? RedOp::mean : op == "ReduceMax" ? RedOp::max : RedOp::min;
    s.keepdims = a.get_int("keepdims", 1) != 0;
    s.flag = a.get_int("noop_with_empty_axes", 0) != 0;
    // Axes: an attribute for ReduceMean/Max/Min before opset 18, an input otherwise.
    s.has_axes = a.has("axes");
    s.ints = a.get_ints("axes", {});
    inputs(2);
    if (s.has_axes && s.in[1] >= 0) load_fail(node_label(n) + ": axes given both as attribute and input");
    want(1, {I}, "axes");
    if (s.red == RedOp::max || s.red == RedOp::min) want(0, {F, I, B}, "input");
    else want(0, {F, I}, "input");
    s.elem = elem(0);
  } else if (op == "ArgMax") {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::argmax;
    s.axis = a.get_int("axis", 0);
    s.keepdims = a.get_int("keepdims", 1) != 0;
    s.flag = a.get_int("select_last_index", 0) != 0;
    inputs(1);
    want(0, {F, I}, "input");
    s.elem = I;
  } else if (op == "TopK") {
    require_arity(n, 2, 2, 2);
    s.kind = StepKind::topk;
    s.axis = a.get_int("axis", -1);
    s.flag = a.get_int("largest", 1) != 0;
    a.get_int("sorted", 1);  // NOTE: results are always sorted, which sorted=0 allows
    inputs(2);
    want(0, {F, I}, "input");
    want(1, {I}, "K");
    s.elem = elem(0);
    s.out2 = b.id(n.outputs[1]);
    m.values[s.out2].elem = I;
  } else if (op == "Mod") {
    require_arity(n, 2, 2, 1);
    s.kind = StepKind::binary;
    s.bin = BinOp::mod;
    s.flag = a.get_int("fmod", 0) != 0;  // 0: the remainder takes the divisor's sign, 1: the dividend's
    inputs(2);
    want(0, {F, I}, "input");
    same(0, 1);
    s.elem = elem(0);
  } else if (op == "GRU" || op == "LSTM") {
    build_rnn(b, n, a, s);
    a.finish();
    return s;
  } else if (activation_of(n, a, s.act, s.alpha, s.scale)) {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::act;
    inputs(1);
    want(0, {F}, "input");
  } else {
    load_fail("operator '" + op + "' is not supported");
  }
  a.finish();
  if (s.kind == StepKind::linear || s.kind == StepKind::gemm || s.kind == StepKind::matmul) s.elem = F;
  s.out = b.id(n.outputs[0]);
  m.values[s.out].elem = s.elem;
  return s;
}

}  // namespace hepnn::rt
