// Model::load: decode, validate (opset, supported ops and attributes, defined inputs, no cycles),
// order the nodes topologically and turn them into Steps (Gemm/MatMul with constant weights become
// linear steps in linear_forward's layout); fusion.cpp then merges steps. Independent of input shapes.
#include "runtime/graph.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>

#include "core/error.hpp"
#include "runtime/fusion.hpp"
#include "runtime/node_attrs.hpp"
#include "runtime/onnx_model.hpp"

namespace hepnn::rt {
namespace {

[[noreturn]] void fail(const std::string& what) { throw Error("[runtime] " + what); }

std::string node_label(const OnnxNode& n) {
  return n.op_type + (n.name.empty() ? "" : " node '" + n.name + "'");
}

class Builder {
 public:
  explicit Builder(Model& m) : m_(m) {}

  int add_value(const std::string& name) {
    if (name.empty()) fail("a value has an empty name");
    if (ids_.count(name)) fail("value '" + name + "' is defined more than once");
    const int id = int(m_.values.size());
    m_.values.push_back(Value{});
    m_.values.back().name = name;
    ids_[name] = id;
    return id;
  }

  int add_const(const std::string& name, const OnnxTensor& t) {
    const int id = add_value(name);
    Value& v = m_.values[id];
    v.is_const = true;
    v.is_int = t.is_int;
    v.shape = t.dims;
    v.data = t.floats;
    v.ints = t.ints;
    return id;
  }

  // A constant made at load (transposed or scaled weights, expanded biases); never collides.
  int add_internal(std::vector<int64_t> shape, std::vector<float> data) {
    const int id = int(m_.values.size());
    m_.values.push_back(Value{});
    Value& v = m_.values.back();
    v.name = "hepnn_internal_" + std::to_string(id);
    v.is_const = true;
    v.shape = std::move(shape);
    v.data = std::move(data);
    return id;
  }

  int id(const std::string& name) const {
    auto it = ids_.find(name);
    return it == ids_.end() ? -1 : it->second;
  }

 private:
  Model& m_;
  std::unordered_map<std::string, int> ids_;
};

bool is_float_const(const Model& m, int v) { return v >= 0 && m.values[v].is_const && !m.values[v].is_int; }

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Activation ops that the fused linear kernel and act_forward both implement.
bool activation_of(const OnnxNode& n, Act& act, double& alpha, float& scale) {
  NodeAttrs a(n);
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
    else fail(node_label(n) + ": approximate='" + approx + "' is not 'none' or 'tanh'");
  } else {
    return false;
  }
  a.finish();
  return true;
}

const std::set<std::string>& supported_ops() {
  static const std::set<std::string> ops = {
      "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid",
      "Tanh", "Softplus", "Gelu", "Erf", "Softmax", "LogSoftmax", "Identity", "Dropout", "Flatten",
      "Reshape", "Constant"};
  return ops;
}

void require_arity(const OnnxNode& n, size_t lo, size_t hi, size_t outs) {
  if (n.inputs.size() < lo || n.inputs.size() > hi)
    fail(node_label(n) + " has " + std::to_string(n.inputs.size()) + " inputs, expected " +
         (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)));
  size_t used = 0;
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty()) used = i + 1;
  if (used != outs || n.outputs.empty() || n.outputs[0].empty())
    fail(node_label(n) + " has " + std::to_string(n.outputs.size()) + " outputs, expected " + std::to_string(outs));
  for (size_t i = 0; i < lo; ++i)
    if (n.inputs[i].empty()) fail(node_label(n) + ": required input " + std::to_string(i) + " is empty");
}

OnnxTensor constant_value(const OnnxNode& n) {
  require_arity(n, 0, 0, 1);
  if (n.attributes.size() != 1) fail(node_label(n) + " needs exactly one value attribute");
  const OnnxAttribute& a = n.attributes[0];
  OnnxTensor t;
  if (a.name == "value" && a.type == kAttrTensor && a.t.size() == 1) {
    t = a.t[0];
  } else if (a.name == "value_float" && a.type == kAttrFloat) {
    t.floats = {a.f};
  } else if (a.name == "value_floats" && a.type == kAttrFloats) {
    t.floats = a.floats;
    t.dims = {int64_t(a.floats.size())};
  } else if (a.name == "value_int" && a.type == kAttrInt) {
    t.is_int = true;
    t.ints = {a.i};
  } else if (a.name == "value_ints" && a.type == kAttrInts) {
    t.is_int = true;
    t.ints = a.ints;
    t.dims = {int64_t(a.ints.size())};
  } else {
    fail(node_label(n) + ": unsupported value attribute '" + a.name + "'");
  }
  return t;
}

}  // namespace

std::vector<std::string> Model::input_names() const {
  std::vector<std::string> r;
  for (int v : inputs) r.push_back(values[v].name);
  return r;
}
std::vector<std::string> Model::output_names() const {
  std::vector<std::string> r;
  for (int v : outputs) r.push_back(values[v].name);
  return r;
}

std::shared_ptr<const Model> Model::load_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail("cannot open '" + path + "'");
  const std::streamoff size = f.tellg();
  if (size < 0) fail("cannot read '" + path + "'");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), size)) fail("cannot read '" + path + "'");
  return load(bytes.data(), bytes.size());
}

std::shared_ptr<const Model> Model::load(const uint8_t* data, size_t size) {
  OnnxModel om = parse_onnx(data, size);
  auto model = std::make_shared<Model>();
  Model& m = *model;
  m.ir_version = om.ir_version;
  m.opset = om.opset;
  if (om.opset < 0) fail("the model imports no default-domain opset");
  if (om.opset < 13 || om.opset > 21)
    fail("opset " + std::to_string(om.opset) + " is not supported (the runtime reads opsets 13 to 21)");

  // Check every op before building anything, so the first error names the unsupported op.
  for (const OnnxNode& n : om.nodes) {
    if (!n.domain.empty() && n.domain != "ai.onnx")
      fail("operator '" + n.op_type + "' of domain '" + n.domain + "' is not supported");
    if (!supported_ops().count(n.op_type)) fail("operator '" + n.op_type + "' is not supported");
  }

  Builder b(m);
  for (const OnnxTensor& t : om.initializers) b.add_const(t.name, t);
  for (const OnnxValueInfo& vi : om.inputs) {
    if (b.id(vi.name) >= 0 && m.values[b.id(vi.name)].is_const) continue;  // IR < 4 lists initializers
    if (vi.elem_type != kFloat)
      fail("input '" + vi.name + "' has element type " + std::to_string(vi.elem_type) + "; the runtime runs float32 graphs");
    m.inputs.push_back(b.add_value(vi.name));
    m.input_dims.push_back(vi.dims);
    m.input_has_shape.push_back(vi.has_shape);
  }

  // Constant nodes become constants now; every other output becomes a value.
  std::vector<const OnnxNode*> nodes;
  for (const OnnxNode& n : om.nodes) {
    if (n.op_type == "Constant") {
      OnnxTensor t = constant_value(n);
      b.add_const(n.outputs[0], t);
      continue;
    }
    for (const std::string& o : n.outputs)
      if (!o.empty()) b.add_value(o);
    nodes.push_back(&n);
  }
  for (const OnnxNode* n : nodes)
    for (const std::string& i : n->inputs)
      if (!i.empty() && b.id(i) < 0) fail(node_label(*n) + " reads '" + i + "', which nothing defines");
  for (const OnnxValueInfo& vi : om.outputs) {
    if (b.id(vi.name) < 0) fail("graph output '" + vi.name + "' is never computed");
    if (m.values[b.id(vi.name)].is_int) fail("graph output '" + vi.name + "' is an integer tensor; outputs are float32");
    m.outputs.push_back(b.id(vi.name));
  }
  if (m.outputs.empty()) fail("the graph has no outputs");

  // Kahn's algorithm over node -> node edges; leftovers form a cycle.
  std::unordered_map<int, size_t> producer;
  for (size_t k = 0; k < nodes.size(); ++k)
    for (const std::string& o : nodes[k]->outputs)
      if (!o.empty()) producer[b.id(o)] = k;
  std::vector<int> indegree(nodes.size(), 0);
  std::vector<std::vector<size_t>> users(nodes.size());
  for (size_t k = 0; k < nodes.size(); ++k)
    for (const std::string& i : nodes[k]->inputs) {
      if (i.empty()) continue;
      auto it = producer.find(b.id(i));
      if (it == producer.end()) continue;
      users[it->second].push_back(k);
      ++indegree[k];
    }
  std::vector<size_t> order, ready;
  for (size_t k = 0; k < nodes.size(); ++k)
    if (!indegree[k]) ready.push_back(k);
  while (!ready.empty()) {
    const size_t k = ready.back();
    ready.pop_back();
    order.push_back(k);
    for (size_t u : users[k])
      if (--indegree[u] == 0) ready.push_back(u);
  }
  if (order.size() != nodes.size()) fail("the graph has a cycle");

  auto input_id = [&](const OnnxNode& n, size_t i) {
    return i < n.inputs.size() && !n.inputs[i].empty() ? b.id(n.inputs[i]) : -1;
  };
  for (size_t k : order) {
    const OnnxNode& n = *nodes[k];
    Step s;
    s.op = n.op_type;
    const std::string& op = n.op_type;
    NodeAttrs a(n);
    if (op == "Gemm") {
      require_arity(n, 2, 3, 1);
      s.g_alpha = a.get_float("alpha", 1.0f);
      s.g_beta = a.get_float("beta", 1.0f);
      s.trans_a = a.get_int("transA", 0) != 0;
      s.trans_b = a.get_int("transB", 0) != 0;
      s.kind = StepKind::gemm;
      s.in = {input_id(n, 0), input_id(n, 1), input_id(n, 2)};
      const int wb = s.in[1], wc = s.in[2];
      if (is_float_const(m, wb) && m.values[wb].shape.size() != 2) fail(node_label(n) + ": B must be 2-D");
      if (is_float_const(m, wb) && !s.trans_a) {
        const Value& B = m.values[wb];
        const int64_t O = s.trans_b ? B.shape[0] : B.shape[1], I = s.trans_b ? B.shape[1] : B.shape[0];
        const bool c_ok = wc < 0 || (is_float_const(m, wc) && m.values[wc].shape.size() <= 2 &&
                                     (numel(m.values[wc].shape) == 1 || numel(m.values[wc].shape) == O) &&
                                     (m.values[wc].shape.size() < 2 || m.values[wc].shape[0] == 1));
        if (c_ok) {
          // PyTorch exports transB=1: B is already out x in, linear's layout; else transpose once.
          std::vector<float> W(size_t(O * I));
          for (int64_t o = 0; o < O; ++o)
            for (int64_t i = 0; i < I; ++i)
              W[o * I + i] = s.g_alpha * (s.trans_b ? B.data[o * I + i] : B.data[i * O + o]);
          s.kind = StepKind::linear;
          s.rank2_input = true;
          s.in = {s.in[0], b.add_internal({O, I}, std::move(W)), -1};
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
      s.in = {input_id(n, 0), input_id(n, 1)};
      if (is_float_const(m, s.in[1]) && m.values[s.in[1]].shape.size() == 2) {
        const Value& B = m.values[s.in[1]];
        const int64_t I = B.shape[0], O = B.shape[1];
        std::vector<float> W(size_t(O * I));
        for (int64_t o = 0; o < O; ++o)
          for (int64_t i = 0; i < I; ++i) W[o * I + i] = B.data[i * O + o];
        s.kind = StepKind::linear;
        s.in = {s.in[0], b.add_internal({O, I}, std::move(W)), -1};
      }
    } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
      require_arity(n, 2, 2, 1);
      s.kind = StepKind::binary;
      s.bin = op == "Add" ? BinOp::add : op == "Sub" ? BinOp::sub : op == "Mul" ? BinOp::mul : BinOp::div;
      s.in = {input_id(n, 0), input_id(n, 1)};
    } else if (op == "Erf") {
      require_arity(n, 1, 1, 1);
      s.kind = StepKind::erf;
      s.in = {input_id(n, 0)};
    } else if (op == "Softmax" || op == "LogSoftmax") {
      require_arity(n, 1, 1, 1);
      s.kind = StepKind::softmax;
      s.log = op == "LogSoftmax";
      s.axis = a.get_int("axis", -1);
      s.in = {input_id(n, 0)};
    } else if (op == "Identity") {
      require_arity(n, 1, 1, 1);
      s.kind = StepKind::copy;
      s.in = {input_id(n, 0)};
    } else if (op == "Dropout") {
      require_arity(n, 1, 3, 1);
      a.get_int("seed", 0);
      const int tm = input_id(n, 2);
      if (tm >= 0) {
        const Value& v = m.values[tm];
        const bool off = v.is_const && ((v.is_int && v.ints.size() == 1 && v.ints[0] == 0) ||
                                        (!v.is_int && v.data.size() == 1 && v.data[0] == 0.0f));
        if (!off) fail(node_label(n) + ": training_mode must be a constant false");
      }
      s.kind = StepKind::copy;
      s.in = {input_id(n, 0)};
    } else if (op == "Flatten") {
      require_arity(n, 1, 1, 1);
      s.kind = StepKind::flatten;
      s.axis = a.get_int("axis", 1);
      s.in = {input_id(n, 0)};
    } else if (op == "Reshape") {
      require_arity(n, 2, 2, 1);
      s.kind = StepKind::reshape;
      s.allowzero = a.get_int("allowzero", 0) != 0;
      const int sh = input_id(n, 1);
      if (!m.values[sh].is_const || !m.values[sh].is_int || m.values[sh].shape.size() != 1)
        fail(node_label(n) + ": the shape must be a constant 1-D int64 tensor");
      s.shape_spec = m.values[sh].ints;
      if (s.shape_spec.size() > 8) fail(node_label(n) + ": more than 8 dimensions");
      int minus_one = 0;
      for (int64_t d : s.shape_spec) {
        if (d < -1 || d > kMaxElements) fail(node_label(n) + ": invalid target dimension " + std::to_string(d));
        minus_one += d == -1;
      }
      if (minus_one > 1) fail(node_label(n) + ": more than one -1 in the target shape");
      s.in = {input_id(n, 0)};
    } else if (activation_of(n, s.act, s.alpha, s.scale)) {
      require_arity(n, 1, 1, 1);
      s.kind = StepKind::act;
      s.in = {input_id(n, 0)};
    } else {
      fail("operator '" + op + "' is not supported");
    }
    if (s.kind != StepKind::act) a.finish();
    for (int v : s.in)
      if (v >= 0 && m.values[v].is_int)
        fail(node_label(n) + " reads the integer tensor '" + m.values[v].name + "' as float data");
    s.out = b.id(n.outputs[0]);
    m.steps.push_back(std::move(s));
  }

  fuse_gelu(m);
  fuse_linear(m);
  return model;
}

}  // namespace hepnn::rt
