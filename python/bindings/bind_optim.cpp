// Bindings of the fused optimizer steps: each takes the lists of every parameter, gradient and state
// buffer of a model, checks all of them and the hyper-parameters first (a rejected call changes
// nothing), then updates the whole list with the GIL released.
#include <nanobind/stl/vector.h>

#include <initializer_list>
#include <string>
#include <utility>

#include "common.hpp"
#include "core/threadpool.hpp"
#include "ops/optim.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/optim.hpp"
#endif

namespace hepnn::py {
namespace {

using ArrayList = std::vector<Array>;
using OptArrayList = std::optional<ArrayList>;
// Lists the step writes to arrive as plain objects: each is imported as a writable array so that a
// read-only one (say, a NumPy view with writeable=False) is refused instead of changed in place.
using ObjList = std::vector<nb::object>;
using OptObjList = std::optional<ObjList>;

// Parameters at least this large are threaded inside their kernel; smaller ones are spread over
// the pool one parameter per task (a model's many biases would each be too small to split).
// NOTE: must not exceed the kernels' grain (32768 in cpp/ops/optim.cpp): a kernel run on the
// calling thread inside parallel_for that tried to split again would wait on the busy pool.
constexpr int64_t kLargeParam = 32768;

std::string item(const char* list, size_t i) { return std::string(list) + "[" + std::to_string(i) + "]"; }

// Names like "params[3]" are only built for a message: a model has many parameters, and strings
// made on the success path cost more than the step of a small one.
Array writable(const nb::object& o, const char* op, const char* list, size_t i) {
  nb::ndarray<> w;
  if (nb::try_cast(o, w, false)) return Array(w);
  const std::string name = item(list, i);
  Array r;
  if (nb::try_cast(o, r, false))
    throw ValueError(op_message(op, name + " is read-only; the step updates it in place"));
  throw TypeError(op_message(op, name + " is not an array (expected NumPy, CuPy or another DLPack array), got " +
                                     std::string(nb::type_name(o.type()).c_str())));
}

ArrayList writable_list(const ObjList& l, const char* op, const char* name) {
  ArrayList out;
  out.reserve(l.size());
  for (size_t i = 0; i < l.size(); ++i) out.push_back(writable(l[i], op, name, i));
  return out;
}
OptArrayList writable_list(const OptObjList& l, const char* op, const char* name) {
  if (!l) return std::nullopt;
  return writable_list(*l, op, name);
}

void check_length(const ArrayList& l, size_t n, const char* op, const char* name) {
  if (l.size() != n)
    throw ValueError(op_message(op, std::string(name) + " has " + std::to_string(l.size()) + " arrays, params has " +
                                        std::to_string(n)));
}

// The list `name` is required when `needed` (ValueError naming the option that needs it).
void check_optional_list(const OptArrayList& l, bool needed, size_t n, const char* op, const char* name,
                         const char* why) {
  if (needed && !l) throw ValueError(op_message(op, std::string(name) + " is None, but " + why + " needs it"));
  if (l) check_length(*l, n, op, name);
}

bool c_contiguous(const Array& a) {
  int64_t expected = 1;
  for (size_t d = a.ndim(); d-- > 0;) {
    if (a.shape(d) != 1 && a.stride(d) != expected) return false;
    expected *= static_cast<int64_t>(a.shape(d));
  }
  return true;
}

void check_param(const Array& p, const char* op, size_t i) {
  const bool float_ok = p.dtype() == nb::dtype<float>() || p.dtype() == nb::dtype<double>();
  if (is_cpu(p) && float_ok && c_contiguous(p)) return;
  const std::string name = item("params", i);
  require_supported_device(p, op, name.c_str());
  float_dtype(p, op, name.c_str());
  require_contiguous(p, op, name.c_str());
}

// A gradient or state buffer: same device, dtype and shape as its parameter, contiguous.
void check_companion(const Array& a, const Array& p, const char* op, const char* list, size_t i) {
  bool ok = a.device_type() == p.device_type() && a.device_id() == p.device_id() && a.dtype() == p.dtype() &&
            a.ndim() == p.ndim() && c_contiguous(a);
  for (size_t d = 0; ok && d < p.ndim(); ++d) ok = a.shape(d) == p.shape(d);
  if (ok) return;
  const std::string name = item(list, i);
  require_same_device(a, p, op, name.c_str());
  require_dtype(a, float_dtype(p, op, "params"), op, name.c_str());
  std::vector<int64_t> shape;
  for (size_t d = 0; d < p.ndim(); ++d) shape.push_back(static_cast<int64_t>(p.shape(d)));
  require_shape(a, shape, op, name.c_str());
  require_contiguous(a, op, name.c_str());
}

void check_companions(const ArrayList& params, const OptArrayList& l, const char* op, const char* list) {
  if (!l) return;
  for (size_t i = 0; i < params.size(); ++i) check_companion((*l)[i], params[i], op, list, i);
}

// The kernels assume every buffer of one parameter is its own (restrict pointers): a state passed
// twice, or a gradient that is the parameter itself, is refused. Absent lists are nullptr.
void check_distinct(size_t n, std::initializer_list<std::pair<const char*, const ArrayList*>> lists, const char* op) {
  for (size_t i = 0; i < n; ++i) {
    if (numel((*lists.begin()->second)[i]) == 0) continue;
    for (auto a = lists.begin(); a != lists.end(); ++a) {
      if (!a->second) continue;
      for (auto b = a + 1; b != lists.end(); ++b) {
        if (!b->second) continue;
        if ((*a->second)[i].data() == (*b->second)[i].data())
          throw ValueError(op_message(op, item(b->first, i) + " is the same buffer as " + item(a->first, i)));
      }
    }
  }
}
const ArrayList* list_or_null(const OptArrayList& l) { return l ? &*l : nullptr; }

template <typename T>
T* at(const OptArrayList& l, size_t i) {
  return l ? ptr<T>((*l)[i]) : nullptr;
}

// Runs update(i, T-tag) for every parameter: large CPU ones one after the other (threaded inside),
// small CPU ones spread over the pool, CUDA ones in order on their stream.
template <typename Update>
void run_all(const ArrayList& params, Update&& update) {
  auto one = [&](size_t i) {
    if (params[i].dtype() == nb::dtype<float>()) update(i, float{});
    else update(i, double{});
  };
  std::vector<size_t> small;
  int64_t small_total = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    if (is_cpu(params[i]) && numel(params[i]) < kLargeParam) {
      small.push_back(i);
      small_total += numel(params[i]);
    } else {
      one(i);
    }
  }
  const index_t grain = small_total < kLargeParam ? static_cast<index_t>(small.size()) : 1;
  parallel_for(static_cast<index_t>(small.size()), grain, [&](index_t b, index_t e) {
    for (index_t k = b; k < e; ++k) one(small[static_cast<size_t>(k)]);
  });
}

void sgd(const ArrayList& params, const ArrayList& grads, const OptArrayList& bufs, double lr, double momentum,
         double dampening, double weight_decay, bool nesterov, bool maximize, bool first, std::uintptr_t stream) {
  const char* op = "sgd_step";
  check_sgd_args(lr, momentum, dampening, weight_decay, nesterov);
  const size_t n = params.size();
  check_length(grads, n, op, "grads");
  check_optional_list(bufs, momentum != 0.0, n, op, "momentum_bufs", "momentum != 0");
  for (size_t i = 0; i < n; ++i) check_param(params[i], op, i);
  check_companions(params, grads, op, "grads");
  check_companions(params, bufs, op, "momentum_bufs");
  check_distinct(n, {{"params", &params}, {"grads", &grads}, {"momentum_bufs", list_or_null(bufs)}}, op);
  const OptArrayList no_bufs;
  const OptArrayList& b = momentum != 0.0 ? bufs : no_bufs;
  nb::gil_scoped_release release;
  run_all(params, [&](size_t i, auto tag) {
    using T = decltype(tag);
    const index_t len = numel(params[i]);
    if (is_cuda(params[i])) {
#if defined(HEPNN_WITH_CUDA)
      hepnn::cuda::sgd_step<T>(len, ptr<T>(params[i]), ptr<T>(grads[i]), at<T>(b, i), lr, momentum, dampening,
                               weight_decay, nesterov, maximize, first, to_stream(stream));
#endif
    } else {
      hepnn::cpu::sgd_step<T>(len, ptr<T>(params[i]), ptr<T>(grads[i]), at<T>(b, i), lr, momentum, dampening,
                              weight_decay, nesterov, maximize, first);
    }
  });
}

void adam(const ArrayList& params, const ArrayList& grads, const ArrayList& exp_avgs, const ArrayList& exp_avg_sqs,
          const OptArrayList& max_sqs, std::int64_t step, double lr, double beta1, double beta2, double eps,
          double weight_decay, bool decoupled, bool amsgrad, bool maximize, std::uintptr_t stream) {
  const char* op = "adam_step";
  check_adam_args(step, lr, beta1, beta2, eps, weight_decay);
  const size_t n = params.size();
  check_length(grads, n, op, "grads");
  check_length(exp_avgs, n, op, "exp_avgs");
  check_length(exp_avg_sqs, n, op, "exp_avg_sqs");
  check_optional_list(max_sqs, amsgrad, n, op, "max_exp_avg_sqs", "amsgrad");
  for (size_t i = 0; i < n; ++i) check_param(params[i], op, i);
  check_companions(params, grads, op, "grads");
  check_companions(params, exp_avgs, op, "exp_avgs");
  check_companions(params, exp_avg_sqs, op, "exp_avg_sqs");
  check_companions(params, max_sqs, op, "max_exp_avg_sqs");
  check_distinct(n, {{"params", &params}, {"grads", &grads}, {"exp_avgs", &exp_avgs}, {"exp_avg_sqs", &exp_avg_sqs},
                     {"max_exp_avg_sqs", list_or_null(max_sqs)}}, op);
  const OptArrayList none;
  const OptArrayList& mx = amsgrad ? max_sqs : none;
  nb::gil_scoped_release release;
  run_all(params, [&](size_t i, auto tag) {
    using T = decltype(tag);
    const index_t len = numel(params[i]);
    if (is_cuda(params[i])) {
#if defined(HEPNN_WITH_CUDA)
      hepnn::cuda::adam_step<T>(len, ptr<T>(params[i]), ptr<T>(grads[i]), ptr<T>(exp_avgs[i]),
                                ptr<T>(exp_avg_sqs[i]), at<T>(mx, i), step, lr, beta1, beta2, eps, weight_decay,
                                decoupled, amsgrad, maximize, to_stream(stream));
#endif
    } else {
      hepnn::cpu::adam_step<T>(len, ptr<T>(params[i]), ptr<T>(grads[i]), ptr<T>(exp_avgs[i]), ptr<T>(exp_avg_sqs[i]),
                               at<T>(mx, i), step, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize);
    }
  });
}

void rmsprop(const ArrayList& params, const ArrayList& grads, const ArrayList& square_avgs,
             const OptArrayList& grad_avgs, const OptArrayList& bufs, double lr, double alpha, double eps,
             double weight_decay, double momentum, bool centered, bool maximize, std::uintptr_t stream) {
  const char* op = "rmsprop_step";
  check_rmsprop_args(lr, alpha, eps, weight_decay, momentum);
  const size_t n = params.size();
  check_length(grads, n, op, "grads");
  check_length(square_avgs, n, op, "square_avgs");
  check_optional_list(grad_avgs, centered, n, op, "grad_avgs", "centered");
  check_optional_list(bufs, momentum > 0.0, n, op, "momentum_bufs", "momentum > 0");
  for (size_t i = 0; i < n; ++i) check_param(params[i], op, i);
  check_companions(params, grads, op, "grads");
  check_companions(params, square_avgs, op, "square_avgs");
  check_companions(params, grad_avgs, op, "grad_avgs");
  check_companions(params, bufs, op, "momentum_bufs");
  check_distinct(n, {{"params", &params}, {"grads", &grads}, {"square_avgs", &square_avgs},
                     {"grad_avgs", list_or_null(grad_avgs)}, {"momentum_bufs", list_or_null(bufs)}}, op);
  const OptArrayList none;
  const OptArrayList& ga = centered ? grad_avgs : none;
  const OptArrayList& mb = momentum > 0.0 ? bufs : none;
  nb::gil_scoped_release release;
  run_all(params, [&](size_t i, auto tag) {
    using T = decltype(tag);
    const index_t len = numel(params[i]);
    if (is_cuda(params[i])) {
#if defined(HEPNN_WITH_CUDA)
      hepnn::cuda::rmsprop_step<T>(len, ptr<T>(params[i]), ptr<T>(grads[i]), ptr<T>(square_avgs[i]), at<T>(ga, i),
                                   at<T>(mb, i), lr, alpha, eps, weight_decay, momentum, centered, maximize,
                                   to_stream(stream));
#endif
    } else {
      hepnn::cpu::rmsprop_step<T>(len, ptr<T>(params[i]), ptr<T>(grads[i]), ptr<T>(square_avgs[i]), at<T>(ga, i),
                                  at<T>(mb, i), lr, alpha, eps, weight_decay, momentum, centered, maximize);
    }
  });
}

void adagrad(const ArrayList& params, const ArrayList& grads, const ArrayList& state_sums, std::int64_t step,
             double lr, double lr_decay, double weight_decay, double eps, bool maximize, std::uintptr_t stream) {
  const char* op = "adagrad_step";
  check_adagrad_args(step, lr, lr_decay, weight_decay, eps);
  const size_t n = params.size();
  check_length(grads, n, op, "grads");
  check_length(state_sums, n, op, "state_sums");
  for (size_t i = 0; i < n; ++i) check_param(params[i], op, i);
  check_companions(params, grads, op, "grads");
  check_companions(params, state_sums, op, "state_sums");
  check_distinct(n, {{"params", &params}, {"grads", &grads}, {"state_sums", &state_sums}}, op);
  nb::gil_scoped_release release;
  run_all(params, [&](size_t i, auto tag) {
    using T = decltype(tag);
    const index_t len = numel(params[i]);
    if (is_cuda(params[i])) {
#if defined(HEPNN_WITH_CUDA)
      hepnn::cuda::adagrad_step<T>(len, ptr<T>(params[i]), ptr<T>(grads[i]), ptr<T>(state_sums[i]), step, lr,
                                   lr_decay, weight_decay, eps, maximize, to_stream(stream));
#endif
    } else {
      hepnn::cpu::adagrad_step<T>(len, ptr<T>(params[i]), ptr<T>(grads[i]), ptr<T>(state_sums[i]), step, lr,
                                  lr_decay, weight_decay, eps, maximize);
    }
  });
}

}  // namespace
}  // namespace hepnn::py

HEPNN_BINDING(optim) {
  using namespace hepnn::py;
  namespace nb = nanobind;
  m.def("sgd_step",
        [](const ObjList& params, const ArrayList& grads, const OptObjList& bufs, double lr, double momentum,
           double dampening, double weight_decay, bool nesterov, bool maximize, bool first, std::uintptr_t stream) {
          const char* op = "sgd_step";
          sgd(writable_list(params, op, "params"), grads, writable_list(bufs, op, "momentum_bufs"), lr, momentum,
              dampening, weight_decay, nesterov, maximize, first, stream);
        },
        nb::arg("params"), nb::arg("grads"), nb::arg("momentum_bufs").none(), nb::arg("lr"),
        nb::arg("momentum") = 0.0, nb::arg("dampening") = 0.0, nb::arg("weight_decay") = 0.0,
        nb::arg("nesterov") = false, nb::arg("maximize") = false, nb::arg("first") = false, nb::arg("stream") = 0,
        "SGD step (torch.optim.SGD formulas) on every parameter of the lists, in place. `first`: the momentum "
        "buffers are uninitialised and receive the gradient.");
  m.def("adam_step",
        [](const ObjList& params, const ArrayList& grads, const ObjList& exp_avgs, const ObjList& exp_avg_sqs,
           const OptObjList& max_sqs, std::int64_t step, double lr, double beta1, double beta2, double eps,
           double weight_decay, bool decoupled, bool amsgrad, bool maximize, std::uintptr_t stream) {
          const char* op = "adam_step";
          adam(writable_list(params, op, "params"), grads, writable_list(exp_avgs, op, "exp_avgs"),
               writable_list(exp_avg_sqs, op, "exp_avg_sqs"), writable_list(max_sqs, op, "max_exp_avg_sqs"), step,
               lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, maximize, stream);
        },
        nb::arg("params"), nb::arg("grads"), nb::arg("exp_avgs"), nb::arg("exp_avg_sqs"),
        nb::arg("max_exp_avg_sqs").none(), nb::arg("step"), nb::arg("lr") = 1e-3, nb::arg("beta1") = 0.9,
        nb::arg("beta2") = 0.999, nb::arg("eps") = 1e-8, nb::arg("weight_decay") = 0.0, nb::arg("decoupled") = false,
        nb::arg("amsgrad") = false, nb::arg("maximize") = false, nb::arg("stream") = 0,
        "Adam step (AdamW when decoupled=True), torch.optim formulas, in place; `step` counts from 1.");
  m.def("rmsprop_step",
        [](const ObjList& params, const ArrayList& grads, const ObjList& square_avgs, const OptObjList& grad_avgs,
           const OptObjList& bufs, double lr, double alpha, double eps, double weight_decay, double momentum,
           bool centered, bool maximize, std::uintptr_t stream) {
          const char* op = "rmsprop_step";
          rmsprop(writable_list(params, op, "params"), grads, writable_list(square_avgs, op, "square_avgs"),
                  writable_list(grad_avgs, op, "grad_avgs"), writable_list(bufs, op, "momentum_bufs"), lr, alpha,
                  eps, weight_decay, momentum, centered, maximize, stream);
        },
        nb::arg("params"), nb::arg("grads"), nb::arg("square_avgs"), nb::arg("grad_avgs").none(),
        nb::arg("momentum_bufs").none(), nb::arg("lr") = 1e-2, nb::arg("alpha") = 0.99, nb::arg("eps") = 1e-8,
        nb::arg("weight_decay") = 0.0, nb::arg("momentum") = 0.0, nb::arg("centered") = false,
        nb::arg("maximize") = false, nb::arg("stream") = 0,
        "RMSprop step (torch.optim.RMSprop formulas) in place; grad_avgs needed when centered, momentum_bufs when "
        "momentum > 0.");
  m.def("adagrad_step",
        [](const ObjList& params, const ArrayList& grads, const ObjList& state_sums, std::int64_t step, double lr,
           double lr_decay, double weight_decay, double eps, bool maximize, std::uintptr_t stream) {
          const char* op = "adagrad_step";
          adagrad(writable_list(params, op, "params"), grads, writable_list(state_sums, op, "state_sums"), step, lr,
                  lr_decay, weight_decay, eps, maximize, stream);
        },
        nb::arg("params"), nb::arg("grads"), nb::arg("state_sums"), nb::arg("step"), nb::arg("lr") = 1e-2,
        nb::arg("lr_decay") = 0.0, nb::arg("weight_decay") = 0.0, nb::arg("eps") = 1e-10, nb::arg("maximize") = false,
        nb::arg("stream") = 0, "Adagrad step (torch.optim.Adagrad formulas) in place; `step` counts from 1.");
}
