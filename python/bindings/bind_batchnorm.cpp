// Python entry points of batch normalisation over x (N, C, *points), S = prod(points):
// batchnorm_forward(x, mask, weight, bias, running_mean, running_var, training, momentum, eps,
// y, save_mean, save_invstd, stream) and batchnorm_backward(...); CPU or CUDA by where x lives.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "ops/batchnorm.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/batchnorm.hpp"
#endif

namespace nb = nanobind;

namespace hepnn::py {
namespace {

constexpr const char* kOp = "batch_norm";

struct Dims {
  int64_t N, C, S;
};

// x is (N, C, *points), C-contiguous, float32/float64, on a supported device.
Dims check_x(const Array& x, const char* name, DType& dt) {
  dt = float_dtype(x, kOp, name);
  require_supported_device(x, kOp, name);
  if (x.ndim() < 2)
    throw ValueError(op_message(kOp, std::string(name) + " has shape " + shape_str(x) +
                                         ", expected (N, C) or (N, C, *points)"));
  require_contiguous(x, kOp, name);
  Dims d{int64_t(x.shape(0)), int64_t(x.shape(1)), 1};
  for (size_t i = 2; i < x.ndim(); ++i) d.S *= int64_t(x.shape(i));
  return d;
}

// An optional operand with x's device and dtype and the given shape.
void check_like(const OptArray& a, const Array& x, DType dt, const std::vector<int64_t>& shape,
                const char* name) {
  if (!a) return;
  require_supported_device(*a, kOp, name);
  require_same_device(*a, x, kOp, name);
  require_dtype(*a, dt, kOp, name);
  require_shape(*a, shape, kOp, name);
  require_contiguous(*a, kOp, name);
}

// The mask: bool or uint8 of shape (N, *points) ((N,) for x (N, C): whole samples).
const std::uint8_t* check_mask(const OptArray& mask, const Array& x) {
  if (!mask) return nullptr;
  const Array& m = *mask;
  if (m.dtype() != nb::dtype<bool>() && m.dtype() != nb::dtype<std::uint8_t>())
    throw TypeError(op_message(kOp, "mask has dtype " + dtype_name(m) + ", expected bool or uint8"));
  require_supported_device(m, kOp, "mask");
  require_same_device(m, x, kOp, "mask");
  std::vector<int64_t> shape{int64_t(x.shape(0))};
  for (size_t i = 2; i < x.ndim(); ++i) shape.push_back(int64_t(x.shape(i)));
  require_shape(m, shape, kOp, "mask");
  require_contiguous(m, kOp, "mask");
  return static_cast<const std::uint8_t*>(m.data());
}

const Array* opt(const OptArray& a) { return a ? &*a : nullptr; }

template <typename T>
T* p(const OptArray& a) {
  return ptr_or_null<T>(a);
}

template <typename T>
void run_forward(const Dims& d, const Array& x, const std::uint8_t* m, const OptArray& w,
                 const OptArray& b, const OptArray& rm, const OptArray& rv, bool training,
                 double momentum, double eps, const Array& y, const OptArray& sm,
                 const OptArray& si, std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::batchnorm_forward(d.N, d.C, d.S, ptr<T>(x), m, p<T>(w), p<T>(b), p<T>(rm), p<T>(rv),
                                   training, momentum, eps, ptr<T>(y), p<T>(sm), p<T>(si),
                                   to_stream(stream));
#endif
  } else {
    hepnn::cpu::batchnorm_forward(d.N, d.C, d.S, ptr<T>(x), m, p<T>(w), p<T>(b), p<T>(rm), p<T>(rv),
                                  training, momentum, eps, ptr<T>(y), p<T>(sm), p<T>(si));
  }
}

void batchnorm_forward(const Array& x, const OptArray& mask, const OptArray& weight,
                       const OptArray& bias, const OptArray& running_mean,
                       const OptArray& running_var, bool training, double momentum, double eps,
                       const Array& y, const OptArray& save_mean, const OptArray& save_invstd,
                       std::uintptr_t stream) {
  DType dt;
  const Dims d = check_x(x, "x", dt);
  const std::vector<int64_t> cshape{d.C};
  check_like(weight, x, dt, cshape, "weight");
  check_like(bias, x, dt, cshape, "bias");
  check_like(running_mean, x, dt, cshape, "running_mean");
  check_like(running_var, x, dt, cshape, "running_var");
  check_like(save_mean, x, dt, cshape, "save_mean");
  check_like(save_invstd, x, dt, cshape, "save_invstd");
  check_like(y, x, dt, shape_of(x), "y");
  const std::uint8_t* m = check_mask(mask, x);
  if (!training && (!running_mean || !running_var))
    throw ValueError(op_message(kOp, "eval mode (training=False) needs running_mean and running_var"));
  if (bool(running_mean) != bool(running_var))
    throw ValueError(op_message(kOp, "running_mean and running_var must be given together"));
  if (!std::isfinite(momentum) || momentum < 0.0 || momentum > 1.0)
    throw ValueError(op_message(kOp, "momentum must be in [0, 1], got " + std::to_string(momentum)));
  if (!std::isfinite(eps) || eps < 0.0)
    throw ValueError(op_message(kOp, "eps must be finite and >= 0, got " + std::to_string(eps)));
  require_disjoint(kOp, {{&y, "y"}, {opt(running_mean), "running_mean"}, {opt(running_var), "running_var"},
                    {opt(save_mean), "save_mean"}, {opt(save_invstd), "save_invstd"}},
                   {{&x, "x"}, {opt(weight), "weight"}, {opt(bias), "bias"}});
  nb::gil_scoped_release release;
  if (dt == DType::f32)
    run_forward<float>(d, x, m, weight, bias, running_mean, running_var, training, momentum, eps, y,
                       save_mean, save_invstd, stream);
  else
    run_forward<double>(d, x, m, weight, bias, running_mean, running_var, training, momentum, eps, y,
                        save_mean, save_invstd, stream);
}

template <typename T>
void run_backward(const Dims& d, const Array& x, const std::uint8_t* m, const OptArray& w,
                  const Array& sm, const Array& si, const Array& dy, bool training,
                  const OptArray& dx, const OptArray& dw, const OptArray& db, std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::batchnorm_backward(d.N, d.C, d.S, ptr<T>(x), m, p<T>(w), ptr<T>(sm), ptr<T>(si),
                                    ptr<T>(dy), training, p<T>(dx), p<T>(dw), p<T>(db),
                                    to_stream(stream));
#endif
  } else {
    hepnn::cpu::batchnorm_backward(d.N, d.C, d.S, ptr<T>(x), m, p<T>(w), ptr<T>(sm), ptr<T>(si),
                                   ptr<T>(dy), training, p<T>(dx), p<T>(dw), p<T>(db));
  }
}

void batchnorm_backward(const Array& x, const OptArray& mask, const OptArray& weight,
                        const Array& save_mean, const Array& save_invstd, const Array& dy,
                        bool training, const OptArray& dx, const OptArray& dweight,
                        const OptArray& dbias, std::uintptr_t stream) {
  DType dt;
  const Dims d = check_x(x, "x", dt);
  const std::vector<int64_t> cshape{d.C};
  check_like(weight, x, dt, cshape, "weight");
  check_like(save_mean, x, dt, cshape, "save_mean");
  check_like(save_invstd, x, dt, cshape, "save_invstd");
  check_like(dy, x, dt, shape_of(x), "dy");
  check_like(dx, x, dt, shape_of(x), "dx");
  check_like(dweight, x, dt, cshape, "dweight");
  check_like(dbias, x, dt, cshape, "dbias");
  const std::uint8_t* m = check_mask(mask, x);
  require_disjoint(kOp, {{opt(dx), "dx"}, {opt(dweight), "dweight"}, {opt(dbias), "dbias"}},
                   {{&x, "x"}, {opt(weight), "weight"}, {&save_mean, "save_mean"},
                    {&save_invstd, "save_invstd"}, {&dy, "dy"}});
  nb::gil_scoped_release release;
  if (dt == DType::f32)
    run_backward<float>(d, x, m, weight, save_mean, save_invstd, dy, training, dx, dweight, dbias, stream);
  else
    run_backward<double>(d, x, m, weight, save_mean, save_invstd, dy, training, dx, dweight, dbias, stream);
}

}  // namespace
}  // namespace hepnn::py

HEPNN_BINDING(batchnorm) {
  using namespace hepnn::py;
  m.def("batchnorm_forward", &batchnorm_forward, nb::arg("x"), nb::arg("mask").none(),
        nb::arg("weight").none(), nb::arg("bias").none(), nb::arg("running_mean").none(),
        nb::arg("running_var").none(), nb::arg("training"), nb::arg("momentum"), nb::arg("eps"),
        nb::arg("y"), nb::arg("save_mean").none() = nb::none(),
        nb::arg("save_invstd").none() = nb::none(), nb::arg("stream") = 0,
        "Batch-norm forward over x (N, C, *points); running stats updated in place when training.");
  m.def("batchnorm_backward", &batchnorm_backward, nb::arg("x"), nb::arg("mask").none(),
        nb::arg("weight").none(), nb::arg("save_mean"), nb::arg("save_invstd"), nb::arg("dy"),
        nb::arg("training"), nb::arg("dx").none(), nb::arg("dweight").none(),
        nb::arg("dbias").none(), nb::arg("stream") = 0,
        "dx, dweight, dbias of batch norm from the saved mean and 1/std (each may be None).");
}
