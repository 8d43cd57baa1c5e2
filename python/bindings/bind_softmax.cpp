// Python entry points of softmax / log_softmax over one axis (negative axes count from the end):
// softmax_forward(x, y, axis, log, stream) and softmax_backward(y, dy, dx, axis, log, stream).
#include "common.hpp"
#include "ops/softmax.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/softmax.hpp"
#endif

namespace {

using hepnn::py::Array;
namespace hp = hepnn::py;

// The array as (outer, dim, inner) around `axis`, after checking the axis is in range.
struct Split {
  int64_t outer = 1, dim = 1, inner = 1;
};

Split split_axis(const Array& a, int64_t axis, const char* op) {
  const int64_t nd = static_cast<int64_t>(a.ndim());
  hepnn::check_value(nd >= 1, op, "needs an array with at least 1 dimension, got a 0-d array");
  hepnn::check_value(axis >= -nd && axis < nd, op,
                     "axis " + std::to_string(axis) + " is out of range for a " + std::to_string(nd) +
                         "-d array");
  if (axis < 0) axis += nd;
  Split s;
  for (int64_t i = 0; i < nd; ++i) (i < axis ? s.outer : i == axis ? s.dim : s.inner) *= a.shape(i);
  return s;
}

hepnn::DType check_like(const char* op, const Array& ref, const char* ref_name,
                        std::initializer_list<std::pair<const Array*, const char*>> like) {
  const hepnn::DType dt = hp::float_dtype(ref, op, ref_name);
  hp::require_supported_device(ref, op, ref_name);
  hp::require_contiguous(ref, op, ref_name);
  const auto shape = hp::shape_of(ref);
  for (const auto& [a, name] : like) {
    hp::require_same_device(*a, ref, op, name);
    hp::require_dtype(*a, dt, op, name);
    hp::require_shape(*a, shape, op, name);
    hp::require_contiguous(*a, op, name);
  }
  return dt;
}

void softmax_forward(const Array& x, const Array& y, int64_t axis, bool log, std::uintptr_t stream) {
  const char* op = log ? "log_softmax_forward" : "softmax_forward";
  const hepnn::DType dt = check_like(op, x, "x", {{&y, "y"}});
  const Split s = split_axis(x, axis, op);
  nanobind::gil_scoped_release release;
  if (hp::is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    if (dt == hepnn::DType::f32)
      hepnn::cuda::softmax_forward(s.outer, s.dim, s.inner, hp::ptr<float>(x), hp::ptr<float>(y), log,
                                   hp::to_stream(stream));
    else
      hepnn::cuda::softmax_forward(s.outer, s.dim, s.inner, hp::ptr<double>(x), hp::ptr<double>(y), log,
                                   hp::to_stream(stream));
#endif
  } else if (dt == hepnn::DType::f32) {
    hepnn::cpu::softmax_forward(s.outer, s.dim, s.inner, hp::ptr<float>(x), hp::ptr<float>(y), log);
  } else {
    hepnn::cpu::softmax_forward(s.outer, s.dim, s.inner, hp::ptr<double>(x), hp::ptr<double>(y), log);
  }
}

void softmax_backward(const Array& y, const Array& dy, const Array& dx, int64_t axis, bool log,
                      std::uintptr_t stream) {
  const char* op = log ? "log_softmax_backward" : "softmax_backward";
  const hepnn::DType dt = check_like(op, y, "y", {{&dy, "dy"}, {&dx, "dx"}});
  const Split s = split_axis(y, axis, op);
  nanobind::gil_scoped_release release;
  if (hp::is_cuda(y)) {
#if defined(HEPNN_WITH_CUDA)
    if (dt == hepnn::DType::f32)
      hepnn::cuda::softmax_backward(s.outer, s.dim, s.inner, hp::ptr<float>(y), hp::ptr<float>(dy),
                                    hp::ptr<float>(dx), log, hp::to_stream(stream));
    else
      hepnn::cuda::softmax_backward(s.outer, s.dim, s.inner, hp::ptr<double>(y), hp::ptr<double>(dy),
                                    hp::ptr<double>(dx), log, hp::to_stream(stream));
#endif
  } else if (dt == hepnn::DType::f32) {
    hepnn::cpu::softmax_backward(s.outer, s.dim, s.inner, hp::ptr<float>(y), hp::ptr<float>(dy),
                                 hp::ptr<float>(dx), log);
  } else {
    hepnn::cpu::softmax_backward(s.outer, s.dim, s.inner, hp::ptr<double>(y), hp::ptr<double>(dy),
                                 hp::ptr<double>(dx), log);
  }
}

}  // namespace

HEPNN_BINDING(softmax) {
  namespace nb = nanobind;
  m.def("softmax_forward", &softmax_forward, nb::arg("x"), nb::arg("y"), nb::arg("axis"),
        nb::arg("log") = false, nb::arg("stream") = 0,
        "y = softmax(x) (log_softmax when log) along axis.");
  m.def("softmax_backward", &softmax_backward, nb::arg("y"), nb::arg("dy"), nb::arg("dx"), nb::arg("axis"),
        nb::arg("log") = false, nb::arg("stream") = 0,
        "dx from the forward output y and the upstream gradient dy along axis.");
}
