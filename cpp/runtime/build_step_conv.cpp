// ONNX node -> Step at load for Conv, ConvTranspose, the pooling ops, BatchNormalization and
// LayerNormalization: arity, attribute values (lengths, ranges, combinations the kernels cannot
// run), element types, and constant weight shapes. Everything refused names the node and the
// attribute; what depends on input shapes is checked again at plan time (ops_conv.cpp).
#include <algorithm>
#include <string>

#include "runtime/builder.hpp"
#include "runtime/node_attrs.hpp"

namespace hepnn::rt {
namespace {

// Kernel extents, strides, dilations and pads beyond this are refused as absurd: no physics
// model comes near, and the products of such values would overflow the geometry arithmetic.
constexpr int64_t kMaxGeometry = int64_t(1) << 16;

std::string ints_str(const std::vector<int64_t>& v) {
  std::string r = "[";
  for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + std::to_string(v[i]);
  return r + "]";
}

// Reads the geometry attributes common to Conv, ConvTranspose and the windowed pools and checks
// each one's length (spatial rank 1 or 2, pads twice that) and range.
void read_geometry(const OnnxNode& n, NodeAttrs& a, ConvAttrs& c, bool dilations) {
  const std::string who = node_label(n);
  c.kernel = a.get_ints("kernel_shape", {});
  c.strides = a.get_ints("strides", {});
  c.pads = a.get_ints("pads", {});
  if (dilations) c.dilations = a.get_ints("dilations", {});
  const std::string ap = a.get_string("auto_pad", "NOTSET");
  if (ap == "NOTSET") c.auto_pad = AutoPad::notset;
  else if (ap == "VALID") c.auto_pad = AutoPad::valid;
  else if (ap == "SAME_UPPER") c.auto_pad = AutoPad::same_upper;
  else if (ap == "SAME_LOWER") c.auto_pad = AutoPad::same_lower;
  else load_fail(who + ": auto_pad '" + ap + "' is not NOTSET, VALID, SAME_UPPER or SAME_LOWER");
  if (c.auto_pad != AutoPad::notset && !c.pads.empty())
    load_fail(who + ": pads and auto_pad '" + ap + "' are given together");
  size_t rank = 0;
  auto check = [&](const char* name, const std::vector<int64_t>& v, size_t per_axis, int64_t lo) {
    if (v.empty()) return;
    if (v.size() % per_axis || v.size() / per_axis > 2)
      load_fail(who + ": " + name + " " + ints_str(v) +
                " is not for a 1-d or 2-d input (3-d and higher are not supported)");
    if (rank && v.size() / per_axis != rank)
      load_fail(who + ": " + name + " " + ints_str(v) + " does not match the other attributes' spatial rank " +
                std::to_string(rank));
    rank = v.size() / per_axis;
    for (int64_t x : v)
      if (x < lo || x > kMaxGeometry)
        load_fail(who + ": " + name + " " + ints_str(v) + " must lie in [" + std::to_string(lo) + ", " +
                  std::to_string(kMaxGeometry) + "]");
  };
  check("kernel_shape", c.kernel, 1, 1);
  check("strides", c.strides, 1, 1);
  check("dilations", c.dilations, 1, 1);
  check("pads", c.pads, 2, 0);
}

bool is_f32(const Model& m, int v) { return v < 0 || m.values[v].elem == Elem::f32; }

void want_float(const Model& m, const OnnxNode& n, const Step& s) {
  for (int v : s.in)
    if (!is_f32(m, v))
      load_fail(node_label(n) + ": input '" + m.values[v].name + "' is " + elem_name(m.values[v].elem) +
                ", expected float32");
}

// A constant weight's rank and extents against the attributes, so a mismatched file fails at load.
void check_const_weight(const Model& m, const OnnxNode& n, const Step& s, bool transpose) {
  const int w = s.in[1];
  const std::string who = node_label(n);
  if (!m.values[w].is_const) return;
  const std::vector<int64_t>& ws = m.values[w].shape;
  const ConvAttrs& c = s.conv;
  if (ws.size() < 3 || ws.size() > 4)
    load_fail(who + ": weight has shape " + ints_str(ws) + ", expected 3-d or 4-d (1-d or 2-d convolution)");
  if (!c.kernel.empty() &&
      (c.kernel.size() != ws.size() - 2 || !std::equal(c.kernel.begin(), c.kernel.end(), ws.begin() + 2)))
    load_fail(who + ": kernel_shape " + ints_str(c.kernel) + " does not match the weight's shape " + ints_str(ws));
  if (ws[0] < 1 || (!transpose && ws[0] % c.group))
    load_fail(who + ": weight has " + std::to_string(ws[0]) + " output channels, not a positive multiple of group " +
              std::to_string(c.group));
  for (size_t d = 2; d < ws.size(); ++d)
    if (ws[d] < 1 || ws[d] > kMaxGeometry)
      load_fail(who + ": weight has shape " + ints_str(ws) + ": kernel extent out of range");
  const int bias = s.in.size() > 2 ? s.in[2] : -1;
  const int64_t out_ch = transpose ? ws[1] * c.group : ws[0];
  if (bias >= 0 && m.values[bias].is_const &&
      (m.values[bias].shape.size() != 1 || m.values[bias].shape[0] != out_ch))
    load_fail(who + ": bias has shape " + ints_str(m.values[bias].shape) + ", expected (" + std::to_string(out_ch) + ",)");
}

}  // namespace

bool build_conv_step(Builder& b, const OnnxNode& n, NodeAttrs& a, Step& s) {
  const std::string& op = n.op_type;
  const Model& m = b.m;
  const std::string who = node_label(n);
  auto inputs = [&](size_t count) {
    s.in.clear();
    for (size_t i = 0; i < count; ++i) s.in.push_back(i < n.inputs.size() && !n.inputs[i].empty() ? b.id(n.inputs[i]) : -1);
  };
  ConvAttrs& c = s.conv;
  if (op == "Conv" || op == "ConvTranspose") {
    const bool tr = op == "ConvTranspose";
    require_arity(n, 2, 3, 1);
    s.kind = tr ? StepKind::conv_transpose : StepKind::conv;
    read_geometry(n, a, c, true);
    c.group = a.get_int("group", 1);
    if (c.group < 1 || c.group > kMaxGeometry)
      load_fail(who + ": group " + std::to_string(c.group) + " must lie in [1, 65536]");
    if (tr) {
      c.output_padding = a.get_ints("output_padding", {});
      c.output_shape = a.get_ints("output_shape", {});
      for (const auto* v : {&c.output_padding, &c.output_shape}) {
        const char* name = v == &c.output_padding ? "output_padding" : "output_shape";
        if (v->size() > 2) load_fail(who + ": " + name + " " + ints_str(*v) + " is not for a 1-d or 2-d input");
        for (int64_t x : *v)
          if (x < (v == &c.output_shape ? 1 : 0) || x > kMaxElements)
            load_fail(who + ": " + name + " " + ints_str(*v) + " is out of range");
      }
      for (size_t i = 0; i < c.output_padding.size(); ++i) {
        const int64_t st = i < c.strides.size() ? c.strides[i] : 1, di = i < c.dilations.size() ? c.dilations[i] : 1;
        if (c.output_padding[i] >= std::max(st, di))
          load_fail(who + ": output_padding " + ints_str(c.output_padding) +
                    " must be smaller than the stride or the dilation");
      }
    }
    inputs(3);
    want_float(m, n, s);
    check_const_weight(m, n, s, tr);
    return true;
  }
  if (op == "MaxPool" || op == "AveragePool") {
    const bool mx = op == "MaxPool";
    if (mx && n.outputs.size() > 1 && !n.outputs[1].empty())
      load_fail(who + ": the Indices output is not supported");
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::pool;
    c.pool = mx ? PoolKind::max : PoolKind::avg;
    read_geometry(n, a, c, true);
    if (c.kernel.empty()) load_fail(who + ": the kernel_shape attribute is required");
    c.ceil_mode = a.get_int("ceil_mode", 0) != 0;
    if (mx) {
      a.get_int("storage_order", 0);  // concerns the Indices output only, which is refused
    } else {
      c.count_include_pad = a.get_int("count_include_pad", 0) != 0;
      for (int64_t d : c.dilations)
        if (d != 1)
          load_fail(who + ": dilations " + ints_str(c.dilations) +
                    " are not supported (the average pooling kernel has none)");
    }
    if (c.ceil_mode && c.auto_pad != AutoPad::notset) load_fail(who + ": ceil_mode with auto_pad is not supported");
    // Windows that lie wholly in the padding have no defined value: the kernels need pads
    // smaller than the (dilated) window.
    const size_t r = c.kernel.size();
    for (size_t i = 0; i < c.pads.size(); ++i) {
      const int64_t d = c.dilations.empty() ? 1 : c.dilations[i % r];
      if (c.pads[i] >= (c.kernel[i % r] - 1) * d + 1)
        load_fail(who + ": pads " + ints_str(c.pads) + " must be smaller than the window " + ints_str(c.kernel));
    }
    inputs(1);
    want_float(m, n, s);
    return true;
  }
  if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
    require_arity(n, 1, 1, 1);
    s.kind = StepKind::pool;
    c.pool = op == "GlobalMaxPool" ? PoolKind::global_max : PoolKind::global_avg;
    inputs(1);
    want_float(m, n, s);
    return true;
  }
  if (op == "BatchNormalization") {
    if (a.get_int("training_mode", 0) != 0) load_fail(who + ": training_mode must be 0 (inference only)");
    require_arity(n, 5, 5, 1);
    s.kind = StepKind::batchnorm;
    c.eps = a.get_float("epsilon", 1e-5f);
    a.get_float("momentum", 0.9f);  // updates running statistics in training only
    if (!(c.eps >= 0)) load_fail(who + ": epsilon must be >= 0");
    inputs(5);
    want_float(m, n, s);
    for (int i = 1; i < 5; ++i) {
      const Value& v = m.values[s.in[i]];
      if (v.is_const && v.shape.size() != 1)
        load_fail(who + ": input '" + v.name + "' has shape " + ints_str(v.shape) +
                  ", expected 1-d (one value per channel)");
    }
    return true;
  }
  if (op == "LayerNormalization") {
    for (size_t i = 1; i < n.outputs.size(); ++i)
      if (!n.outputs[i].empty()) load_fail(who + ": the Mean and InvStdDev outputs are not supported (Y only)");
    require_arity(n, 2, 3, 1);
    s.kind = StepKind::layernorm;
    s.axis = a.get_int("axis", -1);
    c.eps = a.get_float("epsilon", 1e-5f);
    if (!(c.eps >= 0)) load_fail(who + ": epsilon must be >= 0");
    // NOTE: stash_type 1 (float32 statistics) is the default; the kernel keeps them in double,
    // which is at least as accurate, so only other stash types are refused.
    if (a.get_int("stash_type", 1) != 1) load_fail(who + ": stash_type other than 1 (float) is not supported");
    inputs(3);
    want_float(m, n, s);
    return true;
  }
  return false;
}

}  // namespace hepnn::rt
