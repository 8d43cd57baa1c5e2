// Model::load: decode, validate (opset, supported ops, defined inputs, no cycles), order the
// nodes topologically, turn them into Steps (build_step.cpp), fold steps whose inputs are all
// constants (fold.cpp), then fuse (fusion.cpp). A graph whose input shapes are all fixed is also
// planned once here, so inconsistent shapes are refused at load.
#include "runtime/graph.hpp"

#include <fstream>
#include <unordered_map>

#include "core/error.hpp"
#include "runtime/builder.hpp"
#include "runtime/fusion.hpp"
#include "runtime/onnx_model.hpp"
#include "runtime/session.hpp"

namespace hepnn::rt {

void load_fail(const std::string& what) { throw Error("[runtime] " + what); }

std::string node_label(const OnnxNode& n) {
  return n.op_type + (n.name.empty() ? "" : " node '" + n.name + "'");
}

Elem elem_of_tensor(const OnnxTensor& t) {
  if (t.data_type == kBool) return Elem::b8;
  return t.is_int ? Elem::i64 : Elem::f32;
}

int Builder::add_value(const std::string& name, Elem e) {
  if (name.empty()) load_fail("a value has an empty name");
  if (ids_.count(name)) load_fail("value '" + name + "' is defined more than once");
  const int id = int(m.values.size());
  m.values.push_back(Value{});
  m.values.back().name = name;
  m.values.back().elem = e;
  ids_[name] = id;
  return id;
}

int Builder::add_const(const std::string& name, const OnnxTensor& t) {
  const int id = add_value(name, elem_of_tensor(t));
  Value& v = m.values[id];
  v.is_const = true;
  v.shape = t.dims;
  if (v.elem == Elem::f32) v.data = t.floats;
  else if (v.elem == Elem::i64) v.ints = t.ints;
  else for (int64_t x : t.ints) v.bools.push_back(x != 0);
  return id;
}

int Builder::add_internal(std::vector<int64_t> shape, std::vector<float> data) {
  const int id = int(m.values.size());
  m.values.push_back(Value{});
  Value& v = m.values.back();
  v.name = "hepnn_internal_" + std::to_string(id);
  v.is_const = true;
  v.shape = std::move(shape);
  v.data = std::move(data);
  return id;
}

void require_arity(const OnnxNode& n, size_t lo, size_t hi, size_t outs) {
  if (n.inputs.size() < lo || n.inputs.size() > hi)
    load_fail(node_label(n) + " has " + std::to_string(n.inputs.size()) + " inputs, expected " +
              (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)));
  size_t used = 0;
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty()) used = i + 1;
  if (used != outs || n.outputs.empty() || n.outputs[0].empty())
    load_fail(node_label(n) + " has " + std::to_string(n.outputs.size()) + " outputs, expected " + std::to_string(outs));
  for (size_t i = 0; i < lo; ++i)
    if (n.inputs[i].empty()) load_fail(node_label(n) + ": required input " + std::to_string(i) + " is empty");
}

namespace {

OnnxTensor constant_value(const OnnxNode& n) {
  require_arity(n, 0, 0, 1);
  if (n.attributes.size() != 1) load_fail(node_label(n) + " needs exactly one value attribute");
  const OnnxAttribute& a = n.attributes[0];
  OnnxTensor t;
  if (a.name == "value" && a.type == kAttrTensor && a.t.size() == 1) {
    t = a.t[0];
  } else if (a.name == "value_float" && a.type == kAttrFloat) {
    t.data_type = kFloat;
    t.floats = {a.f};
  } else if (a.name == "value_floats" && a.type == kAttrFloats) {
    t.data_type = kFloat;
    t.floats = a.floats;
    t.dims = {int64_t(a.floats.size())};
  } else if (a.name == "value_int" && a.type == kAttrInt) {
    t.data_type = kInt64;
    t.is_int = true;
    t.ints = {a.i};
  } else if (a.name == "value_ints" && a.type == kAttrInts) {
    t.data_type = kInt64;
    t.is_int = true;
    t.ints = a.ints;
    t.dims = {int64_t(a.ints.size())};
  } else {
    load_fail(node_label(n) + ": unsupported value attribute '" + a.name + "'");
  }
  return t;
}

Elem input_elem(const OnnxValueInfo& vi) {
  switch (vi.elem_type) {
    case kFloat: return Elem::f32;
    case kInt64: return Elem::i64;
    case kBool: return Elem::b8;
    default:
      load_fail("input '" + vi.name + "' has element type " + std::to_string(vi.elem_type) +
                "; the runtime reads float32, int64 and bool inputs");
  }
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
  if (!f) load_fail("cannot open '" + path + "'");
  const std::streamoff size = f.tellg();
  if (size < 0) load_fail("cannot read '" + path + "'");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  f.seekg(0);
  if (size > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), size)) load_fail("cannot read '" + path + "'");
  return load(bytes.data(), bytes.size());
}

std::shared_ptr<const Model> Model::load(const uint8_t* data, size_t size) {
  OnnxModel om = parse_onnx(data, size);
  auto model = std::make_shared<Model>();
  Model& m = *model;
  m.ir_version = om.ir_version;
  m.opset = om.opset;
  if (om.opset < 0) load_fail("the model imports no default-domain opset");
  if (om.opset < 13 || om.opset > 21)
    load_fail("opset " + std::to_string(om.opset) + " is not supported (the runtime reads opsets 13 to 21)");

  // Check every op before building anything, so the first error names the unsupported op.
  for (const OnnxNode& n : om.nodes) {
    if (!n.domain.empty() && n.domain != "ai.onnx")
      load_fail("operator '" + n.op_type + "' of domain '" + n.domain + "' is not supported");
    if (!is_supported_op(n.op_type)) load_fail("operator '" + n.op_type + "' is not supported");
  }

  Builder b(m);
  for (const OnnxTensor& t : om.initializers) b.add_const(t.name, t);
  for (const OnnxValueInfo& vi : om.inputs) {
    if (b.id(vi.name) >= 0 && m.values[b.id(vi.name)].is_const) continue;  // IR < 4 lists initializers
    m.inputs.push_back(b.add_value(vi.name, input_elem(vi)));
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
      if (!i.empty() && b.id(i) < 0) load_fail(node_label(*n) + " reads '" + i + "', which nothing defines");
  for (const OnnxValueInfo& vi : om.outputs) {
    if (b.id(vi.name) < 0) load_fail("graph output '" + vi.name + "' is never computed");
    m.outputs.push_back(b.id(vi.name));
  }
  if (m.outputs.empty()) load_fail("the graph has no outputs");

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
  if (order.size() != nodes.size()) load_fail("the graph has a cycle");

  int64_t fold_budget = int64_t(1) << 28;  // bytes of constants that folding may create
  for (size_t k : order) {
    Step s = build_step(b, *nodes[k]);
    bool all_const = true;
    for (int v : s.in) all_const &= v < 0 || m.values[v].is_const;
    if (all_const && fold_constant_step(m, s, fold_budget)) continue;
    m.steps.push_back(std::move(s));
  }

  fuse_gelu(m);
  fuse_linear(m);

  // Fixed input shapes: plan once now, so inconsistent shapes are a load error naming the op.
  bool fixed = true;
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    fixed &= bool(m.input_has_shape[i]);
    for (int64_t d : m.input_dims[i]) fixed &= d >= 0;
  }
  if (fixed) {
    try {
      Session(model, 1).check_shapes(m.input_dims);
    } catch (const ValueError& e) {
      throw Error(e.what());
    }
  }
  return model;
}

}  // namespace hepnn::rt
