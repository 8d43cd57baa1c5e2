// Bindings of the fused losses (mse_loss, bce_with_logits_loss, cross_entropy_loss): every array
// is checked (device, dtype, shape, contiguity) before the kernel runs with the GIL released.
#include <string>

#include <nanobind/stl/string.h>

#include "common.hpp"
#include "ops/loss.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/loss.hpp"
#endif

namespace hepnn::py {
namespace {

Reduction parse_reduction(const std::string& s, const char* op) {
  if (s == "mean") return Reduction::mean;
  if (s == "sum") return Reduction::sum;
  if (s == "none") return Reduction::none;
  throw ValueError(op_message(op, "unknown reduction '" + s + "', expected 'mean', 'sum' or 'none'"));
}

// An operand that must match `ref` in device and dtype, have `shape` and be C-contiguous.
void require_like(const Array& a, const Array& ref, DType dt, const std::vector<int64_t>& shape,
                  const char* op, const char* name) {
  // The checks below build their messages eagerly: skip them when everything is already right.
  bool ok = a.device_type() == ref.device_type() && a.device_id() == ref.device_id() &&
            a.dtype() == ref.dtype() && a.ndim() == shape.size();
  int64_t expected = 1;
  for (size_t d = a.ndim(); ok && d-- > 0;) {
    ok = static_cast<int64_t>(a.shape(d)) == shape[d] && (a.shape(d) == 1 || a.stride(d) == expected);
    expected *= static_cast<int64_t>(a.shape(d));
  }
  if (ok) return;
  require_same_device(a, ref, op, name);
  require_dtype(a, dt, op, name);
  require_shape(a, shape, op, name);
  require_contiguous(a, op, name);
}

void require_loss_buffer(const Array& loss, const Array& ref, DType dt, const char* op) {
  require_same_device(loss, ref, op, "loss");
  require_dtype(loss, dt, op, "loss");
  if (numel(loss) != 1)
    throw ValueError(op_message(op, "loss must have exactly 1 element, got shape " + shape_str(loss)));
  require_contiguous(loss, op, "loss");
}

// The shared part of mse and bce: pred (B,) or (B, F), target like pred, weight (B,).
struct Checked {
  DType dt;
  index_t B, F;
  Reduction red;
};

Checked check_elementwise(const char* op, const char* input, const Array& pred, const Array& target, const OptArray& weight,
                          const std::string& reduction, const OptArray& out, const OptArray& grad,
                          const OptArray& loss) {
  require_supported_device(pred, op, input);
  const DType dt = float_dtype(pred, op, input);
  if (pred.ndim() != 1 && pred.ndim() != 2)
    throw ValueError(op_message(op, std::string(input) + " has shape " + shape_str(pred) + ", expected (B,) or (B, F)"));
  require_contiguous(pred, op, input);
  std::vector<int64_t> shape;
  for (size_t i = 0; i < pred.ndim(); ++i) shape.push_back(static_cast<int64_t>(pred.shape(i)));
  const index_t B = shape[0];
  const index_t F = pred.ndim() == 2 ? shape[1] : 1;
  if (F < 1)
    throw ValueError(op_message(op, std::string(input) + " has shape " + shape_str(pred) + ": needs at least one feature"));
  require_like(target, pred, dt, shape, op, "target");
  if (weight) require_like(*weight, pred, dt, {B}, op, "weight");
  if (out) require_like(*out, pred, dt, shape, op, "out");
  if (grad) require_like(*grad, pred, dt, shape, op, "grad");
  if (loss) require_loss_buffer(*loss, pred, dt, op);
  return {dt, B, F, parse_reduction(reduction, op)};
}

template <typename T>
struct Ptrs {
  T *w, *out, *grad, *loss;
  Ptrs(const OptArray& w_, const OptArray& out_, const OptArray& grad_, const OptArray& loss_)
      : w(ptr_or_null<T>(w_)), out(ptr_or_null<T>(out_)), grad(ptr_or_null<T>(grad_)), loss(ptr_or_null<T>(loss_)) {}
};

// mse and bce differ only in the kernels: one table per op, one dispatch for both.
template <typename T>
using CpuFn = void (*)(index_t, index_t, const T*, const T*, const T*, Reduction, T*, T*, T*);
#if defined(HEPNN_WITH_CUDA)
template <typename T>
using CudaFn = void (*)(index_t, index_t, const T*, const T*, const T*, Reduction, T*, T*, T*, Stream);
#endif

struct ElementwiseKernels {
  const char* op;
  const char* input;  // how the first operand is named in messages
  CpuFn<float> cpu_f32;
  CpuFn<double> cpu_f64;
#if defined(HEPNN_WITH_CUDA)
  CudaFn<float> cuda_f32;
  CudaFn<double> cuda_f64;
#endif
};

void elementwise_loss(const ElementwiseKernels& k, const Array& pred, const Array& target, const OptArray& weight,
                      const std::string& reduction, const OptArray& out, const OptArray& grad,
                      const OptArray& loss, std::uintptr_t stream) {
  const Checked c = check_elementwise(k.op, k.input, pred, target, weight, reduction, out, grad, loss);
  auto run = [&](auto tag, CpuFn<decltype(tag)> cpu_fn, auto cuda_fn) {
    using T = decltype(tag);
    const Ptrs<T> q(weight, out, grad, loss);
    nb::gil_scoped_release release;
    if (is_cuda(pred)) {
#if defined(HEPNN_WITH_CUDA)
      cuda_fn(c.B, c.F, ptr<T>(pred), ptr<T>(target), q.w, c.red, q.out, q.grad, q.loss, to_stream(stream));
#endif
    } else {
      cpu_fn(c.B, c.F, ptr<T>(pred), ptr<T>(target), q.w, c.red, q.out, q.grad, q.loss);
    }
  };
#if defined(HEPNN_WITH_CUDA)
  if (c.dt == DType::f32) run(float{}, k.cpu_f32, k.cuda_f32); else run(double{}, k.cpu_f64, k.cuda_f64);
#else
  if (c.dt == DType::f32) run(float{}, k.cpu_f32, nullptr); else run(double{}, k.cpu_f64, nullptr);
#endif
}

#if defined(HEPNN_WITH_CUDA)
#define HEPNN_LOSS_KERNELS(NAME, INPUT) \
  {#NAME, INPUT, &hepnn::cpu::NAME<float>, &hepnn::cpu::NAME<double>, &hepnn::cuda::NAME<float>, &hepnn::cuda::NAME<double>}
#else
#define HEPNN_LOSS_KERNELS(NAME, INPUT) {#NAME, INPUT, &hepnn::cpu::NAME<float>, &hepnn::cpu::NAME<double>}
#endif
const ElementwiseKernels kMse = HEPNN_LOSS_KERNELS(mse_loss, "pred");
const ElementwiseKernels kBce = HEPNN_LOSS_KERNELS(bce_with_logits_loss, "logits");
#undef HEPNN_LOSS_KERNELS

void cross_entropy(const Array& logits, const Array& labels, const OptArray& weight, const std::string& reduction,
                   const OptArray& out, const OptArray& grad, const OptArray& loss, std::uintptr_t stream) {
  const char* op = "cross_entropy_loss";
  require_supported_device(logits, op, "logits");
  const DType dt = float_dtype(logits, op, "logits");
  require_ndim(logits, 2, op, "logits");
  require_contiguous(logits, op, "logits");
  const index_t B = static_cast<index_t>(logits.shape(0));
  const index_t C = static_cast<index_t>(logits.shape(1));
  if (C < 1) throw ValueError(op_message(op, "logits has shape " + shape_str(logits) + ": needs at least one class"));
  require_same_device(labels, logits, op, "labels");
  require_int64(labels, op, "labels");
  require_shape(labels, {B}, op, "labels");
  require_contiguous(labels, op, "labels");
  if (weight) require_like(*weight, logits, dt, {B}, op, "weight");
  if (out) require_like(*out, logits, dt, {B}, op, "out");
  if (grad) require_like(*grad, logits, dt, {B, C}, op, "grad");
  if (loss) require_loss_buffer(*loss, logits, dt, op);
  const Reduction red = parse_reduction(reduction, op);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    const Ptrs<T> q(weight, out, grad, loss);
    const auto* y = ptr<const std::int64_t>(labels);
    nb::gil_scoped_release release;
    if (is_cuda(logits)) {
#if defined(HEPNN_WITH_CUDA)
      hepnn::cuda::cross_entropy_loss<T>(B, C, ptr<T>(logits), y, q.w, red, q.out, q.grad, q.loss,
                                         to_stream(stream));
#endif
    } else {
      hepnn::cpu::cross_entropy_loss<T>(B, C, ptr<T>(logits), y, q.w, red, q.out, q.grad, q.loss);
    }
  };
  if (dt == DType::f32) run(float{}); else run(double{});
}

}  // namespace
}  // namespace hepnn::py

HEPNN_BINDING(loss) {
  using namespace hepnn::py;
  namespace nb = nanobind;
  m.def("mse_loss",
        [](const Array& pred, const Array& target, const OptArray& weight, const std::string& reduction,
           const OptArray& out, const OptArray& grad, const OptArray& loss, std::uintptr_t stream) {
          elementwise_loss(kMse, pred, target, weight, reduction, out, grad, loss, stream);
        }, nb::arg("pred"), nb::arg("target"),
        nb::arg("weight").none(), nb::arg("reduction"), nb::arg("out").none(), nb::arg("grad").none(),
        nb::arg("loss").none(), nb::arg("stream") = 0,
        "Mean squared error and its gradient in one pass; see hepnn.nn.functional for the reductions.");
  m.def("bce_with_logits_loss",
        [](const Array& logits, const Array& target, const OptArray& weight, const std::string& reduction,
           const OptArray& out, const OptArray& grad, const OptArray& loss, std::uintptr_t stream) {
          elementwise_loss(kBce, logits, target, weight, reduction, out, grad, loss, stream);
        }, nb::arg("logits"),
        nb::arg("target"), nb::arg("weight").none(), nb::arg("reduction"), nb::arg("out").none(),
        nb::arg("grad").none(), nb::arg("loss").none(), nb::arg("stream") = 0,
        "Numerically stable binary cross-entropy on logits and its gradient in one pass.");
  m.def("cross_entropy_loss", &cross_entropy, nb::arg("logits"), nb::arg("labels"), nb::arg("weight").none(),
        nb::arg("reduction"), nb::arg("out").none(), nb::arg("grad").none(), nb::arg("loss").none(),
        nb::arg("stream") = 0, "Softmax cross-entropy with int64 labels and its gradient in one pass.");
}
