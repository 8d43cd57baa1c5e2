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
  size_t max_in = 0;
  for (const Step& s : model_->steps) max_in = std::max(max_in, s.in.size());
  in_ptrs_.resize(max_in);
  cache_.reserve(kPlanCache + 1);  // a hit only rotates the entries, never reallocates
}

std::unique_ptr<Session::Plan> Session::new_plan() const {
  const size_t nv = model_->values.size();
  auto p = std::make_unique<Plan>();
  p->shapes.resize(nv);
  p->known.assign(nv, nullptr);
  p->folded.resize(nv);
  p->ptr.assign(nv, nullptr);
  for (size_t v = 0; v < nv; ++v) {
    const Value& val = model_->values[v];
    if (val.is_const) {
      p->shapes[v] = val.shape;
      p->known[v] = val.raw();
      // Constants are never written: the executor only writes step outputs (arena or folded).
      p->ptr[v] = const_cast<void*>(val.raw());
    }
  }
  p->steps.resize(model_->steps.size());
  return p;
}

int64_t Session::output_numel(size_t i) const {
  const auto& s = output_shape(i);
  return prod(s, 0, s.size());
}

size_t Session::live_steps() const {
  size_t n = 0;
  if (cur_)
    for (const StepPlan& p : cur_->steps) n += !p.folded;
  return n;
}

void Session::set_input_shapes(Plan& p, const int64_t* const* shapes, const int32_t* ndims) {
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
    p.shapes[m.inputs[i]] = std::move(s);
  }
}

bool Session::matches(const Plan& p, const int64_t* const* shapes, const int32_t* ndims) const {
  const Model& m = *model_;
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    const auto& s = p.shapes[m.inputs[i]];
    if (ndims[i] < 0 || size_t(ndims[i]) != s.size() || !std::equal(s.begin(), s.end(), shapes[i])) return false;
  }
  return true;
}

void Session::prepare(const int64_t* const* shapes, const int32_t* ndims) {
  for (size_t c = 0; c < cache_.size(); ++c) {
    if (!matches(*cache_[c], shapes, ndims)) continue;
    // A hit moves the plan to the front: no allocation, no planning.
    std::rotate(cache_.begin(), cache_.begin() + c, cache_.begin() + c + 1);
    cur_ = cache_[0].get();
    return;
  }
  // A failed plan leaves the cache as it was.
  std::unique_ptr<Plan> p = new_plan();
  set_input_shapes(*p, shapes, ndims);
  plan(*p, true);
  ++plans_made_;
  cache_.insert(cache_.begin(), std::move(p));
  cur_ = cache_[0].get();
  evict();
}

void Session::evict() {
  size_t bytes = 0;
  for (const auto& p : cache_) bytes += (p->arena.size() + p->scratch.size() * 2) * 4;
  while (cache_.size() > kPlanCache || (cache_.size() > 1 && bytes > kPlanCacheBytes)) {
    const Plan& last = *cache_.back();
    bytes -= (last.arena.size() + last.scratch.size() * 2) * 4;
    cache_.pop_back();
  }
}

void Session::check_shapes(const std::vector<Shape>& shapes) {
  std::vector<const int64_t*> ptrs;
  std::vector<int32_t> nd;
  for (const Shape& s : shapes) {
    ptrs.push_back(s.data());
    nd.push_back(int32_t(s.size()));
  }
  std::unique_ptr<Plan> p = new_plan();
  set_input_shapes(*p, ptrs.data(), nd.data());
  plan(*p, false);
}

void Session::plan(Plan& pl, bool memory) {
  const Model& m = *model_;
  int64_t folded_bytes = 0;
  std::vector<InferIn> ins;
  Shape out2;
  std::vector<int64_t> fold_scratch;
  for (size_t k = 0; k < m.steps.size(); ++k) {
    const Step& s = m.steps[k];
    StepPlan& p = pl.steps[k];
    ins.assign(s.in.size(), InferIn{});
    bool all_known = true;
    for (size_t i = 0; i < s.in.size(); ++i) {
      const int v = s.in[i];
      if (v < 0) continue;
      ins[i] = InferIn{&pl.shapes[v], pl.known[v], m.values[v].elem};
      all_known &= pl.known[v] != nullptr;
    }
    infer_step(s, ins, pl.shapes[s.out], out2, p);
    if (s.out2 >= 0) pl.shapes[s.out2] = out2;
    if (s.out3 >= 0) pl.shapes[s.out3] = out2;
    // Shape reads only its input's shape, which is known here for any input.
    const bool foldable = all_known || s.kind == StepKind::shape;
    const int64_t bytes = p.n * int64_t(elem_size(s.elem)) + p.n2 * (s.out3 >= 0 ? 16 : 8);
    if (!foldable || p.n > kMaxFoldElements || folded_bytes + bytes > kMaxFoldBytes) continue;
    folded_bytes += bytes;
    auto store = [&](int v, int64_t nbytes) {
      pl.folded[v].assign(size_t((nbytes + 7) / 8) + 1, 0);
      pl.known[v] = pl.folded[v].data();
      pl.ptr[v] = pl.folded[v].data();
    };
    store(s.out, p.n * int64_t(elem_size(s.elem)));
    if (s.out2 >= 0) store(s.out2, p.n2 * 8);
    if (s.out3 >= 0) store(s.out3, p.n2 * 8);
    fold_scratch.assign(p.scratch / 8 + 1, 0);
    for (size_t i = 0; i < s.in.size(); ++i) in_ptrs_[i] = s.in[i] >= 0 ? pl.known[s.in[i]] : nullptr;
    if (p.n || p.n2)
      run_step(s, p, in_ptrs_.data(), pl.ptr[s.out], s.out2 >= 0 ? pl.ptr[s.out2] : nullptr, fold_scratch.data(),
               s.out3 >= 0 ? pl.ptr[s.out3] : nullptr);
    p.folded = true;
  }
  if (memory) plan_memory(pl);
}

void Session::plan_memory(Plan& pl) {
  const Model& m = *model_;
  const size_t nv = m.values.size(), ns = m.steps.size();
  // View steps (is_view) own no storage: the executor points their output at their input's, so
  // liveness and slots belong to the root value a chain of views starts from.
  std::vector<int> root(nv);
  std::iota(root.begin(), root.end(), 0);
  for (size_t k = 0; k < ns; ++k)
    if (!pl.steps[k].folded && is_view(m.steps[k].kind)) root[m.steps[k].out] = root[m.steps[k].in[0]];
  std::vector<int64_t> last(nv, -1);
  size_t scratch = 0;
  for (size_t k = 0; k < ns; ++k) {
    if (pl.steps[k].folded) continue;
    scratch = std::max(scratch, pl.steps[k].scratch);
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
    if (pl.steps[k].folded || is_view(m.steps[k].kind)) continue;
    const Step& s = m.steps[k];
    take(s.out, pl.steps[k].n);
    if (s.out2 >= 0) take(s.out2, pl.steps[k].n2);
    if (s.out3 >= 0) take(s.out3, pl.steps[k].n2);
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
  pl.arena.assign(size_t(total) + 16, 0.0f);
  pl.scratch.assign(scratch / 8 + 1, 0);
  // NOTE: vector storage is 16-byte aligned; start at the next 64-byte boundary.
  float* aligned = pl.arena.data();
  while (reinterpret_cast<uintptr_t>(aligned) % 64) ++aligned;
  for (size_t v = 0; v < nv; ++v)
    if (slot_of[v] >= 0) pl.ptr[v] = aligned + base[slot_of[v]];
}

}  // namespace hepnn::rt
