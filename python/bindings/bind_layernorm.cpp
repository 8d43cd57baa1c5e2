// Python entry points of layer normalisation over the last axis:
// layer_norm_forward(x, weight, bias, y, mean, rstd, eps, stream) and
// layer_norm_backward(x, weight, mean, rstd, dy, dx, dweight, dbias, stream).
#include "common.hpp"
#include "ops/layernorm.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/layernorm.hpp"
#endif

namespace {

using hepnn::py::Array;
using hepnn::py::OptArray;
namespace hp = hepnn::py;
constexpr const char* kOp = "layer_norm";

struct Rows {
  int64_t R, C;
  hepnn::DType dt;
};

void require_like(const OptArray& a, const Array& ref, hepnn::DType dt, const std::vector<int64_t>& shape,
                  const char* name) {
  if (!a) return;
  hp::require_same_device(*a, ref, kOp, name);
  hp::require_dtype(*a, dt, kOp, name);
  hp::require_shape(*a, shape, kOp, name);
  hp::require_contiguous(*a, kOp, name);
}

Rows check_x(const Array& x) {
  Rows r{};
  r.dt = hp::float_dtype(x, kOp, "x");
  hp::require_supported_device(x, kOp, "x");
  hp::require_contiguous(x, kOp, "x");
  hepnn::check_value(x.ndim() >= 1, kOp, "x needs at least 1 dimension");
  r.C = x.shape(x.ndim() - 1);
  hepnn::check_value(r.C >= 1, kOp, "the normalised (last) dimension is empty");
  r.R = hp::numel(x) / r.C;
  return r;
}

void layer_norm_forward(const Array& x, const OptArray& weight, const OptArray& bias, const Array& y,
                        const OptArray& mean, const OptArray& rstd, double eps, std::uintptr_t stream) {
  const Rows r = check_x(x);
  require_like(weight, x, r.dt, {r.C}, "weight");
  require_like(bias, x, r.dt, {r.C}, "bias");
  require_like(y, x, r.dt, hp::shape_of(x), "y");
  require_like(mean, x, r.dt, {r.R}, "mean");
  require_like(rstd, x, r.dt, {r.R}, "rstd");
  hepnn::check_value(eps >= 0.0, kOp, "eps must be >= 0, got " + std::to_string(eps));
  nanobind::gil_scoped_release release;
#define HEPNN_ARGS(T)                                                                            \
  r.R, r.C, hp::ptr<T>(x), hp::ptr_or_null<T>(weight), hp::ptr_or_null<T>(bias), eps, hp::ptr<T>(y), \
      hp::ptr_or_null<T>(mean), hp::ptr_or_null<T>(rstd)
  if (hp::is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    if (r.dt == hepnn::DType::f32)
      hepnn::cuda::layer_norm_forward(HEPNN_ARGS(float), hp::to_stream(stream));
    else
      hepnn::cuda::layer_norm_forward(HEPNN_ARGS(double), hp::to_stream(stream));
#endif
  } else if (r.dt == hepnn::DType::f32) {
    hepnn::cpu::layer_norm_forward(HEPNN_ARGS(float));
  } else {
    hepnn::cpu::layer_norm_forward(HEPNN_ARGS(double));
  }
#undef HEPNN_ARGS
}

void layer_norm_backward(const Array& x, const OptArray& weight, const Array& mean, const Array& rstd,
                         const Array& dy, const OptArray& dx, const OptArray& dweight,
                         const OptArray& dbias, std::uintptr_t stream) {
  const Rows r = check_x(x);
  require_like(weight, x, r.dt, {r.C}, "weight");
  require_like(mean, x, r.dt, {r.R}, "mean");
  require_like(rstd, x, r.dt, {r.R}, "rstd");
  require_like(dy, x, r.dt, hp::shape_of(x), "dy");
  require_like(dx, x, r.dt, hp::shape_of(x), "dx");
  require_like(dweight, x, r.dt, {r.C}, "dweight");
  require_like(dbias, x, r.dt, {r.C}, "dbias");
  nanobind::gil_scoped_release release;
#define HEPNN_ARGS(T)                                                                          \
  r.R, r.C, hp::ptr<T>(x), hp::ptr_or_null<T>(weight), hp::ptr<T>(mean), hp::ptr<T>(rstd),     \
      hp::ptr<T>(dy), hp::ptr_or_null<T>(dx), hp::ptr_or_null<T>(dweight), hp::ptr_or_null<T>(dbias)
  if (hp::is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    if (r.dt == hepnn::DType::f32)
      hepnn::cuda::layer_norm_backward(HEPNN_ARGS(float), hp::to_stream(stream));
    else
      hepnn::cuda::layer_norm_backward(HEPNN_ARGS(double), hp::to_stream(stream));
#endif
  } else if (r.dt == hepnn::DType::f32) {
    hepnn::cpu::layer_norm_backward(HEPNN_ARGS(float));
  } else {
    hepnn::cpu::layer_norm_backward(HEPNN_ARGS(double));
  }
#undef HEPNN_ARGS
}

}  // namespace

HEPNN_BINDING(layernorm) {
  namespace nb = nanobind;
  m.def("layer_norm_forward", &layer_norm_forward, nb::arg("x"), nb::arg("weight").none(),
        nb::arg("bias").none(), nb::arg("y"), nb::arg("mean").none(), nb::arg("rstd").none(),
        nb::arg("eps") = 1e-5, nb::arg("stream") = 0,
        "y = layer_norm(x) over the last axis; mean / rstd (per row) kept for the backward.");
  m.def("layer_norm_backward", &layer_norm_backward, nb::arg("x"), nb::arg("weight").none(),
        nb::arg("mean"), nb::arg("rstd"), nb::arg("dy"), nb::arg("dx").none(),
        nb::arg("dweight").none(), nb::arg("dbias").none(), nb::arg("stream") = 0,
        "dx, dweight, dbias of layer_norm from dy and the saved row statistics.");
}
