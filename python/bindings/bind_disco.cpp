// Binding of the DisCo loss: one fused call returns the value and (optionally) d loss / d x, so a
// training step runs the two O(B^2) passes once instead of repeating the first in a backward call.
// Shapes, dtypes, devices and contiguity are checked here; finiteness and weights in the kernel.
#include <cmath>
#include <string>

#include "common.hpp"
#include "ops/disco.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/disco.hpp"
#endif

namespace hepnn::py {
namespace {

constexpr const char* kOp = "disco";

// A 1-D operand of B elements matching x in device and dtype, C-contiguous.
void require_like_x(const Array& a, const Array& x, DType dt, index_t B, const char* name) {
  require_same_device(a, x, kOp, name);
  require_dtype(a, dt, kOp, name);
  require_shape(a, {B}, kOp, name);
  require_contiguous(a, kOp, name);
}

void disco_loss(const Array& x, const Array& y, const OptArray& weight, const Array& loss,
                const OptArray& grad, double power, std::uintptr_t stream) {
  require_supported_device(x, kOp, "x");
  const DType dt = float_dtype(x, kOp, "x");
  if (x.ndim() != 1)
    throw ValueError(op_message(kOp, "x has shape " + shape_str(x) + ", expected (B,) with one score per event"));
  require_contiguous(x, kOp, "x");
  const auto B = static_cast<index_t>(x.shape(0));
  if (B < 2) throw ValueError(op_message(kOp, "needs at least 2 events, got B=" + std::to_string(B)));
  require_like_x(y, x, dt, B, "y");
  if (weight) require_like_x(*weight, x, dt, B, "weight");
  if (grad) require_like_x(*grad, x, dt, B, "grad");
  require_same_device(loss, x, kOp, "loss");
  require_dtype(loss, dt, kOp, "loss");
  if (numel(loss) != 1)
    throw ValueError(op_message(kOp, "loss must have exactly 1 element, got shape " + shape_str(loss)));
  if (!(std::isfinite(power) && power > 0.0))
    throw ValueError(op_message(kOp, "power must be finite and > 0, got " + std::to_string(power)));
  auto run = [&](auto tag) {
    using T = decltype(tag);
    T* w = ptr_or_null<T>(weight);
    T* dx = ptr_or_null<T>(grad);
    nb::gil_scoped_release release;
    if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
      hepnn::cuda::disco_loss<T>(B, ptr<T>(x), ptr<T>(y), w, power, ptr<T>(loss), dx, to_stream(stream));
#endif
    } else {
      hepnn::cpu::disco_loss<T>(B, ptr<T>(x), ptr<T>(y), w, power, ptr<T>(loss), dx);
    }
  };
  if (dt == DType::f32) run(float{}); else run(double{});
}

}  // namespace
}  // namespace hepnn::py

HEPNN_BINDING(disco) {
  using namespace hepnn::py;
  namespace nb = nanobind;
  m.def("disco_loss", &disco_loss, nb::arg("x"), nb::arg("y"), nb::arg("weight").none(), nb::arg("loss"),
        nb::arg("grad").none(), nb::arg("power") = 1.0, nb::arg("stream") = 0,
        "Event-weighted squared distance correlation dCorr^2(x, y)**power (DisCo) into `loss` (1 element)\n"
        "and, when `grad` (B,) is given, its gradient with respect to x. x, y, weight: (B,), B >= 2;\n"
        "weight None (equal weights) or non-negative with a positive sum. O(B^2) time, O(B) memory.");
}
