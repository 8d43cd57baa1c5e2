// Session::run: walks the planned steps, calling the cpp/ops kernels (linear_forward, gemm,
// act_forward, softmax_forward) and the runtime's own broadcasting elementwise loops.
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "ops/activation.hpp"
#include "ops/gemm.hpp"
#include "ops/linear.hpp"
#include "ops/softmax.hpp"
#include "runtime/session.hpp"

namespace hepnn::rt {
namespace {

template <BinOp op>
inline float apply(float a, float b) {
  if constexpr (op == BinOp::add) return a + b;
  if constexpr (op == BinOp::sub) return a - b;
  if constexpr (op == BinOp::mul) return a * b;
  return a / b;
}

// One row of the innermost dimension; the four stride cases are separate loops so each vectorises.
template <BinOp op>
void binary_row(int64_t n, const float* a, int64_t sa, const float* b, int64_t sb, float* y) {
  if (sa && sb) for (int64_t i = 0; i < n; ++i) y[i] = apply<op>(a[i], b[i]);
  else if (sa) { const float bv = *b; for (int64_t i = 0; i < n; ++i) y[i] = apply<op>(a[i], bv); }
  else if (sb) { const float av = *a; for (int64_t i = 0; i < n; ++i) y[i] = apply<op>(av, b[i]); }
  else { const float v = apply<op>(*a, *b); for (int64_t i = 0; i < n; ++i) y[i] = v; }
}

// numpy broadcasting over up to 8 dimensions: an odometer over all but the last dimension.
template <BinOp op>
void binary(const StepPlan& p, const float* a, const float* b, float* y) {
  const int r = p.rank;
  if (r == 0) { y[0] = apply<op>(a[0], b[0]); return; }
  const int64_t inner = p.dims[r - 1];
  if (inner == 0) return;
  const int64_t rows = p.n / inner;
  int64_t idx[8] = {};
  int64_t oa = 0, ob = 0;
  for (int64_t row = 0; row < rows; ++row) {
    binary_row<op>(inner, a + oa, p.sa[r - 1], b + ob, p.sb[r - 1], y + row * inner);
    for (int d = r - 2; d >= 0; --d) {
      oa += p.sa[d];
      ob += p.sb[d];
      if (++idx[d] < p.dims[d]) break;
      oa -= p.sa[d] * p.dims[d];
      ob -= p.sb[d] * p.dims[d];
      idx[d] = 0;
    }
  }
}

// Batched product whose batch dims broadcast: the odometer of `binary` over the batch dims, one
// gemm per output matrix.
void matmul_broadcast(const StepPlan& p, const float* a, const float* b, float* y) {
  int64_t idx[8] = {};
  int64_t oa = 0, ob = 0;
  for (int64_t m = 0; m < p.batch; ++m) {
    cpu::gemm<float>(Trans::N, Trans::N, p.M, p.N, p.K, 1.0f, a + oa, p.K, b + ob, p.N, 0.0f, y + m * p.M * p.N, p.N);
    for (int d = p.rank - 1; d >= 0; --d) {
      oa += p.sa[d];
      ob += p.sb[d];
      if (++idx[d] < p.dims[d]) break;
      oa -= p.sa[d] * p.dims[d];
      ob -= p.sb[d] * p.dims[d];
      idx[d] = 0;
    }
  }
}

}  // namespace

void Session::run(const float* const* inputs, float* const* outputs) {
  const Model& m = *model_;
  if (!planned_) throw Error("[runtime] run called before prepare");
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    if (!inputs[i]) {
      int64_t n = 1;
      for (int64_t d : shapes_[m.inputs[i]]) n *= d;
      if (n) throw ValueError("[runtime] input '" + m.values[m.inputs[i]].name + "' has no data");
    }
    ptr_[m.inputs[i]] = const_cast<float*>(inputs[i]);
  }
  for (size_t k = 0; k < m.steps.size(); ++k) {
    const Step& s = m.steps[k];
    const StepPlan& p = plans_[k];
    if (p.n == 0) continue;
    const float* x = ptr_[s.in[0]];
    float* y = ptr_[s.out];
    switch (s.kind) {
      case StepKind::linear:
        cpu::linear_forward<float>(p.M, p.K, p.N, x, ptr_[s.in[1]], s.in[2] >= 0 ? ptr_[s.in[2]] : nullptr, s.act,
                                   s.alpha, y, nullptr);
        break;
      case StepKind::gemm: {
        float beta = 0.0f;
        if (p.c_rows) {
          const float* c = ptr_[s.in[2]];
          for (int64_t i = 0; i < p.M; ++i)
            for (int64_t j = 0; j < p.N; ++j)
              y[i * p.N + j] = c[(p.c_rows == 1 ? 0 : i) * p.c_cols + (p.c_cols == 1 ? 0 : j)];
          beta = s.g_beta;
        }
        cpu::gemm<float>(s.trans_a ? Trans::T : Trans::N, s.trans_b ? Trans::T : Trans::N, p.M, p.N, p.K, s.g_alpha, x,
                         s.trans_a ? p.M : p.K, ptr_[s.in[1]], s.trans_b ? p.K : p.N, beta, y, p.N);
        break;
      }
      case StepKind::matmul:
        if (p.general) {
          matmul_broadcast(p, x, ptr_[s.in[1]], y);
        } else if (p.stride_b == 0 && p.stride_a != 0) {
          // A shared right operand: the batch folds into the rows of one product.
          cpu::gemm<float>(Trans::N, Trans::N, p.M * p.batch, p.N, p.K, 1.0f, x, p.K, ptr_[s.in[1]], p.N, 0.0f, y, p.N);
        } else {
          cpu::gemm_batched<float>(Trans::N, Trans::N, p.batch, p.M, p.N, p.K, 1.0f, x, p.K, p.stride_a, ptr_[s.in[1]],
                                   p.N, p.stride_b, 0.0f, y, p.N, p.M * p.N);
        }
        break;
      case StepKind::binary: {
        const float* b = ptr_[s.in[1]];
        switch (s.bin) {
          case BinOp::add: binary<BinOp::add>(p, x, b, y); break;
          case BinOp::sub: binary<BinOp::sub>(p, x, b, y); break;
          case BinOp::mul: binary<BinOp::mul>(p, x, b, y); break;
          case BinOp::div: binary<BinOp::div>(p, x, b, y); break;
        }
        break;
      }
      case StepKind::act:
        cpu::act_forward<float>(s.act, p.n, x, y, s.alpha);
        if (s.scale != 1.0f)
          for (int64_t i = 0; i < p.n; ++i) y[i] *= s.scale;
        break;
      case StepKind::erf:
        for (int64_t i = 0; i < p.n; ++i) y[i] = std::erf(x[i]);
        break;
      case StepKind::softmax: cpu::softmax_forward<float>(p.outer, p.dim, p.inner, x, y, s.log); break;
      case StepKind::copy:
      case StepKind::flatten:
      case StepKind::reshape: std::memcpy(y, x, size_t(p.n) * sizeof(float)); break;
    }
  }
  for (size_t i = 0; i < m.outputs.size(); ++i) {
    if (!outputs[i]) continue;
    const int64_t n = output_numel(i);
    if (n) std::memcpy(outputs[i], ptr_[m.outputs[i]], size_t(n) * sizeof(float));
  }
}

}  // namespace hepnn::rt
