// Python binding of the convolutions: conv2d_forward / conv2d_backward (fused bias + activation)
// and conv_transpose2d_forward / conv_transpose2d_backward, NCHW, PyTorch weight layouts; CPU or
// CUDA by where the arrays live. Hyper-parameters are (h, w) pairs; outputs are caller-allocated.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "act_names.hpp"
#include "common.hpp"
#include "conv_checks.hpp"
#include "ops/conv.hpp"
#include "ops/linear.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/conv.hpp"
#endif

namespace nb = nanobind;

namespace hepnn::py {
namespace {

using conv::Pair;

std::string dims4(int64_t a, int64_t b, int64_t c, int64_t d) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ", " + std::to_string(c) + ", " + std::to_string(d) + ")";
}

void check_hyper(const char* op, Pair stride, Pair padding, Pair dilation, int64_t groups) {
  conv::require_at_least(stride, 1, op, "stride");
  conv::require_at_least(padding, 0, op, "padding");
  conv::require_at_least(dilation, 1, op, "dilation");
  if (groups < 1) throw ValueError(op_message(op, "groups must be >= 1, got " + std::to_string(groups)));
}

// Geometry of conv2d from x (B, C, H, W) and w (O, C/groups, KH, KW).
ConvShape conv_shape(const char* op, const Array& x, const Array& w, Pair stride, Pair padding,
                     Pair dilation, int64_t groups) {
  require_ndim(x, 4, op, "input");
  require_ndim(w, 4, op, "weight");
  check_hyper(op, stride, padding, dilation, groups);
  ConvShape s{};
  s.B = x.shape(0), s.C = x.shape(1), s.H = x.shape(2), s.W = x.shape(3);
  s.O = w.shape(0), s.KH = w.shape(2), s.KW = w.shape(3);
  s.sh = stride.first, s.sw = stride.second, s.ph = padding.first, s.pw = padding.second;
  s.dh = dilation.first, s.dw = dilation.second, s.groups = groups;
  if (s.C % groups != 0)
    throw ValueError(op_message(op, "input has " + std::to_string(s.C) + " channels, not divisible by groups=" + std::to_string(groups)));
  if (s.O % groups != 0)
    throw ValueError(op_message(op, "weight has " + std::to_string(s.O) + " output channels, not divisible by groups=" + std::to_string(groups)));
  if (int64_t(w.shape(1)) * groups != s.C)
    throw ValueError(op_message(op, "input has " + std::to_string(s.C) + " channels, weight expects " +
                                        std::to_string(w.shape(1) * groups) + " (weight " + shape_str(w) +
                                        ", groups=" + std::to_string(groups) + ")"));
  if (s.KH < 1 || s.KW < 1) throw ValueError(op_message(op, "weight has an empty kernel: " + shape_str(w)));
  s.OH = conv_out_size(s.H, s.KH, s.sh, s.ph, s.dh);
  s.OW = conv_out_size(s.W, s.KW, s.sw, s.pw, s.dw);
  if (s.H + 2 * s.ph < s.dh * (s.KH - 1) + 1 || s.W + 2 * s.pw < s.dw * (s.KW - 1) + 1)
    throw ValueError(op_message(op, "input plane (" + std::to_string(s.H) + ", " + std::to_string(s.W) +
                                        ") with padding " + conv::pair_str(padding) +
                                        " is smaller than the dilated kernel"));
  return s;
}

// Geometry of conv_transpose2d from x (B, Cin, H, W) and w (Cin, Cout/groups, KH, KW), written
// as the convolution it is the adjoint of (see ConvShape).
ConvShape transpose_shape(const char* op, const Array& x, const Array& w, Pair stride, Pair padding,
                          Pair output_padding, Pair dilation, int64_t groups) {
  require_ndim(x, 4, op, "input");
  require_ndim(w, 4, op, "weight");
  check_hyper(op, stride, padding, dilation, groups);
  conv::require_at_least(output_padding, 0, op, "output_padding");
  if ((output_padding.first >= stride.first && output_padding.first >= dilation.first) ||
      (output_padding.second >= stride.second && output_padding.second >= dilation.second))
    throw ValueError(op_message(op, "output_padding " + conv::pair_str(output_padding) +
                                        " must be smaller than stride or dilation"));
  const int64_t cin = x.shape(1);
  if (int64_t(w.shape(0)) != cin)
    throw ValueError(op_message(op, "input has " + std::to_string(cin) + " channels, weight expects " +
                                        std::to_string(w.shape(0)) + " (weight " + shape_str(w) + " is (in, out/groups, kH, kW))"));
  if (cin % groups != 0)
    throw ValueError(op_message(op, "input has " + std::to_string(cin) + " channels, not divisible by groups=" + std::to_string(groups)));
  ConvShape s{};
  s.B = x.shape(0), s.O = cin, s.OH = x.shape(2), s.OW = x.shape(3);
  s.C = int64_t(w.shape(1)) * groups, s.KH = w.shape(2), s.KW = w.shape(3);
  s.sh = stride.first, s.sw = stride.second, s.ph = padding.first, s.pw = padding.second;
  s.dh = dilation.first, s.dw = dilation.second, s.groups = groups;
  if (s.KH < 1 || s.KW < 1) throw ValueError(op_message(op, "weight has an empty kernel: " + shape_str(w)));
  s.H = (s.OH - 1) * s.sh - 2 * s.ph + s.dh * (s.KH - 1) + output_padding.first + 1;
  s.W = (s.OW - 1) * s.sw - 2 * s.pw + s.dw * (s.KW - 1) + output_padding.second + 1;
  if (s.OH < 1 || s.OW < 1 || s.H < 1 || s.W < 1)
    throw ValueError(op_message(op, "output size (" + std::to_string(s.H) + ", " + std::to_string(s.W) +
                                        ") is not positive for input " + shape_str(x)));
  return s;
}

template <typename T>
void conv_fwd(const ConvShape& s, const Array& x, const Array& w, const OptArray& b, const Array& y,
              const OptArray& z, Act act, double alpha, std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::conv2d_forward<T>(s, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(b), act, alpha, ptr<T>(y),
                                   ptr_or_null<T>(z), to_stream(stream));
#endif
  } else {
    hepnn::cpu::conv2d_forward<T>(s, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(b), act, alpha, ptr<T>(y), ptr_or_null<T>(z));
  }
}

template <typename T>
void conv_pool_fwd(const ConvShape& s, const PoolShape& ps, const Array& x, const Array& w, const OptArray& b,
                   const Array& y, Act act, double alpha, std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::conv2d_maxpool2d_forward<T>(s, ps, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(b), act, alpha, ptr<T>(y),
                                             to_stream(stream));
#endif
  } else {
    hepnn::cpu::conv2d_maxpool2d_forward<T>(s, ps, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(b), act, alpha, ptr<T>(y));
  }
}

template <typename T>
void conv_bwd(const ConvShape& s, const Array& x, const Array& w, const OptArray& z, const Array& y,
              const Array& dy, const OptArray& dx, const Array& dw, const OptArray& db, Act act,
              double alpha, std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::conv2d_backward<T>(s, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(z), ptr<T>(y), ptr<T>(dy), act,
                                    alpha, ptr_or_null<T>(dx), ptr<T>(dw), ptr_or_null<T>(db), to_stream(stream));
#endif
  } else {
    hepnn::cpu::conv2d_backward<T>(s, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(z), ptr<T>(y), ptr<T>(dy), act,
                                   alpha, ptr_or_null<T>(dx), ptr<T>(dw), ptr_or_null<T>(db));
  }
}

template <typename T>
void convt_fwd(const ConvShape& s, const Array& x, const Array& w, const OptArray& b, const Array& y,
               std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::conv_transpose2d_forward<T>(s, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(b), ptr<T>(y), to_stream(stream));
#endif
  } else {
    hepnn::cpu::conv_transpose2d_forward<T>(s, ptr<T>(x), ptr<T>(w), ptr_or_null<T>(b), ptr<T>(y));
  }
}

template <typename T>
void convt_bwd(const ConvShape& s, const Array& x, const Array& w, const Array& dy, const OptArray& dx,
               const Array& dw, const OptArray& db, std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::conv_transpose2d_backward<T>(s, ptr<T>(x), ptr<T>(w), ptr<T>(dy), ptr_or_null<T>(dx), ptr<T>(dw),
                                              ptr_or_null<T>(db), to_stream(stream));
#endif
  } else {
    hepnn::cpu::conv_transpose2d_backward<T>(s, ptr<T>(x), ptr<T>(w), ptr<T>(dy), ptr_or_null<T>(dx), ptr<T>(dw),
                                             ptr_or_null<T>(db));
  }
}

void check_alpha(const char* op, double alpha) {
  if (!std::isfinite(alpha)) throw ValueError(op_message(op, "alpha must be finite, got " + std::to_string(alpha)));
}

}  // namespace
}  // namespace hepnn::py

HEPNN_BINDING(conv) {
  using namespace hepnn::py;
  using conv::opt;
  using conv::Pair;

  m.def(
      "conv2d_forward",
      [](Array x, Array w, OptArray b, Array y, OptArray z, Pair stride, Pair padding, Pair dilation,
         int64_t groups, const std::string& act_name, double alpha, std::uintptr_t stream) {
        const char* op = "conv2d";
        const hepnn::Act act = parse_act(act_name, op);
        const hepnn::DType dt = conv::check_common(op, {{&x, "input"}, {&w, "weight"}, {opt(b), "bias"}, {&y, "y"}, {opt(z), "z"}});
        const hepnn::ConvShape s = conv_shape(op, x, w, stride, padding, dilation, groups);
        if (b) require_shape(*b, {s.O}, op, "bias");
        require_shape(y, {s.B, s.O, s.OH, s.OW}, op, "y");
        if (z) require_shape(*z, {s.B, s.O, s.OH, s.OW}, op, "z");
        check_alpha(op, alpha);
        require_disjoint(op, {{&y, "y"}, {opt(z), "z"}}, {{&x, "input"}, {&w, "weight"}, {opt(b), "bias"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32) conv_fwd<float>(s, x, w, b, y, z, act, alpha, stream);
        else conv_fwd<double>(s, x, w, b, y, z, act, alpha, stream);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("b").none(), nb::arg("y"), nb::arg("z").none(), nb::arg("stride"),
      nb::arg("padding"), nb::arg("dilation"), nb::arg("groups") = 1, nb::arg("act") = "none",
      nb::arg("alpha") = 0.0, nb::arg("stream") = 0,
      "y = act(conv2d(x, w) + b), NCHW; z (optional) receives the pre-activation. x (B, C, H, W), "
      "w (O, C/groups, KH, KW), b (O,) or None; stride, padding, dilation are (h, w) pairs.");

  m.def(
      "conv2d_maxpool2d_forward",
      [](Array x, Array w, OptArray b, Array y, Pair stride, Pair padding, Pair dilation, int64_t groups,
         const std::string& act_name, double alpha, Pair pool_kernel, Pair pool_stride, Pair pool_padding,
         Pair pool_dilation, std::uintptr_t stream) {
        const char* op = "conv2d_maxpool2d";
        const hepnn::Act act = parse_act(act_name, op);
        const hepnn::DType dt = conv::check_common(op, {{&x, "input"}, {&w, "weight"}, {opt(b), "bias"}, {&y, "y"}});
        const hepnn::ConvShape s = conv_shape(op, x, w, stride, padding, dilation, groups);
        if (b) require_shape(*b, {s.O}, op, "bias");
        conv::require_at_least(pool_kernel, 1, op, "kernel_size");
        conv::require_at_least(pool_stride, 1, op, "pool stride");
        conv::require_at_least(pool_padding, 0, op, "pool padding");
        conv::require_at_least(pool_dilation, 1, op, "pool dilation");
        if (pool_padding.first > pool_kernel.first / 2 || pool_padding.second > pool_kernel.second / 2)
          throw hepnn::ValueError(hepnn::op_message(op, "pool padding must be at most half of kernel_size"));
        hepnn::PoolShape ps{};
        ps.P = s.B * s.O, ps.H = s.OH, ps.W = s.OW, ps.KH = pool_kernel.first, ps.KW = pool_kernel.second;
        ps.sh = pool_stride.first, ps.sw = pool_stride.second, ps.ph = pool_padding.first, ps.pw = pool_padding.second;
        ps.dh = pool_dilation.first, ps.dw = pool_dilation.second;
        const int64_t eh = ps.dh * (ps.KH - 1) + 1, ew = ps.dw * (ps.KW - 1) + 1;
        if (ps.H + 2 * ps.ph < eh || ps.W + 2 * ps.pw < ew)
          throw hepnn::ValueError(hepnn::op_message(op, "convolution output is smaller than the pooling window"));
        ps.OH = (ps.H + 2 * ps.ph - eh) / ps.sh + 1;
        ps.OW = (ps.W + 2 * ps.pw - ew) / ps.sw + 1;
        require_shape(y, {s.B, s.O, ps.OH, ps.OW}, op, "y");
        check_alpha(op, alpha);
        require_disjoint(op, {{&y, "y"}}, {{&x, "input"}, {&w, "weight"}, {opt(b), "bias"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32) conv_pool_fwd<float>(s, ps, x, w, b, y, act, alpha, stream);
        else conv_pool_fwd<double>(s, ps, x, w, b, y, act, alpha, stream);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("b").none(), nb::arg("y"), nb::arg("stride"), nb::arg("padding"),
      nb::arg("dilation"), nb::arg("groups"), nb::arg("act"), nb::arg("alpha"), nb::arg("pool_kernel"),
      nb::arg("pool_stride"), nb::arg("pool_padding"), nb::arg("pool_dilation"), nb::arg("stream") = 0,
      "Inference fusion: y = max_pool2d(act(conv2d(x, w) + b)), the conv output never materialised.");

  m.def(
      "conv2d_backward",
      [](Array x, Array w, OptArray z, Array y, Array dy, OptArray dx, Array dw, OptArray db, Pair stride,
         Pair padding, Pair dilation, int64_t groups, const std::string& act_name, double alpha,
         std::uintptr_t stream) {
        const char* op = "conv2d_backward";
        const hepnn::Act act = parse_act(act_name, op);
        const hepnn::DType dt = conv::check_common(op, {{&x, "input"}, {&w, "weight"}, {opt(z), "z"}, {&y, "y"}, {&dy, "dy"},
                                                       {opt(dx), "dx"}, {&dw, "dw"}, {opt(db), "db"}});
        const hepnn::ConvShape s = conv_shape(op, x, w, stride, padding, dilation, groups);
        if (!z && hepnn::cpu::act_needs_preactivation(act))
          throw hepnn::ValueError(hepnn::op_message(op, "activation '" + act_name + "' needs the pre-activation z"));
        const std::vector<int64_t> out = {s.B, s.O, s.OH, s.OW};
        if (z) require_shape(*z, out, op, "z");
        require_shape(y, out, op, "y");
        require_shape(dy, out, op, "dy");
        if (dx) require_shape(*dx, shape_of(x), op, "dx");
        require_shape(dw, shape_of(w), op, "dw");
        if (db) require_shape(*db, {s.O}, op, "db");
        check_alpha(op, alpha);
        require_disjoint(op, {{opt(dx), "dx"}, {&dw, "dw"}, {opt(db), "db"}},
                               {{&x, "input"}, {&w, "weight"}, {opt(z), "z"}, {&y, "y"}, {&dy, "dy"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32) conv_bwd<float>(s, x, w, z, y, dy, dx, dw, db, act, alpha, stream);
        else conv_bwd<double>(s, x, w, z, y, dy, dx, dw, db, act, alpha, stream);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("z").none(), nb::arg("y"), nb::arg("dy"), nb::arg("dx").none(),
      nb::arg("dw"), nb::arg("db").none(), nb::arg("stride"), nb::arg("padding"), nb::arg("dilation"),
      nb::arg("groups") = 1, nb::arg("act") = "none", nb::arg("alpha") = 0.0, nb::arg("stream") = 0,
      "Gradients of conv2d_forward: dx (or None), dw, db (or None) from dy.");

  m.def(
      "conv_transpose2d_output_size",
      [](std::vector<int64_t> x_shape, std::vector<int64_t> w_shape, Pair stride, Pair padding,
         Pair output_padding, Pair dilation, int64_t groups) {
        const char* op = "conv_transpose2d";
        if (x_shape.size() != 4 || w_shape.size() != 4)
          throw hepnn::ValueError(hepnn::op_message(op, "input and weight must be 4-D"));
        const int64_t H = (x_shape[2] - 1) * stride.first - 2 * padding.first + dilation.first * (w_shape[2] - 1) + output_padding.first + 1;
        const int64_t W = (x_shape[3] - 1) * stride.second - 2 * padding.second + dilation.second * (w_shape[3] - 1) + output_padding.second + 1;
        return std::vector<int64_t>{x_shape[0], w_shape[1] * groups, H, W};
      },
      nb::arg("x_shape"), nb::arg("w_shape"), nb::arg("stride"), nb::arg("padding"), nb::arg("output_padding"),
      nb::arg("dilation"), nb::arg("groups") = 1, "Output shape of conv_transpose2d_forward (no checks).");

  m.def(
      "conv_transpose2d_forward",
      [](Array x, Array w, OptArray b, Array y, Pair stride, Pair padding, Pair output_padding, Pair dilation,
         int64_t groups, std::uintptr_t stream) {
        const char* op = "conv_transpose2d";
        const hepnn::DType dt = conv::check_common(op, {{&x, "input"}, {&w, "weight"}, {opt(b), "bias"}, {&y, "y"}});
        const hepnn::ConvShape s = transpose_shape(op, x, w, stride, padding, output_padding, dilation, groups);
        if (b) require_shape(*b, {s.C}, op, "bias");
        require_shape(y, {s.B, s.C, s.H, s.W}, op, "y");
        require_disjoint(op, {{&y, "y"}}, {{&x, "input"}, {&w, "weight"}, {opt(b), "bias"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32) convt_fwd<float>(s, x, w, b, y, stream);
        else convt_fwd<double>(s, x, w, b, y, stream);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("b").none(), nb::arg("y"), nb::arg("stride"), nb::arg("padding"),
      nb::arg("output_padding"), nb::arg("dilation"), nb::arg("groups") = 1, nb::arg("stream") = 0,
      "y = conv_transpose2d(x, w) + b. x (B, Cin, H, W), w (Cin, Cout/groups, KH, KW), b (Cout,) or None.");

  m.def(
      "conv_transpose2d_backward",
      [](Array x, Array w, Array dy, OptArray dx, Array dw, OptArray db, Pair stride, Pair padding,
         Pair output_padding, Pair dilation, int64_t groups, std::uintptr_t stream) {
        const char* op = "conv_transpose2d_backward";
        const hepnn::DType dt = conv::check_common(op, {{&x, "input"}, {&w, "weight"}, {&dy, "dy"}, {opt(dx), "dx"},
                                                       {&dw, "dw"}, {opt(db), "db"}});
        const hepnn::ConvShape s = transpose_shape(op, x, w, stride, padding, output_padding, dilation, groups);
        require_shape(dy, {s.B, s.C, s.H, s.W}, op, "dy");
        if (dx) require_shape(*dx, shape_of(x), op, "dx");
        require_shape(dw, shape_of(w), op, "dw");
        if (db) require_shape(*db, {s.C}, op, "db");
        require_disjoint(op, {{opt(dx), "dx"}, {&dw, "dw"}, {opt(db), "db"}}, {{&x, "input"}, {&w, "weight"}, {&dy, "dy"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32) convt_bwd<float>(s, x, w, dy, dx, dw, db, stream);
        else convt_bwd<double>(s, x, w, dy, dx, dw, db, stream);
      },
      nb::arg("x"), nb::arg("w"), nb::arg("dy"), nb::arg("dx").none(), nb::arg("dw"), nb::arg("db").none(),
      nb::arg("stride"), nb::arg("padding"), nb::arg("output_padding"), nb::arg("dilation"),
      nb::arg("groups") = 1, nb::arg("stream") = 0,
      "Gradients of conv_transpose2d_forward: dx (or None), dw, db (or None) from dy.");
}
