// Session::run: walks the planned steps that were not folded, each through ops.cpp run_step (view
// steps only repoint their output), then copies the requested outputs out. No allocation: every
// buffer was sized by the plan.
#include <cstring>

#include "core/error.hpp"
#include "runtime/session.hpp"

namespace hepnn::rt {

void Session::run(const void* const* inputs, void* const* outputs) {
  const Model& m = *model_;
  if (!cur_) throw Error("[runtime] run called before prepare");
  Plan& pl = *cur_;
  std::vector<void*>& ptr = pl.ptr;
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    if (!inputs[i]) {
      int64_t n = 1;
      for (int64_t d : pl.shapes[m.inputs[i]]) n *= d;
      if (n) throw ValueError("[runtime] input '" + m.values[m.inputs[i]].name + "' has no data");
    }
    ptr[m.inputs[i]] = const_cast<void*>(inputs[i]);
  }
  for (size_t k = 0; k < m.steps.size(); ++k) {
    const StepPlan& p = pl.steps[k];
    if (p.folded) continue;
    const Step& s = m.steps[k];
    if (is_view(s.kind)) {  // no copy: the output is the input's storage (planner.cpp)
      ptr[s.out] = ptr[s.in[0]];
      continue;
    }
    // NOTE: an empty first output may come with non-empty others (a GRU over 0 time steps still
    // returns its initial state as Y_h).
    if (p.n == 0 && p.n2 == 0) continue;
    for (size_t i = 0; i < s.in.size(); ++i) in_ptrs_[i] = s.in[i] >= 0 ? ptr[s.in[i]] : nullptr;
    run_step(s, p, in_ptrs_.data(), ptr[s.out], s.out2 >= 0 ? ptr[s.out2] : nullptr, pl.scratch.data(),
             s.out3 >= 0 ? ptr[s.out3] : nullptr);
  }
  for (size_t i = 0; i < m.outputs.size(); ++i) {
    if (!outputs[i]) continue;
    const int64_t n = output_numel(i);
    if (n) std::memcpy(outputs[i], ptr[m.outputs[i]], size_t(n) * elem_size(output_elem(i)));
  }
}

}  // namespace hepnn::rt
