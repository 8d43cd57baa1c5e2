// Python entry points of the rational-quadratic spline (elementwise over x of any shape S, with
// widths / heights of shape S + (K,) and interior derivatives S + (K-1,)):
// spline_forward(x, widths, heights, derivs, y, logdet, bound, min_width, min_height, min_derivative, stream),
// spline_inverse(y, widths, heights, derivs, x, logdet, ...) and
// spline_backward(x, widths, heights, derivs, dy, dlogdet, dx, dwidths, dheights, dderivs, ...).
#include "common.hpp"
#include "ops/spline.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/spline.hpp"
#endif

namespace {

using hepnn::py::Array;
using hepnn::py::Named;
using hepnn::py::OptArray;
namespace hp = hepnn::py;
constexpr const char* kOp = "spline";

struct Checked {
  hepnn::SplineShape s;
  hepnn::DType dt;
};

const Array* opt(const OptArray& a) { return a ? &*a : nullptr; }

void require_like(const OptArray& a, const Array& ref, hepnn::DType dt, const std::vector<int64_t>& shape,
                  const char* name) {
  if (!a) return;
  hp::require_same_device(*a, ref, kOp, name);
  hp::require_dtype(*a, dt, kOp, name);
  hp::require_shape(*a, shape, kOp, name);
  hp::require_contiguous(*a, kOp, name);
}

std::vector<int64_t> with_last(std::vector<int64_t> shape, int64_t last) {
  shape.push_back(last);
  return shape;
}

// x (the forward's input or the inverse's y) fixes dtype, device and S; the widths fix K.
Checked check_inputs(const Array& x, const char* xname, const Array& w, const Array& h, const Array& d,
                     double bound, double min_width, double min_height, double min_derivative) {
  Checked c{};
  c.dt = hp::float_dtype(x, kOp, xname);
  hp::require_supported_device(x, kOp, xname);
  hp::require_contiguous(x, kOp, xname);
  hepnn::check_value(w.ndim() == x.ndim() + 1, kOp,
                     std::string("widths must have shape ") + xname + ".shape + (K,), got " +
                         hp::shape_str(w) + " for " + xname + " " + hp::shape_str(x));
  const int64_t K = w.shape(w.ndim() - 1);
  hepnn::check_value(K >= 2 && K <= hepnn::kSplineMaxBins, kOp,
                     "bin count K (last dimension of widths) must be in [2, " +
                         std::to_string(hepnn::kSplineMaxBins) + "], got " + std::to_string(K));
  const auto S = hp::shape_of(x);
  require_like(w, x, c.dt, with_last(S, K), "widths");
  require_like(h, x, c.dt, with_last(S, K), "heights");
  require_like(d, x, c.dt, with_last(S, K - 1), "derivatives");
  c.s.M = hp::numel(x);
  c.s.K = static_cast<int>(K);
  c.s.bound = bound;
  c.s.min_width = min_width;
  c.s.min_height = min_height;
  c.s.min_derivative = min_derivative;
  hepnn::check_spline_shape(c.s, kOp);
  return c;
}

// forward (inverse false) or inverse: same operands, different direction.
void spline_apply(bool inverse, const Array& in, const Array& w, const Array& h, const Array& d,
                  const Array& out, const Array& logdet, double bound, double min_width,
                  double min_height, double min_derivative, std::uintptr_t stream) {
  const char* in_name = inverse ? "y" : "x";
  const char* out_name = inverse ? "x" : "y";
  const Checked c = check_inputs(in, in_name, w, h, d, bound, min_width, min_height, min_derivative);
  require_like(out, in, c.dt, hp::shape_of(in), out_name);
  require_like(logdet, in, c.dt, hp::shape_of(in), "logdet");
  hp::require_disjoint(kOp, {{&out, out_name}, {&logdet, "logdet"}},
                       {{&in, in_name}, {&w, "widths"}, {&h, "heights"}, {&d, "derivatives"}});
  nanobind::gil_scoped_release release;
#define HEPNN_ARGS(T) \
  c.s, hp::ptr<T>(in), hp::ptr<T>(w), hp::ptr<T>(h), hp::ptr<T>(d), hp::ptr<T>(out), hp::ptr<T>(logdet)
  if (hp::is_cuda(in)) {
#if defined(HEPNN_WITH_CUDA)
    const hepnn::Stream st = hp::to_stream(stream);
    if (c.dt == hepnn::DType::f32)
      inverse ? hepnn::cuda::spline_inverse<float>(HEPNN_ARGS(float), st)
              : hepnn::cuda::spline_forward<float>(HEPNN_ARGS(float), st);
    else
      inverse ? hepnn::cuda::spline_inverse<double>(HEPNN_ARGS(double), st)
              : hepnn::cuda::spline_forward<double>(HEPNN_ARGS(double), st);
#endif
  } else if (c.dt == hepnn::DType::f32) {
    inverse ? hepnn::cpu::spline_inverse<float>(HEPNN_ARGS(float))
            : hepnn::cpu::spline_forward<float>(HEPNN_ARGS(float));
  } else {
    inverse ? hepnn::cpu::spline_inverse<double>(HEPNN_ARGS(double))
            : hepnn::cpu::spline_forward<double>(HEPNN_ARGS(double));
  }
#undef HEPNN_ARGS
}

void spline_forward(const Array& x, const Array& w, const Array& h, const Array& d, const Array& y,
                    const Array& logdet, double bound, double min_width, double min_height,
                    double min_derivative, std::uintptr_t stream) {
  spline_apply(false, x, w, h, d, y, logdet, bound, min_width, min_height, min_derivative, stream);
}

void spline_inverse(const Array& y, const Array& w, const Array& h, const Array& d, const Array& x,
                    const Array& logdet, double bound, double min_width, double min_height,
                    double min_derivative, std::uintptr_t stream) {
  spline_apply(true, y, w, h, d, x, logdet, bound, min_width, min_height, min_derivative, stream);
}

void spline_backward(const Array& x, const Array& w, const Array& h, const Array& d, const OptArray& dy,
                     const OptArray& dlogdet, const OptArray& dx, const OptArray& dw,
                     const OptArray& dh, const OptArray& dd, double bound, double min_width,
                     double min_height, double min_derivative, std::uintptr_t stream) {
  const Checked c = check_inputs(x, "x", w, h, d, bound, min_width, min_height, min_derivative);
  const auto S = hp::shape_of(x);
  const int64_t K = c.s.K;
  require_like(dy, x, c.dt, S, "dy");
  require_like(dlogdet, x, c.dt, S, "dlogdet");
  require_like(dx, x, c.dt, S, "dx");
  require_like(dw, x, c.dt, with_last(S, K), "dwidths");
  require_like(dh, x, c.dt, with_last(S, K), "dheights");
  require_like(dd, x, c.dt, with_last(S, K - 1), "dderivatives");
  hp::require_disjoint(kOp, {{opt(dx), "dx"}, {opt(dw), "dwidths"}, {opt(dh), "dheights"}, {opt(dd), "dderivatives"}},
                       {{&x, "x"}, {&w, "widths"}, {&h, "heights"}, {&d, "derivatives"},
                        {opt(dy), "dy"}, {opt(dlogdet), "dlogdet"}});
  nanobind::gil_scoped_release release;
#define HEPNN_ARGS(T)                                                                             \
  c.s, hp::ptr<T>(x), hp::ptr<T>(w), hp::ptr<T>(h), hp::ptr<T>(d), hp::ptr_or_null<T>(dy),          \
      hp::ptr_or_null<T>(dlogdet), hp::ptr_or_null<T>(dx), hp::ptr_or_null<T>(dw), hp::ptr_or_null<T>(dh), \
      hp::ptr_or_null<T>(dd)
  if (hp::is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    if (c.dt == hepnn::DType::f32)
      hepnn::cuda::spline_backward<float>(HEPNN_ARGS(float), hp::to_stream(stream));
    else
      hepnn::cuda::spline_backward<double>(HEPNN_ARGS(double), hp::to_stream(stream));
#endif
  } else if (c.dt == hepnn::DType::f32) {
    hepnn::cpu::spline_backward<float>(HEPNN_ARGS(float));
  } else {
    hepnn::cpu::spline_backward<double>(HEPNN_ARGS(double));
  }
#undef HEPNN_ARGS
}

}  // namespace

HEPNN_BINDING(spline) {
  namespace nb = nanobind;
  m.def("spline_forward", &spline_forward, nb::arg("x"), nb::arg("widths"), nb::arg("heights"),
        nb::arg("derivatives"), nb::arg("y"), nb::arg("logdet"), nb::arg("bound") = 3.0,
        nb::arg("min_width") = 1e-3, nb::arg("min_height") = 1e-3, nb::arg("min_derivative") = 1e-3,
        nb::arg("stream") = 0,
        "y = rational-quadratic spline(x) elementwise and logdet = log|dy/dx| (identity outside "
        "[-bound, bound]).");
  m.def("spline_inverse", &spline_inverse, nb::arg("y"), nb::arg("widths"), nb::arg("heights"),
        nb::arg("derivatives"), nb::arg("x"), nb::arg("logdet"), nb::arg("bound") = 3.0,
        nb::arg("min_width") = 1e-3, nb::arg("min_height") = 1e-3, nb::arg("min_derivative") = 1e-3,
        nb::arg("stream") = 0, "x = spline^-1(y) elementwise and logdet = log|dx/dy|.");
  m.def("spline_backward", &spline_backward, nb::arg("x"), nb::arg("widths"), nb::arg("heights"),
        nb::arg("derivatives"), nb::arg("dy").none(), nb::arg("dlogdet").none(), nb::arg("dx").none(),
        nb::arg("dwidths").none(), nb::arg("dheights").none(), nb::arg("dderivatives").none(),
        nb::arg("bound") = 3.0, nb::arg("min_width") = 1e-3, nb::arg("min_height") = 1e-3,
        nb::arg("min_derivative") = 1e-3, nb::arg("stream") = 0,
        "Gradients of sum(dy * y + dlogdet * logdet) of spline_forward w.r.t. x and the "
        "unnormalised widths, heights and derivatives.");
}
