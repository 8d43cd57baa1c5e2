// Graph rewrites at load: the erf form of GELU (as torch.onnx exports nn.GELU) becomes one gelu
// step, then linear steps absorb a following bias Add and activation (conv steps an activation
// and a MaxPool). Both passes are linear in the graph size and only touch values read exactly
// once (never graph outputs).
#include "runtime/fusion.hpp"

#include <cmath>

namespace hepnn::rt {
namespace {

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

bool is_float_const(const Model& m, int v) { return v >= 0 && m.values[v].is_const && m.values[v].elem == Elem::f32; }

// A rank-0 float constant close to `want` (rank 0, so the rewrite cannot change the output shape).
bool scalar_near(const Model& m, int v, double want) {
  if (!is_float_const(m, v) || !m.values[v].shape.empty()) return false;
  return std::abs(double(m.values[v].data[0]) - want) <= 1e-6 * std::abs(want);
}

struct Uses {
  std::vector<int> count, consumer;
  Uses(const Model& m) : count(m.values.size(), 0), consumer(m.values.size(), -1) {
    for (size_t j = 0; j < m.steps.size(); ++j)
      for (int x : m.steps[j].in)
        if (x >= 0) {
          ++count[x];
          consumer[x] = int(j);
        }
    for (int v : m.outputs) count[v] += 1 << 20;  // graph outputs stay materialised
  }
};

void drop_dead(Model& m, const std::vector<bool>& dead) {
  std::vector<Step> kept;
  for (size_t k = 0; k < m.steps.size(); ++k)
    if (!dead[k]) kept.push_back(std::move(m.steps[k]));
  m.steps = std::move(kept);
}

}  // namespace

void fuse_gelu(Model& m) {
  const Uses u(m);
  std::vector<bool> dead(m.steps.size(), false);
  // The only consumer of step k's output, when that consumer is a live step of `kind`.
  auto next = [&](int k, StepKind kind) -> int {
    const int v = m.steps[k].out;
    const int j = u.count[v] == 1 ? u.consumer[v] : -1;
    return j > k && !dead[j] && m.steps[j].kind == kind ? j : -1;
  };
  auto other = [&](const Step& s, int v) { return s.in[0] == v ? s.in[1] : s.in[0]; };
  for (size_t k = 0; k < m.steps.size(); ++k) {
    Step& d = m.steps[k];
    // x / sqrt(2) -> erf -> + 1 -> * x -> * 0.5 (the last two in either order of operands)
    if (dead[k] || d.kind != StepKind::binary || d.bin != BinOp::div || d.elem != Elem::f32 ||
        !scalar_near(m, d.in[1], std::sqrt(2.0)))
      continue;
    const int x = d.in[0];
    const int e = next(int(k), StepKind::unary);
    if (e < 0 || m.steps[e].un != UnOp::erf) continue;
    const int a = next(e, StepKind::binary);
    if (a < 0 || m.steps[a].bin != BinOp::add || !scalar_near(m, other(m.steps[a], m.steps[e].out), 1.0)) continue;
    const int p = next(a, StepKind::binary);
    if (p < 0 || m.steps[p].bin != BinOp::mul || other(m.steps[p], m.steps[a].out) != x) continue;
    const int h = next(p, StepKind::binary);
    if (h < 0 || m.steps[h].bin != BinOp::mul || !scalar_near(m, other(m.steps[h], m.steps[p].out), 0.5)) continue;
    d.kind = StepKind::act;
    d.act = Act::gelu_erf;
    d.alpha = 0;
    d.op = "Gelu(erf pattern)";
    d.in = {x};
    d.out = m.steps[h].out;
    dead[e] = dead[a] = dead[p] = dead[h] = true;
  }
  drop_dead(m, dead);
}

void fuse_linear(Model& m) {
  const Uses u(m);
  const std::vector<int>& uses = u.count;
  std::vector<bool> dead(m.steps.size(), false);
  auto sole_consumer = [&](size_t k) -> int {
    const int v = m.steps[k].out;
    return uses[v] == 1 && u.consumer[v] > int(k) && !dead[u.consumer[v]] ? u.consumer[v] : -1;
  };
  for (size_t k = 0; k < m.steps.size(); ++k) {
    Step& s = m.steps[k];
    // Conv steps take the activation only (their bias is an input of the node already).
    if (dead[k] || (s.kind != StepKind::linear && s.kind != StepKind::conv)) continue;
    int j = sole_consumer(k);
    if (s.kind == StepKind::linear && j >= 0 && s.in[2] < 0 && m.steps[j].kind == StepKind::binary &&
        m.steps[j].bin == BinOp::add) {
      const int64_t O = m.values[s.in[1]].shape[0];
      const Step& add = m.steps[j];
      const int other = add.in[0] == s.out ? add.in[1] : add.in[0];
      const bool ok = add.in[0] != add.in[1] && is_float_const(m, other) && numel(m.values[other].shape) == O &&
                      !m.values[other].shape.empty() && m.values[other].shape.size() <= 2 &&
                      m.values[other].shape.back() == O;
      if (ok) {
        s.in[2] = other;
        s.out = add.out;
        s.op += "+Add";
        dead[j] = true;
        j = sole_consumer(k);
      }
    }
    if (j >= 0 && m.steps[j].kind == StepKind::act && m.steps[j].scale == 1.0f) {
      s.act = m.steps[j].act;
      s.alpha = m.steps[j].alpha;
      s.out = m.steps[j].out;
      s.op += "+" + m.steps[j].op;
      dead[j] = true;
      j = sole_consumer(k);
    }
    // Conv (+ activation) -> MaxPool: the training library's inference fusion pools each
    // sample's conv output while it is in cache.
    if (s.kind == StepKind::conv && j >= 0 && m.steps[j].kind == StepKind::pool && m.steps[j].conv.pool == PoolKind::max) {
      s.conv.then_max_pool = {m.steps[j].conv};
      s.out = m.steps[j].out;
      s.op += "+" + m.steps[j].op;
      dead[j] = true;
    }
  }
  drop_dead(m, dead);
}

}  // namespace hepnn::rt
