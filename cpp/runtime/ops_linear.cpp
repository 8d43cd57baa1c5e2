// Matrix products: linear (Gemm/MatMul with a constant weight, in linear_forward's layout, with
// fused bias and activation), general Gemm, and numpy-style MatMul with batch broadcasting.
#include <algorithm>

#include "ops/gemm.hpp"
#include "ops/linear.hpp"
#include "runtime/ops.hpp"

namespace hepnn::rt {
namespace {

// Batched product whose batch dims broadcast: an odometer over the batch dims, one gemm per
// output matrix.
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

void infer_linear(const Step& s, const std::vector<InferIn>& in, Shape& out, StepPlan& p) {
  const Shape& x = *in[0].shape;
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) op_fail(s, what);
  };
  if (s.kind == StepKind::linear) {
    const Shape& w = *in[1].shape;
    // From Gemm: 2-D input only (ONNX Gemm). From MatMul: any rank >= 1, numpy style.
    need(s.rank2_input ? x.size() == 2 : !x.empty(),
         "input has shape " + shape_str(x) + ", expected " + (s.rank2_input ? "2-D" : "at least 1-D"));
    need(x.back() == w[1], "input has shape " + shape_str(x) + ", the weight expects " + std::to_string(w[1]) + " features");
    p.M = prod(x, 0, x.size() - 1);
    p.K = w[1];
    p.N = w[0];
    out = x;
    out.back() = p.N;
  } else if (s.kind == StepKind::gemm) {
    const Shape& b = *in[1].shape;
    need(x.size() == 2 && b.size() == 2, "A and B must be 2-D, got " + shape_str(x) + " and " + shape_str(b));
    p.M = s.trans_a ? x[1] : x[0];
    p.K = s.trans_a ? x[0] : x[1];
    const int64_t kb = s.trans_b ? b[1] : b[0];
    p.N = s.trans_b ? b[0] : b[1];
    need(p.K == kb, "inner dimensions differ: A " + shape_str(x) + ", B " + shape_str(b));
    if (in.size() > 2 && in[2].shape && s.g_beta != 0.0f) {
      const Shape& c = *in[2].shape;
      need(c.size() <= 2, "C has shape " + shape_str(c));
      const int64_t cr = c.size() == 2 ? c[0] : 1, cc = c.empty() ? 1 : c.back();
      need((cr == 1 || cr == p.M) && (cc == 1 || cc == p.N),
           "C of shape " + shape_str(c) + " does not broadcast to (" + std::to_string(p.M) + ", " + std::to_string(p.N) + ")");
      p.c_rows = cr;
      p.c_cols = cc;
    }
    out = {p.M, p.N};
  } else {
    // numpy matmul: a 1-D left operand is a row, a 1-D right operand a column (both dropped from
    // the output); batch dimensions broadcast.
    const Shape& y = *in[1].shape;
    need(!x.empty() && !y.empty(), "operands must be at least 1-D, got " + shape_str(x) + " and " + shape_str(y));
    const Shape a = x.size() == 1 ? Shape{1, x[0]} : x;
    const Shape b = y.size() == 1 ? Shape{y[0], 1} : y;
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
    checked_numel(out, s.op + " batch");
    p.batch = prod(out, 0, out.size());
    // Layouts one gemm_batched call covers: each operand either spans the whole batch or is shared.
    p.general = !((a_full || a_none) && (b_full || b_none));
    p.stride_a = a_none ? 0 : p.M * p.K;
    p.stride_b = b_none ? 0 : p.K * p.N;
    if (x.size() > 1) out.push_back(p.M);
    if (y.size() > 1) out.push_back(p.N);
  }
}

void run_linear(const Step& s, const StepPlan& p, const void* const* in, void* out) {
  const float* x = static_cast<const float*>(in[0]);
  const float* w = static_cast<const float*>(in[1]);
  float* y = static_cast<float*>(out);
  if (s.kind == StepKind::linear) {
    cpu::linear_forward<float>(p.M, p.K, p.N, x, w, static_cast<const float*>(in[2]), s.act, s.alpha, y, nullptr);
  } else if (s.kind == StepKind::gemm) {
    float beta = 0.0f;
    if (p.c_rows) {
      const float* c = static_cast<const float*>(in[2]);
      for (int64_t i = 0; i < p.M; ++i)
        for (int64_t j = 0; j < p.N; ++j) y[i * p.N + j] = c[(p.c_rows == 1 ? 0 : i) * p.c_cols + (p.c_cols == 1 ? 0 : j)];
      beta = s.g_beta;
    }
    if (p.K == 0) {  // NOTE: an empty inner dimension: alpha*A@B is zero, C alone remains
      for (int64_t i = 0; i < p.M * p.N; ++i) y[i] = p.c_rows ? beta * y[i] : 0.0f;
      return;
    }
    cpu::gemm<float>(s.trans_a ? Trans::T : Trans::N, s.trans_b ? Trans::T : Trans::N, p.M, p.N, p.K, s.g_alpha, x,
                     s.trans_a ? p.M : p.K, w, s.trans_b ? p.K : p.N, beta, y, p.N);
  } else if (p.K == 0) {
    std::fill(y, y + p.n, 0.0f);
  } else if (p.general) {
    matmul_broadcast(p, x, w, y);
  } else if (p.stride_b == 0 && p.stride_a != 0) {
    // A shared right operand: the batch folds into the rows of one product.
    cpu::gemm<float>(Trans::N, Trans::N, p.M * p.batch, p.N, p.K, 1.0f, x, p.K, w, p.N, 0.0f, y, p.N);
  } else {
    cpu::gemm_batched<float>(Trans::N, Trans::N, p.batch, p.M, p.N, p.K, 1.0f, x, p.K, p.stride_a, w, p.N, p.stride_b,
                             0.0f, y, p.N, p.M * p.N);
  }
}

}  // namespace hepnn::rt
