// Load-time construction of a Model (graph.cpp): the value table, the node -> Step translation
// with its element-type checks (build_step.cpp) and load-time constant folding (fold.cpp).
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/graph.hpp"
#include "runtime/onnx_model.hpp"

namespace hepnn::rt {

[[noreturn]] void load_fail(const std::string& what);
std::string node_label(const OnnxNode& n);
void require_arity(const OnnxNode& n, size_t lo, size_t hi, size_t outs);
Elem elem_of_tensor(const OnnxTensor& t);

class Builder {
 public:
  explicit Builder(Model& m) : m(m) {}

  int add_value(const std::string& name, Elem e = Elem::f32);
  int add_const(const std::string& name, const OnnxTensor& t);
  // A float constant made at load (transposed or scaled weights, biases); never collides.
  int add_internal(std::vector<int64_t> shape, std::vector<float> data);
  int id(const std::string& name) const {
    auto it = ids_.find(name);
    return it == ids_.end() ? -1 : it->second;
  }

  Model& m;

 private:
  std::unordered_map<std::string, int> ids_;
};

// The op types the runtime reads (load refuses any other before building anything).
bool is_supported_op(const std::string& op);
// Translates one node into a Step, checking arity, attributes and input element types; sets the
// element type of its output values.
Step build_step(Builder& b, const OnnxNode& n);
// Evaluates a step whose inputs are all constants, turning its outputs into constants. Returns
// false (the step then stays) when the result would exceed the folding budget.
bool fold_constant_step(Model& m, const Step& s, int64_t& budget_bytes);

class NodeAttrs;
// GRU and LSTM nodes (build_rnn.cpp): fills s, its outputs included (absent ones become unnamed
// values).
void build_rnn(Builder& b, const OnnxNode& n, NodeAttrs& a, Step& s);

}  // namespace hepnn::rt
