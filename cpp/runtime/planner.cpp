// Session planning: shape inference for the given input shapes (ops.cpp infer_step), folding of
// every step whose inputs are known before running (constants, and shape subgraphs such as
// Shape -> Gather -> Unsqueeze -> Concat -> Reshape, which become constants for these shapes), and
// a static memory plan in which buffers are reused once their value is dead (liveness by step);
// reshape-like steps are views that share their input's buffer.
#include <algorithm>
#include <iterator>
#include <numeric>
#include <set>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "runtime/onnx_model.hpp"
#include "runtime/session.hpp"

namespace hepnn::rt {
namespace {

[[noreturn]] void fail(const std::string& what) { throw ValueError("[runtime] " + what); }

// Bytes a session may hold in values folded at plan time (beyond it, steps run normally).
constexpr int64_t kMaxFoldBytes = int64_t(1) << 28;

}  // namespace

Session::Session(std::shared_ptr<const Model> model, int threads) : model_(std::move(model)), threads_(threads) {
  if (!model_) throw ValueError("[runtime] session needs a model");
  if (threads < 1) throw ValueError("[runtime] threads must be >= 1, got " + std::to_string(threads));
  const size_t nv = model_->values.size();
  shapes_.resize(nv);
  known_.assign(nv, nullptr);
  folded_.resize(nv);
  ptr_.assign(nv, nullptr);
  size_t max_in = 0;
  for (const Step& s : model_->steps) max_in = std::max(max_in, s.in.size());
  in_ptrs_.resize(max_in);
  for (size_t v = 0; v < nv; ++v) {
    const Value& val = model_->values[v];
    if (val.is_const) {
      shapes_[v] = val.shape;
      known_[v] = val.raw();
      // Constants are never written: the executor only writes step outputs (arena or folded).
      ptr_[v] = const_cast<void*>(val.raw());
    }
  }
  plans_.resize(model_->steps.size());
}

int64_t Session::output_numel(size_t i) const {
  const auto& s = output_shape(i);
  return prod(s, 0, s.size());
}

size_t Session::live_steps() const {
  size_t n = 0;
  for (const StepPlan& p : plans_) n += !p.folded;
  return n;
}

void Session::set_input_shapes(const int64_t* const* shapes, const int32_t* ndims) {
  const Model& m = *model_;
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    const std::string& name = m.values[m.inputs[i]].name;
    if (ndims[i] < 0 || ndims[i] > 8) fail("input '" + name + "' has " + std::to_string(ndims[i]) + " dimensions");
    Shape s(shapes[i], shapes[i] + ndims[i]);
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
  set_input_shapes(shapes, ndims);
  plan(true);
  planned_ = true;
}

void Session::check_shapes(const std::vector<Shape>& shapes) {
  std::vector<const int64_t*> ptrs;
  std::vector<int32_t> nd;
  for (const Shape& s : shapes) {
    ptrs.push_back(s.data());
    nd.push_back(int32_t(s.size()));
  }
  planned_ = false;
  set_input_shapes(ptrs.data(), nd.data());
  plan(false);
}

void Session::plan(bool memory) {
  const Model& m = *model_;
  for (size_t v = 0; v < m.values.size(); ++v)
    if (!m.values[v].is_const) {
      known_[v] = nullptr;
      folded_[v].clear();
    }
  int64_t folded_bytes = 0;
  std::vector<InferIn> ins;
  Shape out2;
  std::vector<int64_t> fold_scratch;
  for (size_t k = 0; k < m.steps.size(); ++k) {
    const Step& s = m.steps[k];
    StepPlan& p = plans_[k];
    ins.assign(s.in.size(), InferIn{});
    bool all_known = true;
    for (size_t i = 0; i < s.in.size(); ++i) {
      const int v = s.in[i];
      if (v < 0) continue;
      ins[i] = InferIn{&shapes_[v], known_[v], m.values[v].elem};
      all_known &= known_[v] != nullptr;
    }
    infer_step(s, ins, shapes_[s.out], out2, p);
    if (s.out2 >= 0) shapes_[s.out2] = out2;
    if (s.out3 >= 0) shapes_[s.out3] = out2;
    // Shape reads only its input's shape, which is known here for any input.
    const bool foldable = all_known || s.kind == StepKind::shape;
    const int64_t bytes = p.n * int64_t(elem_size(s.elem)) + p.n2 * (s.out3 >= 0 ? 16 : 8);
    if (!foldable || p.n > kMaxFoldElements || folded_bytes + bytes > kMaxFoldBytes) continue;
    folded_bytes += bytes;
    auto store = [&](int v, int64_t nbytes) {
      folded_[v].assign(size_t((nbytes + 7) / 8) + 1, 0);
      known_[v] = folded_[v].data();
      ptr_[v] = folded_[v].data();
    };
    store(s.out, p.n * int64_t(elem_size(s.elem)));
    if (s.out2 >= 0) store(s.out2, p.n2 * 8);
    if (s.out3 >= 0) store(s.out3, p.n2 * 8);
    fold_scratch.assign(p.scratch / 8 + 1, 0);
    for (size_t i = 0; i < s.in.size(); ++i) in_ptrs_[i] = s.in[i] >= 0 ? known_[s.in[i]] : nullptr;
    if (p.n || p.n2)
      run_step(s, p, in_ptrs_.data(), ptr_[s.out], s.out2 >= 0 ? ptr_[s.out2] : nullptr, fold_scratch.data(),
               s.out3 >= 0 ? ptr_[s.out3] : nullptr);
    p.folded = true;
  }
  if (memory) plan_memory();
}

void Session::plan_memory() {
  const Model& m = *model_;
  const size_t nv = m.values.size(), ns = m.steps.size();
  // View steps (is_view) own no storage: the executor points their output at their input's, so
  // liveness and slots belong to the root value a chain of views starts from.
  std::vector<int> root(nv);
  std::iota(root.begin(), root.end(), 0);
  for (size_t k = 0; k < ns; ++k)
    if (!plans_[k].folded && is_view(m.steps[k].kind)) root[m.steps[k].out] = root[m.steps[k].in[0]];
  std::vector<int64_t> last(nv, -1);
  size_t scratch = 0;
  for (size_t k = 0; k < ns; ++k) {
    if (plans_[k].folded) continue;
    scratch = std::max(scratch, plans_[k].scratch);
    for (int v : m.steps[k].in)
      if (v >= 0) last[root[v]] = std::max(last[root[v]], int64_t(k));
  }
  for (int v : m.outputs) last[root[v]] = int64_t(ns);
  // Slots: a value takes the smallest free slot that fits, else grows the largest free one, else
  // a new slot. Capacities are in 4-byte units, rounded to 16 (64-byte alignment in the arena).
  // Free slots sit in a set ordered by capacity, so planning is O(n log n) even for huge graphs.
  std::vector<int64_t> cap;
  std::set<std::pair<int64_t, int>> free_slots;
  std::vector<int> slot_of(nv, -1);
  auto release = [&](int slot) { free_slots.insert({cap[slot], slot}); };
  auto take = [&](int v, int64_t n) {
    const int64_t units = (n * int64_t(elem_size(m.values[v].elem)) + 3) / 4;
    const int64_t need = std::max<int64_t>(16, (units + 15) / 16 * 16);
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
    slot_of[v] = slot;
  };
  for (size_t k = 0; k < ns; ++k) {
    if (plans_[k].folded || is_view(m.steps[k].kind)) continue;
    const Step& s = m.steps[k];
    take(s.out, plans_[k].n);
    if (s.out2 >= 0) take(s.out2, plans_[k].n2);
    if (s.out3 >= 0) take(s.out3, plans_[k].n2);
    for (int o : {s.out, s.out2, s.out3})
      if (o >= 0 && last[o] <= int64_t(k)) release(slot_of[o]);  // never read: reusable at once
    for (size_t i = 0; i < s.in.size(); ++i) {
      if (s.in[i] < 0) continue;
      const int v = root[s.in[i]];
      bool repeated = false;
      for (size_t j = 0; j < i; ++j) repeated |= s.in[j] >= 0 && root[s.in[j]] == v;
      if (!repeated && slot_of[v] >= 0 && last[v] == int64_t(k)) release(slot_of[v]);
    }
  }
  std::vector<int64_t> base(cap.size());
  int64_t total = 0;
  for (size_t c = 0; c < cap.size(); ++c) {
    base[c] = total;
    total += cap[c];
  }
  if (total > kMaxElements * 4) fail("the plan needs more than 2^35 bytes of scratch memory");
  arena_.assign(size_t(total) + 16, 0.0f);
  scratch_.assign(scratch / 8 + 1, 0);
  // NOTE: vector storage is 16-byte aligned; start at the next 64-byte boundary.
  float* aligned = arena_.data();
  while (reinterpret_cast<uintptr_t>(aligned) % 64) ++aligned;
  for (size_t v = 0; v < nv; ++v)
    if (slot_of[v] >= 0) ptr_[v] = aligned + base[slot_of[v]];
}

}  // namespace hepnn::rt
