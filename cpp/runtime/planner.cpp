// Session planning: shape inference for the given input shapes, per-step kernel parameters, and a
// static memory plan in which buffers are reused once their value is dead (liveness by step).
#include <algorithm>
#include <iterator>
#include <set>
#include <utility>
#include <string>

#include "core/error.hpp"
#include "runtime/onnx_model.hpp"
#include "runtime/session.hpp"

namespace hepnn::rt {
namespace {

[[noreturn]] void fail(const std::string& what) { throw ValueError("[runtime] " + what); }

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

int64_t checked_numel(const std::vector<int64_t>& s, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) fail(what + " has a negative dimension");
    if (d > kMaxElements || (d > 0 && n > kMaxElements / d)) fail(what + " has more than 2^31 elements");
    n *= d;
  }
  return n;
}

int64_t prod(const std::vector<int64_t>& s, size_t b, size_t e) {
  int64_t n = 1;
  for (size_t i = b; i < e; ++i) n *= s[i];
  return n;
}

}  // namespace

Session::Session(std::shared_ptr<const Model> model, int threads) : model_(std::move(model)), threads_(threads) {
  if (!model_) throw ValueError("[runtime] session needs a model");
  if (threads < 1) throw ValueError("[runtime] threads must be >= 1, got " + std::to_string(threads));
  const size_t nv = model_->values.size();
  shapes_.resize(nv);
  ptr_.assign(nv, nullptr);
  for (size_t v = 0; v < nv; ++v) {
    const Value& val = model_->values[v];
    if (val.is_const) {
      shapes_[v] = val.shape;
      // Constants are never written: the executor only writes step outputs, which live in the arena.
      ptr_[v] = const_cast<float*>(val.data.data());
    }
  }
  plans_.resize(model_->steps.size());
}

int64_t Session::output_numel(size_t i) const {
  const auto& s = output_shape(i);
  return prod(s, 0, s.size());
}

void Session::prepare(const int64_t* const* shapes, const int32_t* ndims) {
  const Model& m = *model_;
  bool same = planned_;
  for (size_t i = 0; same && i < m.inputs.size(); ++i) {
    const auto& s = shapes_[m.inputs[i]];
    same = ndims[i] >= 0 && size_t(ndims[i]) == s.size() && std::equal(s.begin(), s.end(), shapes[i]);
  }
  if (same) return;
  planned_ = false;
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    const std::string& name = m.values[m.inputs[i]].name;
    if (ndims[i] < 0 || ndims[i] > 8) fail("input '" + name + "' has " + std::to_string(ndims[i]) + " dimensions");
    std::vector<int64_t> s(shapes[i], shapes[i] + ndims[i]);
    checked_numel(s, "input '" + name + "'");
    const auto& want = m.input_dims[i];
    bool ok = !m.input_has_shape[i] || want.size() == s.size();
    for (size_t d = 0; ok && m.input_has_shape[i] && d < s.size(); ++d) ok = want[d] < 0 || want[d] == s[d];
    if (!ok) {
      std::string w = "(";
      for (size_t d = 0; d < want.size(); ++d) w += (d ? ", " : "") + (want[d] < 0 ? std::string("?") : std::to_string(want[d]));
      fail("input '" + name + "' has shape " + shape_str(s) + ", the model expects " + w + (want.size() == 1 ? ",)" : ")"));
    }
    shapes_[m.inputs[i]] = std::move(s);
  }
  plan();
  planned_ = true;
}

void Session::plan() {
  for (size_t k = 0; k < model_->steps.size(); ++k) plan_step(k);
  plan_memory();
}

void Session::plan_step(size_t k) {
  const Model& m = *model_;
  const Step& s = m.steps[k];
  StepPlan& p = plans_[k];
  p = StepPlan{};
  const std::vector<int64_t>& x = shapes_[s.in[0]];
  std::vector<int64_t> out;
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) fail(s.op + ": " + what);
  };
  switch (s.kind) {
    case StepKind::linear: {
      const auto& w = shapes_[s.in[1]];
      // From Gemm: 2-D input only (ONNX Gemm). From MatMul: any rank >= 1, numpy style.
      need(s.rank2_input ? x.size() == 2 : !x.empty(),
           "input has shape " + shape_str(x) + ", expected " + (s.rank2_input ? "2-D" : "at least 1-D"));
      need(x.back() == w[1], "input has shape " + shape_str(x) + ", the weight expects " + std::to_string(w[1]) + " features");
      p.M = prod(x, 0, x.size() - 1);
      p.K = w[1];
      p.N = w[0];
      out = x;
      out.back() = p.N;
      break;
    }
    case StepKind::gemm: {
      const auto& b = shapes_[s.in[1]];
      need(x.size() == 2 && b.size() == 2, "A and B must be 2-D, got " + shape_str(x) + " and " + shape_str(b));
      p.M = s.trans_a ? x[1] : x[0];
      p.K = s.trans_a ? x[0] : x[1];
      const int64_t kb = s.trans_b ? b[1] : b[0];
      p.N = s.trans_b ? b[0] : b[1];
      need(p.K == kb, "inner dimensions differ: A " + shape_str(x) + ", B " + shape_str(b));
      if (s.in[2] >= 0 && s.g_beta != 0.0f) {
        const auto& c = shapes_[s.in[2]];
        need(c.size() <= 2, "C has shape " + shape_str(c));
        const int64_t cr = c.size() == 2 ? c[0] : 1, cc = c.empty() ? 1 : c.back();
        need((cr == 1 || cr == p.M) && (cc == 1 || cc == p.N),
             "C of shape " + shape_str(c) + " does not broadcast to (" + std::to_string(p.M) + ", " + std::to_string(p.N) + ")");
        p.c_rows = cr;
        p.c_cols = cc;
      }
      out = {p.M, p.N};
      break;
    }
    case StepKind::matmul: {
      // numpy matmul: a 1-D left operand is a row, a 1-D right operand a column (both dropped from
      // the output); batch dimensions broadcast.
      const auto& y = shapes_[s.in[1]];
      need(!x.empty() && !y.empty(), "operands must be at least 1-D, got " + shape_str(x) + " and " + shape_str(y));
      const std::vector<int64_t> a = x.size() == 1 ? std::vector<int64_t>{1, x[0]} : x;
      const std::vector<int64_t> b = y.size() == 1 ? std::vector<int64_t>{y[0], 1} : y;
      p.M = a[a.size() - 2];
      p.K = a.back();
      p.N = b.back();
      need(b[b.size() - 2] == p.K, "inner dimensions differ: " + shape_str(x) + " @ " + shape_str(y));
      const size_t ra = a.size() - 2, rb = b.size() - 2, r = std::max(ra, rb);
      need(r <= 6, "more than 6 batch dimensions");
      p.rank = int(r);
      int64_t sa = p.M * p.K, sb = p.K * p.N;
      bool a_full = true, b_full = true, a_none = true, b_none = true;
      for (size_t i = r; i-- > 0;) {
        const int64_t da = i + ra >= r ? a[i + ra - r] : 1, db = i + rb >= r ? b[i + rb - r] : 1;
        need(da == db || da == 1 || db == 1,
             "batch dimensions of " + shape_str(x) + " and " + shape_str(y) + " do not broadcast");
        p.dims[i] = da == 1 ? db : da;
        p.sa[i] = da == 1 ? 0 : sa;
        p.sb[i] = db == 1 ? 0 : sb;
        a_full &= da == p.dims[i];
        b_full &= db == p.dims[i];
        a_none &= da == 1;
        b_none &= db == 1;
        sa *= da;
        sb *= db;
        out.push_back(p.dims[i]);
      }
      std::reverse(out.begin(), out.end());
      p.batch = prod(out, 0, out.size());
      // Layouts one gemm_batched call covers: each operand either spans the whole batch or is shared.
      p.general = !((a_full || a_none) && (b_full || b_none));
      p.stride_a = a_none ? 0 : p.M * p.K;
      p.stride_b = b_none ? 0 : p.K * p.N;
      if (x.size() > 1) out.push_back(p.M);
      if (y.size() > 1) out.push_back(p.N);
      break;
    }
    case StepKind::binary: {
      const auto& y = shapes_[s.in[1]];
      const size_t r = std::max(x.size(), y.size());
      need(r <= 8, "more than 8 dimensions");
      out.assign(r, 1);
      p.rank = int(r);
      int64_t sa = 1, sb = 1;
      for (size_t i = r; i-- > 0;) {
        const size_t ia = i + x.size() - r, ib = i + y.size() - r;  // wraps when absent
        const int64_t da = i + x.size() >= r ? x[ia] : 1, db = i + y.size() >= r ? y[ib] : 1;
        need(da == db || da == 1 || db == 1, "shapes " + shape_str(x) + " and " + shape_str(y) + " do not broadcast");
        out[i] = da == 1 ? db : da;
        p.dims[i] = out[i];
        p.sa[i] = da == 1 ? 0 : sa;
        p.sb[i] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
      }
      break;
    }
    case StepKind::softmax: {
      const int64_t r = int64_t(x.size());
      need(r >= 1, "input must have at least one dimension");
      need(s.axis >= -r && s.axis < r, "axis " + std::to_string(s.axis) + " out of range for " + shape_str(x));
      const size_t ax = size_t(s.axis < 0 ? s.axis + r : s.axis);
      p.outer = prod(x, 0, ax);
      p.dim = x[ax];
      p.inner = prod(x, ax + 1, x.size());
      out = x;
      break;
    }
    case StepKind::act:
    case StepKind::erf:
    case StepKind::copy: out = x; break;
    case StepKind::flatten: {
      const int64_t r = int64_t(x.size());
      need(s.axis >= -r && s.axis <= r, "axis " + std::to_string(s.axis) + " out of range for " + shape_str(x));
      const size_t ax = size_t(s.axis < 0 ? s.axis + r : s.axis);
      out = {prod(x, 0, ax), prod(x, ax, x.size())};
      break;
    }
    case StepKind::reshape: {
      const int64_t n = prod(x, 0, x.size());
      int64_t known = 1;
      int minus = -1;
      out = s.shape_spec;
      for (size_t i = 0; i < out.size(); ++i) {
        if (out[i] == 0 && !s.allowzero) {
          need(i < x.size(), "target dimension " + std::to_string(i) + " copies a dimension the input lacks");
          out[i] = x[i];
        }
        if (out[i] == -1) minus = int(i);
        else known *= out[i];
        need(known <= kMaxElements, "target shape too large");
      }
      if (minus >= 0) {
        need(known != 0 && n % known == 0, "cannot infer -1 for " + shape_str(x) + " -> " + shape_str(s.shape_spec));
        out[minus] = n / known;
      }
      need(prod(out, 0, out.size()) == n, "cannot reshape " + shape_str(x) + " to " + shape_str(out));
      break;
    }
  }
  p.n = checked_numel(out, s.op + " output");
  shapes_[s.out] = std::move(out);
}

void Session::plan_memory() {
  const Model& m = *model_;
  const size_t nv = m.values.size(), ns = m.steps.size();
  std::vector<int64_t> last(nv, -1);
  for (size_t k = 0; k < ns; ++k)
    for (int v : m.steps[k].in)
      if (v >= 0) last[v] = int64_t(k);
  for (int v : m.outputs) last[v] = int64_t(ns);
  // Slots: a value takes the smallest free slot that fits, else grows the largest free one, else
  // a new slot. Capacities are in floats, rounded to 16 (64-byte alignment within the arena).
  // Free slots sit in a set ordered by capacity, so planning is O(n log n) even for huge graphs.
  std::vector<int64_t> cap;
  std::set<std::pair<int64_t, int>> free_slots;
  std::vector<int> slot_of(nv, -1);
  auto release = [&](int slot) { free_slots.insert({cap[slot], slot}); };
  for (size_t k = 0; k < ns; ++k) {
    const Step& s = m.steps[k];
    const int64_t need = std::max<int64_t>(16, (plans_[k].n + 15) / 16 * 16);
    int slot;
    auto it = free_slots.lower_bound({need, -1});
    if (it == free_slots.end() && !free_slots.empty()) it = std::prev(free_slots.end());
    if (it != free_slots.end()) {
      slot = it->second;
      free_slots.erase(it);
      cap[slot] = std::max(cap[slot], need);
    } else {
      slot = int(cap.size());
      cap.push_back(need);
    }
    slot_of[s.out] = slot;
    if (last[s.out] <= int64_t(k)) release(slot);  // never read: reusable at once
    for (size_t i = 0; i < s.in.size(); ++i) {
      const int v = s.in[i];
      const bool repeated = std::find(s.in.begin(), s.in.begin() + i, v) != s.in.begin() + i;
      if (v >= 0 && !repeated && slot_of[v] >= 0 && last[v] == int64_t(k)) release(slot_of[v]);
    }
  }
  std::vector<int64_t> base(cap.size());
  int64_t total = 0;
  for (size_t c = 0; c < cap.size(); ++c) {
    base[c] = total;
    total += cap[c];
  }
  if (total > kMaxElements * 4) fail("the plan needs more than 2^33 floats of scratch memory");
  arena_.assign(size_t(total) + 16, 0.0f);
  // NOTE: vector storage is 16-byte aligned; start at the next 64-byte boundary.
  float* aligned = arena_.data();
  while (reinterpret_cast<uintptr_t>(aligned) % 64) ++aligned;
  for (size_t v = 0; v < nv; ++v)
    if (slot_of[v] >= 0) ptr_[v] = aligned + base[slot_of[v]];
}

}  // namespace hepnn::rt
