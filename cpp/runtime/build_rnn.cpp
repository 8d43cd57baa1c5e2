// ONNX GRU and LSTM nodes -> gru/lstm steps at load: arity, attributes and element types. The
// runtime implements the default activations only; everything else (other activations, clip,
// input_forget, peepholes) is refused here, naming the node, rather than computed wrongly.
#include <string>
#include <vector>

#include "runtime/builder.hpp"
#include "runtime/node_attrs.hpp"

namespace hepnn::rt {
namespace {

// A value the node does not name (an absent Y or Y_h): the step still writes it, nothing reads it.
int unnamed_output(Model& m) {
  const int id = int(m.values.size());
  m.values.push_back(Value{});
  m.values.back().name = "hepnn_internal_" + std::to_string(id);
  return id;
}

}  // namespace

void build_rnn(Builder& b, const OnnxNode& n, NodeAttrs& a, Step& s) {
  Model& m = b.m;
  const bool lstm = n.op_type == "LSTM";
  const std::string label = node_label(n);
  // Inputs X W R B sequence_lens initial_h (GRU), then initial_c P (LSTM); outputs Y Y_h [Y_c].
  const size_t max_in = lstm ? 8 : 6, max_out = lstm ? 3 : 2;
  if (n.inputs.size() < 3 || n.inputs.size() > max_in)
    load_fail(label + " has " + std::to_string(n.inputs.size()) + " inputs, expected 3 to " + std::to_string(max_in));
  static const char* const names[] = {"X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"};
  for (size_t i = 0; i < 3; ++i)
    if (n.inputs[i].empty()) load_fail(label + ": required input " + names[i] + " is empty");
  if (lstm && n.inputs.size() == 8 && !n.inputs[7].empty())
    load_fail(label + ": peephole weights (input P) are not supported");
  bool any_output = false;
  for (const std::string& o : n.outputs) any_output |= !o.empty();
  if (n.outputs.size() > max_out)
    load_fail(label + " has " + std::to_string(n.outputs.size()) + " outputs, expected 1 to " + std::to_string(max_out));
  if (!any_output) load_fail(label + " has no outputs");

  s.kind = lstm ? StepKind::lstm : StepKind::gru;
  s.elem = Elem::f32;
  if (a.has("hidden_size")) {
    s.hidden = a.get_int("hidden_size", 0);
    if (s.hidden < 1) load_fail(label + ": hidden_size " + std::to_string(s.hidden) + " is not positive");
  }
  const std::string dir = a.get_string("direction", "forward");
  if (dir == "bidirectional") s.directions = 2;
  else if (dir == "reverse") s.reverse = true;
  else if (dir != "forward") load_fail(label + ": direction '" + dir + "' is not forward, reverse or bidirectional");
  const int64_t layout = a.get_int("layout", 0);
  if (layout != 0 && layout != 1) load_fail(label + ": layout " + std::to_string(layout) + " is not 0 or 1");
  s.batch_major = layout == 1;
  if (lstm) {
    if (a.get_int("input_forget", 0) != 0) load_fail(label + ": input_forget is not supported");
  } else {
    s.linear_before_reset = a.get_int("linear_before_reset", 0) != 0;
  }
  if (a.has("clip")) {
    a.get_float("clip", 0.0f);
    load_fail(label + ": clip is not supported");
  }
  // NOTE: the default activations may be spelled out (one list per direction); any other list
  // changes the arithmetic, so it is refused.
  const std::vector<std::string> acts = a.get_strings("activations", {});
  const std::vector<std::string> defaults = lstm ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                                 : std::vector<std::string>{"Sigmoid", "Tanh"};
  bool default_acts = acts.empty() || acts.size() == defaults.size() * size_t(s.directions);
  for (size_t i = 0; default_acts && i < acts.size(); ++i) default_acts = acts[i] == defaults[i % defaults.size()];
  if (!default_acts) {
    std::string list;
    for (const std::string& x : acts) list += (list.empty() ? "" : ", ") + x;
    load_fail(label + ": activations [" + list + "] are not supported (only the defaults " +
              (lstm ? "Sigmoid, Tanh, Tanh" : "Sigmoid, Tanh") + " per direction)");
  }
  if (!a.get_floats("activation_alpha", {}).empty() || !a.get_floats("activation_beta", {}).empty())
    load_fail(label + ": activation_alpha/activation_beta are not supported (the default activations take none)");

  const size_t used_in = lstm ? 7 : 6;
  s.in.assign(used_in, -1);
  for (size_t i = 0; i < used_in && i < n.inputs.size(); ++i)
    if (!n.inputs[i].empty()) s.in[i] = b.id(n.inputs[i]);
  for (size_t i = 0; i < used_in; ++i) {
    if (s.in[i] < 0) continue;
    const Elem want = i == 4 ? Elem::i64 : Elem::f32;
    const Value& v = m.values[s.in[i]];
    if (v.elem != want)
      load_fail(label + ": " + names[i] + " '" + v.name + "' is " + elem_name(v.elem) + ", expected " +
                (i == 4 ? "int32 or int64" : "float32"));
  }
  int* outs[] = {&s.out, &s.out2, &s.out3};
  for (size_t i = 0; i < max_out; ++i) {
    *outs[i] = i < n.outputs.size() && !n.outputs[i].empty() ? b.id(n.outputs[i]) : unnamed_output(m);
    m.values[*outs[i]].elem = Elem::f32;
  }
}

}  // namespace hepnn::rt
