// Python entry points of the fused attention: attention_forward(q, k, v, key_mask, bias, out,
// lse, scale, stream) and attention_backward(q, k, v, key_mask, bias, out, lse, dout, dq, dk, dv,
// dbias, scale, stream). q (B,H,Lq,D), k/v (B,H,Lk,D), key_mask (B,Lk) bool (True = real key),
// bias (B,1|H,Lq,Lk). Every array is checked here before a pointer reaches the kernels.
#include <cmath>

#include "common.hpp"
#include "ops/attention.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/attention.hpp"
#endif

namespace {

using hepnn::py::Array;
using hepnn::py::OptArray;
namespace hp = hepnn::py;
constexpr const char* kOp = "scaled_dot_product_attention";

struct Dims {
  int64_t B, H, Lq, Lk, D, bias_heads;
  hepnn::DType dt;
};

void require_like(const Array& a, const Array& ref, hepnn::DType dt, const std::vector<int64_t>& shape,
                  const char* name) {
  hp::require_same_device(a, ref, kOp, name);
  hp::require_dtype(a, dt, kOp, name);
  hp::require_shape(a, shape, kOp, name);
  hp::require_contiguous(a, kOp, name);
}

Dims check_inputs(const Array& q, const Array& k, const Array& v, const OptArray& key_mask,
                  const OptArray& bias) {
  Dims d{};
  d.dt = hp::float_dtype(q, kOp, "q");
  hp::require_supported_device(q, kOp, "q");
  hp::require_ndim(q, 4, kOp, "q");
  hp::require_contiguous(q, kOp, "q");
  hp::require_ndim(k, 4, kOp, "k");
  d.B = q.shape(0), d.H = q.shape(1), d.Lq = q.shape(2), d.D = q.shape(3), d.Lk = k.shape(2);
  hepnn::check_value(d.H >= 1 && d.D >= 1, kOp, "q needs at least one head and a head dim >= 1, got shape " +
                                                    hp::shape_str(q));
  require_like(k, q, d.dt, {d.B, d.H, d.Lk, d.D}, "k");
  require_like(v, q, d.dt, {d.B, d.H, d.Lk, d.D}, "v");
  if (key_mask) {
    hp::require_same_device(*key_mask, q, kOp, "key_mask");
    hepnn::check_type(key_mask->dtype() == nanobind::dtype<bool>() ||
                          key_mask->dtype() == nanobind::dtype<uint8_t>(),
                      kOp, "key_mask has dtype " + hp::dtype_name(*key_mask) + ", expected bool");
    hp::require_shape(*key_mask, {d.B, d.Lk}, kOp, "key_mask");
    hp::require_contiguous(*key_mask, kOp, "key_mask");
  }
  d.bias_heads = 0;
  if (bias) {
    hp::require_ndim(*bias, 4, kOp, "bias");
    d.bias_heads = bias->shape(1);
    hepnn::check_value(d.bias_heads == 1 || d.bias_heads == d.H, kOp,
                       "bias has shape " + hp::shape_str(*bias) + ", expected (B, 1 or H, Lq, Lk)");
    require_like(*bias, q, d.dt, {d.B, d.bias_heads, d.Lq, d.Lk}, "bias");
  }
  return d;
}

double check_scale(double scale, int64_t D) {
  if (std::isnan(scale)) return 1.0 / std::sqrt(static_cast<double>(D));  // NaN = the default
  hepnn::check_value(std::isfinite(scale), kOp, "scale must be finite");
  return scale;
}

const uint8_t* mask_ptr(const OptArray& m) { return m ? hp::ptr<const uint8_t>(*m) : nullptr; }

void attention_forward(const Array& q, const Array& k, const Array& v, const OptArray& key_mask,
                       const OptArray& bias, const Array& out, const Array& lse, double scale,
                       std::uintptr_t stream) {
  const Dims d = check_inputs(q, k, v, key_mask, bias);
  require_like(out, q, d.dt, {d.B, d.H, d.Lq, d.D}, "out");
  require_like(lse, q, d.dt, {d.B, d.H, d.Lq}, "lse");
  scale = check_scale(scale, d.D);
  nanobind::gil_scoped_release release;
#define HEPNN_ARGS(T)                                                                          \
  d.B, d.H, d.Lq, d.Lk, d.D, hp::ptr<T>(q), hp::ptr<T>(k), hp::ptr<T>(v), mask_ptr(key_mask), \
      hp::ptr_or_null<T>(bias), d.bias_heads, scale, hp::ptr<T>(out), hp::ptr<T>(lse)
  if (hp::is_cuda(q)) {
#if defined(HEPNN_WITH_CUDA)
    if (d.dt == hepnn::DType::f32)
      hepnn::cuda::attention_forward(HEPNN_ARGS(float), hp::to_stream(stream));
    else
      hepnn::cuda::attention_forward(HEPNN_ARGS(double), hp::to_stream(stream));
#endif
  } else if (d.dt == hepnn::DType::f32) {
    hepnn::cpu::attention_forward(HEPNN_ARGS(float));
  } else {
    hepnn::cpu::attention_forward(HEPNN_ARGS(double));
  }
#undef HEPNN_ARGS
}

void attention_backward(const Array& q, const Array& k, const Array& v, const OptArray& key_mask,
                        const OptArray& bias, const Array& out, const Array& lse, const Array& dout,
                        const Array& dq, const Array& dk, const Array& dv, const OptArray& dbias,
                        double scale, std::uintptr_t stream) {
  const Dims d = check_inputs(q, k, v, key_mask, bias);
  require_like(out, q, d.dt, {d.B, d.H, d.Lq, d.D}, "out");
  require_like(lse, q, d.dt, {d.B, d.H, d.Lq}, "lse");
  require_like(dout, q, d.dt, {d.B, d.H, d.Lq, d.D}, "dout");
  require_like(dq, q, d.dt, {d.B, d.H, d.Lq, d.D}, "dq");
  require_like(dk, q, d.dt, {d.B, d.H, d.Lk, d.D}, "dk");
  require_like(dv, q, d.dt, {d.B, d.H, d.Lk, d.D}, "dv");
  if (dbias) {
    hepnn::check_value(bias.has_value(), kOp, "dbias was given but the forward had no bias");
    require_like(*dbias, q, d.dt, {d.B, d.bias_heads, d.Lq, d.Lk}, "dbias");
  }
  scale = check_scale(scale, d.D);
  nanobind::gil_scoped_release release;
#define HEPNN_ARGS(T)                                                                           \
  d.B, d.H, d.Lq, d.Lk, d.D, hp::ptr<T>(q), hp::ptr<T>(k), hp::ptr<T>(v), mask_ptr(key_mask),  \
      hp::ptr_or_null<T>(bias), d.bias_heads, scale, hp::ptr<T>(out), hp::ptr<T>(lse),          \
      hp::ptr<T>(dout), hp::ptr<T>(dq), hp::ptr<T>(dk), hp::ptr<T>(dv), hp::ptr_or_null<T>(dbias)
  if (hp::is_cuda(q)) {
#if defined(HEPNN_WITH_CUDA)
    if (d.dt == hepnn::DType::f32)
      hepnn::cuda::attention_backward(HEPNN_ARGS(float), hp::to_stream(stream));
    else
      hepnn::cuda::attention_backward(HEPNN_ARGS(double), hp::to_stream(stream));
#endif
  } else if (d.dt == hepnn::DType::f32) {
    hepnn::cpu::attention_backward(HEPNN_ARGS(float));
  } else {
    hepnn::cpu::attention_backward(HEPNN_ARGS(double));
  }
#undef HEPNN_ARGS
}

}  // namespace

HEPNN_BINDING(attention) {
  namespace nb = nanobind;
  m.def("attention_forward", &attention_forward, nb::arg("q"), nb::arg("k"), nb::arg("v"),
        nb::arg("key_mask").none(), nb::arg("bias").none(), nb::arg("out"), nb::arg("lse"),
        nb::arg("scale") = NAN, nb::arg("stream") = 0,
        "out, lse = softmax(scale q k^T + bias, masked keys removed) v; scale NaN = 1/sqrt(D).");
  m.def("attention_backward", &attention_backward, nb::arg("q"), nb::arg("k"), nb::arg("v"),
        nb::arg("key_mask").none(), nb::arg("bias").none(), nb::arg("out"), nb::arg("lse"),
        nb::arg("dout"), nb::arg("dq"), nb::arg("dk"), nb::arg("dv"), nb::arg("dbias").none(),
        nb::arg("scale") = NAN, nb::arg("stream") = 0,
        "dq, dk, dv (and dbias when given) of the fused attention from dout.");
}
