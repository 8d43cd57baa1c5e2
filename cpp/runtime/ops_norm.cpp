// Normalisation steps on the training kernels: BatchNormalization in inference mode (running
// statistics; ops/batchnorm.hpp over (N, C, S)) and LayerNormalization over the axes from `axis`
// on (ops/layernorm.hpp over rows x the normalised length).
#include "ops/batchnorm.hpp"
#include "ops/layernorm.hpp"
#include "runtime/ops.hpp"

namespace hepnn::rt {

void infer_norm(const Step& s, const std::vector<InferIn>& in, Shape& out, StepPlan& p) {
  const Shape& x = *in[0].shape;
  ConvPlan& cp = p.conv;
  out = x;
  if (s.kind == StepKind::batchnorm) {
    if (x.size() < 2) op_fail(s, "input has shape " + shape_str(x) + ", expected (N, C, ...)");
    const char* names[] = {"", "scale", "B", "input_mean", "input_var"};
    for (int i = 1; i < 5; ++i)
      if (in[i].shape->size() != 1 || (*in[i].shape)[0] != x[1])
        op_fail(s, std::string(names[i]) + " has shape " + shape_str(*in[i].shape) + ", expected (" +
                       std::to_string(x[1]) + ",) for an input of shape " + shape_str(x));
    cp.N = x[0];
    cp.C = x[1];
    cp.S = prod(x, 2, x.size());
    return;
  }
  const int64_t r = int64_t(x.size());
  if (r < 1) op_fail(s, "input must be at least 1-d");
  const int64_t axis = norm_axis(s, s.axis, r, "axis");
  cp.N = prod(x, 0, size_t(axis));
  cp.C = prod(x, size_t(axis), x.size());
  // Scale and B must cover the normalised axes exactly (the kernel takes one value per element
  // of a row): their trailing dims equal x's, any further leading ones of x being 1.
  for (size_t i = 1; i < 3; ++i) {
    if (i >= in.size() || !in[i].shape) continue;
    const Shape& w = *in[i].shape;
    bool ok = int64_t(w.size()) <= r - axis && prod(w, 0, w.size()) == cp.C;
    for (size_t d = 0; ok && d < w.size(); ++d) ok = w[w.size() - 1 - d] == x[x.size() - 1 - d];
    if (!ok)
      op_fail(s, std::string(i == 1 ? "Scale" : "B") + " has shape " + shape_str(w) + ", expected the normalised shape " +
                     shape_str(Shape(x.begin() + axis, x.end())));
  }
}

void run_norm(const Step& s, const StepPlan& p, const void* const* in, void* out) {
  const ConvPlan& cp = p.conv;
  const float* x = static_cast<const float*>(in[0]);
  float* y = static_cast<float*>(out);
  auto f = [&](size_t i) { return i < s.in.size() ? static_cast<const float*>(in[i]) : nullptr; };
  if (s.kind == StepKind::batchnorm) {
    // NOTE: in eval mode the kernel only reads the running statistics (they are non-const for
    // the training update), so passing the model's constants is safe.
    cpu::batchnorm_forward<float>(cp.N, cp.C, cp.S, x, nullptr, f(1), f(2), const_cast<float*>(f(3)),
                                  const_cast<float*>(f(4)), false, 0.0, s.conv.eps, y, nullptr, nullptr);
  } else {
    cpu::layer_norm_forward<float>(cp.N, cp.C, x, f(1), f(2), s.conv.eps, y, nullptr, nullptr);
  }
}

}  // namespace hepnn::rt
