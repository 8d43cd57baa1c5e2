// Python entry points of the elementwise activations: act_forward(act, x, y, alpha, stream) and
// act_backward(act, x, y, dy, dx, alpha, stream). Any shape; every operand is seen flat.
#include <cmath>

#include "act_names.hpp"
#include <nanobind/stl/string.h>

#include "common.hpp"
#include "ops/activation.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/activation.hpp"
#endif

namespace {

using hepnn::py::Array;
namespace hp = hepnn::py;

// `like` names the operands that must match x exactly (dtype, device, shape, contiguity).
hepnn::DType check_operands(const char* op, const Array& x,
                            std::initializer_list<std::pair<const Array*, const char*>> like) {
  const hepnn::DType dt = hp::float_dtype(x, op, "x");
  hp::require_supported_device(x, op, "x");
  hp::require_contiguous(x, op, "x");
  const auto shape = hp::shape_of(x);
  for (const auto& [a, name] : like) {
    hp::require_same_device(*a, x, op, name);
    hp::require_dtype(*a, dt, op, name);
    hp::require_shape(*a, shape, op, name);
    hp::require_contiguous(*a, op, name);
  }
  return dt;
}

void check_alpha(double alpha, const char* op) {
  hepnn::check_value(std::isfinite(alpha), op, "alpha must be finite, got " + std::to_string(alpha));
}

void act_forward(const std::string& name, const Array& x, const Array& y, double alpha,
                 std::uintptr_t stream) {
  const char* op = "act_forward";
  const hepnn::Act act = hp::parse_act(name, op);
  check_alpha(alpha, op);
  const hepnn::DType dt = check_operands(op, x, {{&y, "y"}});
  const int64_t n = hp::numel(x);
  nanobind::gil_scoped_release release;
  if (hp::is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    if (dt == hepnn::DType::f32)
      hepnn::cuda::act_forward(act, n, hp::ptr<float>(x), hp::ptr<float>(y), alpha, hp::to_stream(stream));
    else
      hepnn::cuda::act_forward(act, n, hp::ptr<double>(x), hp::ptr<double>(y), alpha, hp::to_stream(stream));
#endif
  } else if (dt == hepnn::DType::f32) {
    hepnn::cpu::act_forward(act, n, hp::ptr<float>(x), hp::ptr<float>(y), alpha);
  } else {
    hepnn::cpu::act_forward(act, n, hp::ptr<double>(x), hp::ptr<double>(y), alpha);
  }
}

void act_backward(const std::string& name, const Array& x, const Array& y, const Array& dy,
                  const Array& dx, double alpha, std::uintptr_t stream) {
  const char* op = "act_backward";
  const hepnn::Act act = hp::parse_act(name, op);
  check_alpha(alpha, op);
  const hepnn::DType dt = check_operands(op, x, {{&y, "y"}, {&dy, "dy"}, {&dx, "dx"}});
  const int64_t n = hp::numel(x);
  nanobind::gil_scoped_release release;
  if (hp::is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    if (dt == hepnn::DType::f32)
      hepnn::cuda::act_backward(act, n, hp::ptr<float>(x), hp::ptr<float>(y), hp::ptr<float>(dy),
                                hp::ptr<float>(dx), alpha, hp::to_stream(stream));
    else
      hepnn::cuda::act_backward(act, n, hp::ptr<double>(x), hp::ptr<double>(y), hp::ptr<double>(dy),
                                hp::ptr<double>(dx), alpha, hp::to_stream(stream));
#endif
  } else if (dt == hepnn::DType::f32) {
    hepnn::cpu::act_backward(act, n, hp::ptr<float>(x), hp::ptr<float>(y), hp::ptr<float>(dy),
                             hp::ptr<float>(dx), alpha);
  } else {
    hepnn::cpu::act_backward(act, n, hp::ptr<double>(x), hp::ptr<double>(y), hp::ptr<double>(dy),
                             hp::ptr<double>(dx), alpha);
  }
}

}  // namespace

HEPNN_BINDING(activation) {
  namespace nb = nanobind;
  m.def("act_forward", &act_forward, nb::arg("act"), nb::arg("x"), nb::arg("y"), nb::arg("alpha") = 0.0,
        nb::arg("stream") = 0, "y = act(x) elementwise; alpha: leaky_relu slope or elu alpha.");
  m.def("act_backward", &act_backward, nb::arg("act"), nb::arg("x"), nb::arg("y"), nb::arg("dy"),
        nb::arg("dx"), nb::arg("alpha") = 0.0, nb::arg("stream") = 0,
        "dx = dy * act'(x), from the forward input x and output y.");
}
