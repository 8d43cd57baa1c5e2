// Load-time constant folding: a step whose inputs are all constants (initializers, Constant
// nodes, earlier folded steps) runs once here, through the same infer_step/run_step as at run
// time, and its outputs become constants. A byte budget bounds what a small file can expand into.
#include <cstring>

#include "core/error.hpp"
#include "runtime/builder.hpp"
#include "runtime/ops.hpp"

namespace hepnn::rt {
namespace {

void* alloc_value(Value& v, const Shape& shape, int64_t n) {
  v.is_const = true;
  v.shape = shape;
  if (v.elem == Elem::f32) { v.data.assign(size_t(n), 0.0f); return v.data.data(); }
  if (v.elem == Elem::i64) { v.ints.assign(size_t(n), 0); return v.ints.data(); }
  v.bools.assign(size_t(n), 0);
  return v.bools.data();
}

}  // namespace

bool fold_constant_step(Model& m, const Step& s, int64_t& budget_bytes) {
  std::vector<InferIn> in(s.in.size());
  std::vector<const void*> ptrs(s.in.size(), nullptr);
  for (size_t i = 0; i < s.in.size(); ++i) {
    const int v = s.in[i];
    if (v < 0) continue;
    in[i] = InferIn{&m.values[v].shape, m.values[v].raw(), m.values[v].elem};
    ptrs[i] = m.values[v].raw();
  }
  Shape out, out2;
  StepPlan p;
  try {
    infer_step(s, in, out, out2, p);
  } catch (const ValueError& e) {
    throw Error(e.what());  // shapes of constants: a fault of the file
  }
  const int64_t bytes = p.n * int64_t(elem_size(s.elem)) + p.n2 * (s.out3 >= 0 ? 16 : 8);
  if (p.n > kMaxFoldElements || p.n2 > kMaxFoldElements || bytes > budget_bytes) return false;
  budget_bytes -= bytes;
  // Inputs may live in m.values, which growing nothing here keeps valid: outputs already exist.
  void* y = alloc_value(m.values[s.out], out, p.n);
  void* y2 = s.out2 >= 0 ? alloc_value(m.values[s.out2], out2, p.n2) : nullptr;
  void* y3 = s.out3 >= 0 ? alloc_value(m.values[s.out3], out2, p.n2) : nullptr;
  std::vector<int64_t> scratch(p.scratch / 8 + 1);
  try {
    if (p.n || p.n2) run_step(s, p, ptrs.data(), y, y2, scratch.data(), y3);
  } catch (const ValueError& e) {
    throw Error(e.what());
  }
  return true;
}

}  // namespace hepnn::rt
