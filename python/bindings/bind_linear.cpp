// Python binding of the fused linear layer: linear_forward, linear_backward (PyTorch layout,
// w is (out, in)) and act_needs_preactivation; CPU or CUDA by where the arrays live.
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "act_names.hpp"
#include "common.hpp"

#include <nanobind/stl/string.h>
#include "ops/linear.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/linear.hpp"
#endif

namespace nb = nanobind;

namespace hepnn::py {
namespace {


// Device, dtype and contiguity of every present operand; returns the common dtype.
DType check_common(const char* op, std::initializer_list<Named> arrays) {
  const Array& ref = *arrays.begin()->first;
  const DType dt = float_dtype(ref, op, arrays.begin()->second);
  for (const auto& [a, name] : arrays) {
    if (!a) continue;
    require_supported_device(*a, op, name);
    require_same_device(*a, ref, op, name);
    require_dtype(*a, dt, op, name);
    if (numel(*a) > 0) require_contiguous(*a, op, name);
  }
  return dt;
}

struct Dims {
  int64_t B, I, O;
};

Dims check_x_w(const char* op, const Array& x, const Array& w) {
  require_ndim(x, 2, op, "x");
  require_ndim(w, 2, op, "w");
  if (x.shape(1) != w.shape(1))
    throw ValueError(op_message(op, "x has shape " + shape_str(x) + " but w has shape " + shape_str(w) +
                                        ": input features " + std::to_string(x.shape(1)) + " and " +
                                        std::to_string(w.shape(1)) + " differ (w is (out, in))"));
  return {int64_t(x.shape(0)), int64_t(x.shape(1)), int64_t(w.shape(0))};
}

void check_alpha(const char* op, double alpha) {
  if (!std::isfinite(alpha))
    throw ValueError(op_message(op, "alpha must be finite, got " + std::to_string(alpha)));
}

template <typename T>
void forward(const Dims& d, const Array& x, const Array& w, const OptArray& b, const Array& y,
             const OptArray& z, Act act, double alpha, std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::linear_forward<T>(d.B, d.I, d.O, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(b), act, alpha,
                                   ptr<T>(y), ptr_or_null<T>(z), to_stream(stream));
#endif
  } else {
    hepnn::cpu::linear_forward<T>(d.B, d.I, d.O, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(b), act, alpha,
                                  ptr<T>(y), ptr_or_null<T>(z));
  }
}

template <typename T>
void backward(const Dims& d, const Array& x, const Array& w, const OptArray& z, const Array& y,
              const Array& dy, const OptArray& dx, const Array& dw, const OptArray& db, Act act,
              double alpha, std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::linear_backward<T>(d.B, d.I, d.O, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(z), ptr<T>(y),
                                    ptr<T>(dy), act, alpha, ptr_or_null<T>(dx), ptr<T>(dw),
                                    ptr_or_null<T>(db), to_stream(stream));
#endif
  } else {
    hepnn::cpu::linear_backward<T>(d.B, d.I, d.O, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(z), ptr<T>(y),
                                   ptr<T>(dy), act, alpha, ptr_or_null<T>(dx), ptr<T>(dw),
                                   ptr_or_null<T>(db));
  }
}

const Array* opt(const OptArray& a) { return a ? &*a : nullptr; }

}  // namespace
}  // namespace hepnn::py

HEPNN_BINDING(linear) {
  using namespace hepnn::py;
  m.def(
      "linear_forward",
      [](Array x, Array w, OptArray b, Array y, OptArray z, const std::string& act_name,
         double alpha, std::uintptr_t stream) {
        const char* op = "linear_forward";
        const hepnn::Act act = parse_act(act_name, op);
        const hepnn::DType dt = check_common(op, {{&x, "x"}, {&w, "w"}, {opt(b), "b"}, {&y, "y"}, {opt(z), "z"}});
        const Dims d = check_x_w(op, x, w);
        if (b) require_shape(*b, {d.O}, op, "b");
        require_shape(y, {d.B, d.O}, op, "y");
        if (z) require_shape(*z, {d.B, d.O}, op, "z");
        check_alpha(op, alpha);
        require_disjoint(op, {{&y, "y"}, {opt(z), "z"}}, {{&x, "x"}, {&w, "w"}, {opt(b), "b"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32) forward<float>(d, x, w, b, y, z, act, alpha, stream);
        else forward<double>(d, x, w, b, y, z, act, alpha, stream);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("b").none(), nb::arg("y"), nb::arg("z").none(),
      nb::arg("act") = "none", nb::arg("alpha") = 0.0, nb::arg("stream") = 0,
      "y = act(x @ w.T + b); z (optional) receives x @ w.T + b. x (B, I), w (O, I), b (O,) or None.");

  m.def(
      "linear_backward",
      [](Array x, Array w, OptArray z, Array y, Array dy, OptArray dx, Array dw, OptArray db,
         const std::string& act_name, double alpha, std::uintptr_t stream) {
        const char* op = "linear_backward";
        const hepnn::Act act = parse_act(act_name, op);
        const hepnn::DType dt = check_common(op, {{&x, "x"}, {&w, "w"}, {opt(z), "z"}, {&y, "y"}, {&dy, "dy"},
                                           {opt(dx), "dx"}, {&dw, "dw"}, {opt(db), "db"}});
        const Dims d = check_x_w(op, x, w);
        if (!z && hepnn::cpu::act_needs_preactivation(act))
          throw hepnn::ValueError(hepnn::op_message(op, "activation '" + act_name +
                                                            "' needs the pre-activation z (keep z from linear_forward)"));
        if (z) require_shape(*z, {d.B, d.O}, op, "z");
        require_shape(y, {d.B, d.O}, op, "y");
        require_shape(dy, {d.B, d.O}, op, "dy");
        if (dx) require_shape(*dx, {d.B, d.I}, op, "dx");
        require_shape(dw, {d.O, d.I}, op, "dw");
        if (db) require_shape(*db, {d.O}, op, "db");
        check_alpha(op, alpha);
        require_disjoint(op, {{opt(dx), "dx"}, {&dw, "dw"}, {opt(db), "db"}},
                         {{&x, "x"}, {&w, "w"}, {opt(z), "z"}, {&y, "y"}, {&dy, "dy"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32) backward<float>(d, x, w, z, y, dy, dx, dw, db, act, alpha, stream);
        else backward<double>(d, x, w, z, y, dy, dx, dw, db, act, alpha, stream);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("z").none(), nb::arg("y"), nb::arg("dy"),
      nb::arg("dx").none(), nb::arg("dw"), nb::arg("db").none(), nb::arg("act") = "none",
      nb::arg("alpha") = 0.0, nb::arg("stream") = 0,
      "Gradients of linear_forward: dx (or None), dw, db (or None) from dy; z may be None unless "
      "act_needs_preactivation(act).");

  m.def(
      "act_needs_preactivation",
      [](const std::string& act_name) {
        return hepnn::cpu::act_needs_preactivation(parse_act(act_name, "act_needs_preactivation"));
      },
      nb::arg("act"), "True when the backward of `act` needs the pre-activation z (not just y).");
}
