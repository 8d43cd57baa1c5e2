// Python binding of the pooling kernels over NCHW arrays: max_pool2d (with int64 indices),
// max_pool_backward (also adaptive max's), avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d,
// forward and backward; CPU or CUDA by where the arrays live. Window parameters are (h, w) pairs.
#include <cstdint>
#include <string>

#include <nanobind/stl/pair.h>

#include "common.hpp"
#include "conv_checks.hpp"
#include "ops/conv_pool.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/conv_pool.hpp"
#endif

namespace nb = nanobind;

namespace hepnn::py {
namespace {

using conv::Pair;

// Window geometry from x (B, C, H, W); torch's rules: padding at most half the kernel, an output
// of at least one element.
PoolShape pool_shape(const char* op, const Array& x, Pair kernel, Pair stride, Pair padding, Pair dilation) {
  require_ndim(x, 4, op, "input");
  conv::require_at_least(kernel, 1, op, "kernel_size");
  conv::require_at_least(stride, 1, op, "stride");
  conv::require_at_least(padding, 0, op, "padding");
  conv::require_at_least(dilation, 1, op, "dilation");
  if (padding.first > kernel.first / 2 || padding.second > kernel.second / 2)
    throw ValueError(op_message(op, "padding " + conv::pair_str(padding) + " must be at most half of kernel_size " +
                                        conv::pair_str(kernel)));
  PoolShape s{};
  s.P = int64_t(x.shape(0)) * int64_t(x.shape(1)), s.H = x.shape(2), s.W = x.shape(3);
  s.KH = kernel.first, s.KW = kernel.second, s.sh = stride.first, s.sw = stride.second;
  s.ph = padding.first, s.pw = padding.second, s.dh = dilation.first, s.dw = dilation.second;
  const int64_t eh = s.dh * (s.KH - 1) + 1, ew = s.dw * (s.KW - 1) + 1;
  if (s.H + 2 * s.ph < eh || s.W + 2 * s.pw < ew)
    throw ValueError(op_message(op, "input plane (" + std::to_string(s.H) + ", " + std::to_string(s.W) +
                                        ") is smaller than the window " + conv::pair_str(kernel)));
  s.OH = (s.H + 2 * s.ph - eh) / s.sh + 1;
  s.OW = (s.W + 2 * s.pw - ew) / s.sw + 1;
  return s;
}

std::vector<int64_t> out_shape(const Array& x, int64_t OH, int64_t OW) {
  return {int64_t(x.shape(0)), int64_t(x.shape(1)), OH, OW};
}

void check_adaptive(const char* op, const Array& x, Pair out) {
  require_ndim(x, 4, op, "input");
  conv::require_at_least(out, 1, op, "output_size");
  if (x.shape(2) < 1 || x.shape(3) < 1)
    throw ValueError(op_message(op, "input " + shape_str(x) + " has an empty plane"));
}

#if defined(HEPNN_WITH_CUDA)
#define HEPNN_POOL_DISPATCH(x, cpu_call, cuda_call) \
  do {                                              \
    if (is_cuda(x)) { cuda_call; } else { cpu_call; } \
  } while (0)
#else
#define HEPNN_POOL_DISPATCH(x, cpu_call, cuda_call) \
  do {                                              \
    cpu_call;                                       \
  } while (0)
#endif

template <typename T>
void max_fwd(const PoolShape& s, const Array& x, const Array& y, const OptArray& idx, std::uintptr_t st) {
  HEPNN_POOL_DISPATCH(x, hepnn::cpu::max_pool2d_forward<T>(s, ptr<T>(x), ptr<T>(y), ptr_or_null<int64_t>(idx)),
                      hepnn::cuda::max_pool2d_forward<T>(s, ptr<T>(x), ptr<T>(y), ptr_or_null<int64_t>(idx), to_stream(st)));
}
template <typename T>
void max_bwd(int64_t P, int64_t HW, int64_t OHW, const Array& dy, const Array& idx, const Array& dx, std::uintptr_t st) {
  HEPNN_POOL_DISPATCH(dy, hepnn::cpu::max_pool_backward<T>(P, HW, OHW, ptr<T>(dy), ptr<int64_t>(idx), ptr<T>(dx)),
                      hepnn::cuda::max_pool_backward<T>(P, HW, OHW, ptr<T>(dy), ptr<int64_t>(idx), ptr<T>(dx), to_stream(st)));
}
template <typename T>
void avg_fwd(const PoolShape& s, bool inc, const Array& x, const Array& y, std::uintptr_t st) {
  HEPNN_POOL_DISPATCH(x, hepnn::cpu::avg_pool2d_forward<T>(s, inc, ptr<T>(x), ptr<T>(y)),
                      hepnn::cuda::avg_pool2d_forward<T>(s, inc, ptr<T>(x), ptr<T>(y), to_stream(st)));
}
template <typename T>
void avg_bwd(const PoolShape& s, bool inc, const Array& dy, const Array& dx, std::uintptr_t st) {
  HEPNN_POOL_DISPATCH(dy, hepnn::cpu::avg_pool2d_backward<T>(s, inc, ptr<T>(dy), ptr<T>(dx)),
                      hepnn::cuda::avg_pool2d_backward<T>(s, inc, ptr<T>(dy), ptr<T>(dx), to_stream(st)));
}

}  // namespace
}  // namespace hepnn::py

HEPNN_BINDING(conv_pool) {
  using namespace hepnn::py;
  using conv::Pair;
  using hepnn::DType;

  m.def(
      "max_pool2d_forward",
      [](Array x, Array y, OptArray idx, Pair kernel, Pair stride, Pair padding, Pair dilation, std::uintptr_t stream) {
        const char* op = "max_pool2d";
        const DType dt = conv::check_common(op, {{&x, "input"}, {&y, "y"}});
        if (idx) conv::check_index(op, *idx, x, "indices");
        const hepnn::PoolShape s = pool_shape(op, x, kernel, stride, padding, dilation);
        require_shape(y, out_shape(x, s.OH, s.OW), op, "y");
        if (idx) require_shape(*idx, out_shape(x, s.OH, s.OW), op, "indices");
        require_disjoint(op, {{&y, "y"}, {conv::opt(idx), "indices"}}, {{&x, "input"}});
        nb::gil_scoped_release release;
        if (dt == DType::f32) max_fwd<float>(s, x, y, idx, stream);
        else max_fwd<double>(s, x, y, idx, stream);
      },
      nb::arg("x"), nb::arg("y"), nb::arg("indices").none(), nb::arg("kernel_size"), nb::arg("stride"),
      nb::arg("padding"), nb::arg("dilation"), nb::arg("stream") = 0,
      "y = window maxima of x (B, C, H, W); indices (int64, or None) get each maximum's flat index in its plane.");

  m.def(
      "max_pool_backward",
      [](Array dy, Array idx, Array dx, std::uintptr_t stream) {
        const char* op = "max_pool_backward";
        const DType dt = conv::check_common(op, {{&dy, "dy"}, {&dx, "dx"}});
        conv::check_index(op, idx, dy, "indices");
        require_ndim(dy, 4, op, "dy");
        require_ndim(dx, 4, op, "dx");
        require_shape(idx, shape_of(dy), op, "indices");
        if (dx.shape(0) != dy.shape(0) || dx.shape(1) != dy.shape(1))
          throw hepnn::ValueError(hepnn::op_message(op, "dx " + shape_str(dx) + " and dy " + shape_str(dy) +
                                                            " differ in batch or channels"));
        require_disjoint(op, {{&dx, "dx"}}, {{&dy, "dy"}, {&idx, "indices"}});
        const int64_t P = int64_t(dy.shape(0)) * int64_t(dy.shape(1));
        const int64_t HW = int64_t(dx.shape(2)) * int64_t(dx.shape(3)), OHW = int64_t(dy.shape(2)) * int64_t(dy.shape(3));
        nb::gil_scoped_release release;
        if (dt == DType::f32) max_bwd<float>(P, HW, OHW, dy, idx, dx, stream);
        else max_bwd<double>(P, HW, OHW, dy, idx, dx, stream);
      },
      nb::arg("dy"), nb::arg("indices"), nb::arg("dx"), nb::arg("stream") = 0,
      "dx = dy scattered to the saved indices of max_pool2d_forward / adaptive_max_pool2d_forward.");

  m.def(
      "avg_pool2d_forward",
      [](Array x, Array y, Pair kernel, Pair stride, Pair padding, bool count_include_pad, std::uintptr_t stream) {
        const char* op = "avg_pool2d";
        const DType dt = conv::check_common(op, {{&x, "input"}, {&y, "y"}});
        const hepnn::PoolShape s = pool_shape(op, x, kernel, stride, padding, {1, 1});
        require_shape(y, out_shape(x, s.OH, s.OW), op, "y");
        require_disjoint(op, {{&y, "y"}}, {{&x, "input"}});
        nb::gil_scoped_release release;
        if (dt == DType::f32) avg_fwd<float>(s, count_include_pad, x, y, stream);
        else avg_fwd<double>(s, count_include_pad, x, y, stream);
      },
      nb::arg("x"), nb::arg("y"), nb::arg("kernel_size"), nb::arg("stride"), nb::arg("padding"),
      nb::arg("count_include_pad") = true, nb::arg("stream") = 0, "y = window means of x (B, C, H, W).");

  m.def(
      "avg_pool2d_backward",
      [](Array dy, Array dx, Pair kernel, Pair stride, Pair padding, bool count_include_pad, std::uintptr_t stream) {
        const char* op = "avg_pool2d_backward";
        const DType dt = conv::check_common(op, {{&dy, "dy"}, {&dx, "dx"}});
        const hepnn::PoolShape s = pool_shape(op, dx, kernel, stride, padding, {1, 1});
        require_shape(dy, out_shape(dx, s.OH, s.OW), op, "dy");
        require_disjoint(op, {{&dx, "dx"}}, {{&dy, "dy"}});
        nb::gil_scoped_release release;
        if (dt == DType::f32) avg_bwd<float>(s, count_include_pad, dy, dx, stream);
        else avg_bwd<double>(s, count_include_pad, dy, dx, stream);
      },
      nb::arg("dy"), nb::arg("dx"), nb::arg("kernel_size"), nb::arg("stride"), nb::arg("padding"),
      nb::arg("count_include_pad") = true, nb::arg("stream") = 0, "Gradient of avg_pool2d_forward.");

  m.def(
      "adaptive_avg_pool2d_forward",
      [](Array x, Array y, std::uintptr_t stream) {
        const char* op = "adaptive_avg_pool2d";
        const DType dt = conv::check_common(op, {{&x, "input"}, {&y, "y"}});
        require_ndim(y, 4, op, "y");
        check_adaptive(op, x, {int64_t(y.shape(2)), int64_t(y.shape(3))});
        require_shape(y, out_shape(x, y.shape(2), y.shape(3)), op, "y");
        require_disjoint(op, {{&y, "y"}}, {{&x, "input"}});
        const int64_t P = int64_t(x.shape(0)) * int64_t(x.shape(1)), H = x.shape(2), W = x.shape(3);
        const int64_t OH = y.shape(2), OW = y.shape(3);
        nb::gil_scoped_release release;
        if (dt == DType::f32) {
          HEPNN_POOL_DISPATCH(x, hepnn::cpu::adaptive_avg_pool2d_forward<float>(P, H, W, OH, OW, ptr<float>(x), ptr<float>(y)),
                              hepnn::cuda::adaptive_avg_pool2d_forward<float>(P, H, W, OH, OW, ptr<float>(x), ptr<float>(y), to_stream(stream)));
        } else {
          HEPNN_POOL_DISPATCH(x, hepnn::cpu::adaptive_avg_pool2d_forward<double>(P, H, W, OH, OW, ptr<double>(x), ptr<double>(y)),
                              hepnn::cuda::adaptive_avg_pool2d_forward<double>(P, H, W, OH, OW, ptr<double>(x), ptr<double>(y), to_stream(stream)));
        }
      },
      nb::arg("x"), nb::arg("y"), nb::arg("stream") = 0,
      "y (B, C, OH, OW) = adaptive average pooling of x (B, C, H, W); the output size is y's plane.");

  m.def(
      "adaptive_avg_pool2d_backward",
      [](Array dy, Array dx, std::uintptr_t stream) {
        const char* op = "adaptive_avg_pool2d_backward";
        const DType dt = conv::check_common(op, {{&dy, "dy"}, {&dx, "dx"}});
        require_ndim(dy, 4, op, "dy");
        check_adaptive(op, dx, {int64_t(dy.shape(2)), int64_t(dy.shape(3))});
        require_shape(dy, out_shape(dx, dy.shape(2), dy.shape(3)), op, "dy");
        require_disjoint(op, {{&dx, "dx"}}, {{&dy, "dy"}});
        const int64_t P = int64_t(dx.shape(0)) * int64_t(dx.shape(1)), H = dx.shape(2), W = dx.shape(3);
        const int64_t OH = dy.shape(2), OW = dy.shape(3);
        nb::gil_scoped_release release;
        if (dt == DType::f32) {
          HEPNN_POOL_DISPATCH(dy, hepnn::cpu::adaptive_avg_pool2d_backward<float>(P, H, W, OH, OW, ptr<float>(dy), ptr<float>(dx)),
                              hepnn::cuda::adaptive_avg_pool2d_backward<float>(P, H, W, OH, OW, ptr<float>(dy), ptr<float>(dx), to_stream(stream)));
        } else {
          HEPNN_POOL_DISPATCH(dy, hepnn::cpu::adaptive_avg_pool2d_backward<double>(P, H, W, OH, OW, ptr<double>(dy), ptr<double>(dx)),
                              hepnn::cuda::adaptive_avg_pool2d_backward<double>(P, H, W, OH, OW, ptr<double>(dy), ptr<double>(dx), to_stream(stream)));
        }
      },
      nb::arg("dy"), nb::arg("dx"), nb::arg("stream") = 0, "Gradient of adaptive_avg_pool2d_forward.");

  m.def(
      "adaptive_max_pool2d_forward",
      [](Array x, Array y, Array idx, std::uintptr_t stream) {
        const char* op = "adaptive_max_pool2d";
        const DType dt = conv::check_common(op, {{&x, "input"}, {&y, "y"}});
        conv::check_index(op, idx, x, "indices");
        require_ndim(y, 4, op, "y");
        check_adaptive(op, x, {int64_t(y.shape(2)), int64_t(y.shape(3))});
        require_shape(y, out_shape(x, y.shape(2), y.shape(3)), op, "y");
        require_shape(idx, shape_of(y), op, "indices");
        require_disjoint(op, {{&y, "y"}, {&idx, "indices"}}, {{&x, "input"}});
        const int64_t P = int64_t(x.shape(0)) * int64_t(x.shape(1)), H = x.shape(2), W = x.shape(3);
        const int64_t OH = y.shape(2), OW = y.shape(3);
        nb::gil_scoped_release release;
        if (dt == DType::f32) {
          HEPNN_POOL_DISPATCH(x, hepnn::cpu::adaptive_max_pool2d_forward<float>(P, H, W, OH, OW, ptr<float>(x), ptr<float>(y), ptr<int64_t>(idx)),
                              hepnn::cuda::adaptive_max_pool2d_forward<float>(P, H, W, OH, OW, ptr<float>(x), ptr<float>(y), ptr<int64_t>(idx), to_stream(stream)));
        } else {
          HEPNN_POOL_DISPATCH(x, hepnn::cpu::adaptive_max_pool2d_forward<double>(P, H, W, OH, OW, ptr<double>(x), ptr<double>(y), ptr<int64_t>(idx)),
                              hepnn::cuda::adaptive_max_pool2d_forward<double>(P, H, W, OH, OW, ptr<double>(x), ptr<double>(y), ptr<int64_t>(idx), to_stream(stream)));
        }
      },
      nb::arg("x"), nb::arg("y"), nb::arg("indices"), nb::arg("stream") = 0,
      "y = adaptive max pooling of x (B, C, H, W) to y's plane; indices as max_pool2d_forward.");
}
