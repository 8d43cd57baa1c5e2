// Python entry point of the axis reductions: reduce(x, y, axis, op, argmax, stream) with op
// "sum" | "mean" | "max"; y has x's shape without the axis; argmax (int64, like y) only for max.
#include <nanobind/stl/string.h>

#include "common.hpp"
#include "ops/reduce.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/reduce.hpp"
#endif

namespace {

using hepnn::py::Array;
using hepnn::py::OptArray;
using hepnn::cpu::ReduceOp;
namespace hp = hepnn::py;

ReduceOp parse_op(const std::string& name) {
  if (name == "sum") return ReduceOp::sum;
  if (name == "mean") return ReduceOp::mean;
  if (name == "max") return ReduceOp::max;
  throw hepnn::ValueError(hepnn::op_message("reduce", "unknown op '" + name + "'; expected 'sum', 'mean' or 'max'"));
}

void reduce(const Array& x, const Array& y, int64_t axis, const std::string& op_name, const OptArray& argmax,
            std::uintptr_t stream) {
  const char* op = "reduce";
  const ReduceOp rop = parse_op(op_name);
  const hepnn::DType dt = hp::float_dtype(x, op, "x");
  hp::require_supported_device(x, op, "x");
  hp::require_contiguous(x, op, "x");
  const int64_t nd = static_cast<int64_t>(x.ndim());
  hepnn::check_value(nd >= 1, op, "needs an array with at least 1 dimension, got a 0-d array");
  hepnn::check_value(axis >= -nd && axis < nd, op,
                     "axis " + std::to_string(axis) + " is out of range for a " + std::to_string(nd) + "-d array");
  if (axis < 0) axis += nd;
  int64_t outer = 1, dim = 1, inner = 1;
  std::vector<int64_t> out_shape;
  for (int64_t i = 0; i < nd; ++i) {
    (i < axis ? outer : i == axis ? dim : inner) *= x.shape(i);
    if (i != axis) out_shape.push_back(x.shape(i));
  }
  hepnn::check_value(!(rop == ReduceOp::max && dim == 0 && outer * inner > 0), op,
                     "max over an empty axis has no value");
  hp::require_same_device(y, x, op, "y");
  hp::require_dtype(y, dt, op, "y");
  hp::require_shape(y, out_shape, op, "y");
  hp::require_contiguous(y, op, "y");
  if (argmax) {
    hepnn::check_value(rop == ReduceOp::max, op, "argmax is only produced by op 'max', got '" + op_name + "'");
    hp::require_same_device(*argmax, x, op, "argmax");
    hp::require_int64(*argmax, op, "argmax");
    hp::require_shape(*argmax, out_shape, op, "argmax");
    hp::require_contiguous(*argmax, op, "argmax");
  }
  int64_t* am = hp::ptr_or_null<int64_t>(argmax);
  nanobind::gil_scoped_release release;
  if (hp::is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    if (dt == hepnn::DType::f32)
      hepnn::cuda::reduce_forward(rop, outer, dim, inner, hp::ptr<float>(x), hp::ptr<float>(y), am,
                                  hp::to_stream(stream));
    else
      hepnn::cuda::reduce_forward(rop, outer, dim, inner, hp::ptr<double>(x), hp::ptr<double>(y), am,
                                  hp::to_stream(stream));
#endif
  } else if (dt == hepnn::DType::f32) {
    hepnn::cpu::reduce_forward(rop, outer, dim, inner, hp::ptr<float>(x), hp::ptr<float>(y), am);
  } else {
    hepnn::cpu::reduce_forward(rop, outer, dim, inner, hp::ptr<double>(x), hp::ptr<double>(y), am);
  }
}

}  // namespace

HEPNN_BINDING(reduce) {
  namespace nb = nanobind;
  m.def("reduce", &reduce, nb::arg("x"), nb::arg("y"), nb::arg("axis"), nb::arg("op"),
        nb::arg("argmax") = nb::none(), nb::arg("stream") = 0,
        "y = sum | mean | max of x along axis; argmax (int64, y's shape) gets the first maximum's index.");
}
