// Fused optimizer steps on the CPU: SGD (momentum, nesterov), Adam/AdamW (amsgrad), RMSprop
// (centered, momentum), Adagrad. One pass per element, in the parameter's dtype like torch.optim,
// threaded over elements for large buffers.
#include "ops/optim.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>

#include "core/error.hpp"
#include "core/threadpool.hpp"

namespace hepnn {
namespace {

// Below this many elements one thread is faster than waking the pool.
constexpr index_t kGrain = 32768;

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void check_finite_min(const char* op, const char* name, double v, double lo) {
  if (!(std::isfinite(v) && v >= lo))
    throw ValueError(op_message(op, std::string(name) + " must be a finite number >= " + num(lo) + ", got " + num(v)));
}
void check_positive(const char* op, const char* name, double v) {
  if (!(std::isfinite(v) && v > 0.0))
    throw ValueError(op_message(op, std::string(name) + " must be a finite number > 0, got " + num(v)));
}
void check_unit(const char* op, const char* name, double v, bool one_allowed) {
  const bool ok = std::isfinite(v) && v >= 0.0 && (one_allowed ? v <= 1.0 : v < 1.0);
  if (!ok)
    throw ValueError(op_message(op, std::string(name) + " must be in [0, 1" + (one_allowed ? "]" : ")") + ", got " + num(v)));
}
void check_step(const char* op, std::int64_t step) {
  if (step < 1) throw ValueError(op_message(op, "step counts from 1, got " + std::to_string(step)));
}

// torch's lerp: the two forms keep a + w (b - a) exact at both ends of w; kLow = (w < 0.5) is
// decided once per call.
template <bool kLow, typename T>
inline T lerp(T a, T b, T w) {
  if constexpr (kLow) return a + w * (b - a);
  else return b - (b - a) * (T(1) - w);
}

// Calls f(std::true_type{}) or f(std::false_type{}): options become compile-time constants, so each
// loop body has no branch left and vectorises.
template <typename Fn>
void with_flag(bool flag, Fn&& f) {
  if (flag) f(std::true_type{});
  else f(std::false_type{});
}

template <typename Fn>
void for_elements(index_t n, Fn&& body) {
  parallel_for(n, kGrain, [&](index_t begin, index_t end) { body(begin, end); });
}

}  // namespace

void check_sgd_args(double lr, double momentum, double dampening, double weight_decay, bool nesterov) {
  const char* op = "sgd_step";
  check_finite_min(op, "lr", lr, 0.0);
  check_finite_min(op, "momentum", momentum, 0.0);
  if (!std::isfinite(dampening)) throw ValueError(op_message(op, "dampening must be finite, got " + num(dampening)));
  check_finite_min(op, "weight_decay", weight_decay, 0.0);
  if (nesterov && !(momentum > 0.0 && dampening == 0.0))
    throw ValueError(op_message(op, "nesterov momentum requires momentum > 0 and dampening == 0, got momentum=" +
                                        num(momentum) + ", dampening=" + num(dampening)));
}

void check_adam_args(std::int64_t step, double lr, double beta1, double beta2, double eps, double weight_decay) {
  const char* op = "adam_step";
  check_step(op, step);
  check_finite_min(op, "lr", lr, 0.0);
  check_unit(op, "beta1", beta1, false);
  check_unit(op, "beta2", beta2, false);
  check_positive(op, "eps", eps);
  check_finite_min(op, "weight_decay", weight_decay, 0.0);
}

void check_rmsprop_args(double lr, double alpha, double eps, double weight_decay, double momentum) {
  const char* op = "rmsprop_step";
  check_finite_min(op, "lr", lr, 0.0);
  check_unit(op, "alpha", alpha, true);
  check_positive(op, "eps", eps);
  check_finite_min(op, "weight_decay", weight_decay, 0.0);
  check_finite_min(op, "momentum", momentum, 0.0);
}

void check_adagrad_args(std::int64_t step, double lr, double lr_decay, double weight_decay, double eps) {
  const char* op = "adagrad_step";
  check_step(op, step);
  check_finite_min(op, "lr", lr, 0.0);
  check_finite_min(op, "lr_decay", lr_decay, 0.0);
  check_finite_min(op, "weight_decay", weight_decay, 0.0);
  check_positive(op, "eps", eps);
}

namespace cpu {
namespace {

// Each kernel's loop lives in a function that receives its pointers and constants by value: the
// stores through p could otherwise alias constants captured by reference, which blocks
// vectorisation. __restrict: parameters, gradients and states are distinct buffers.
// NOTE: GCC vectorises the loops that take a square root only under -fno-math-errno (otherwise
// every sqrt keeps a scalar errno branch); SGD vectorises either way.
template <typename T>
struct SgdArgs {
  T* p;
  const T* g;
  T* buf;
  T neg_lr, wd, mu, keep, sign;
  bool nesterov, first;
};

template <typename T, bool kWd, bool kBuf>
void sgd_range(index_t b, index_t e, SgdArgs<T> a) {
  T* __restrict p = a.p;
  const T* __restrict g = a.g;
  T* __restrict mb = a.buf;
  const T neg_lr = a.neg_lr, wd = a.wd, mu = a.mu, keep = a.keep, sign = a.sign;
  const bool nesterov = a.nesterov, first = a.first;
  for (index_t i = b; i < e; ++i) {
    T d = sign * g[i];
    if constexpr (kWd) d += wd * p[i];
    if constexpr (kBuf) {
      const T buf = first ? d : mb[i] * mu + keep * d;
      mb[i] = buf;
      d = nesterov ? d + mu * buf : buf;
    }
    p[i] += neg_lr * d;
  }
}

template <typename T>
struct AdamArgs {
  T* p;
  const T* g;
  T *m, *v, *vmax;
  T neg_step_size, bc2_sqrt, w1, b2, w2, eps, wd, shrink, sign;
};

template <typename T, bool kL2, bool kAms, bool kLow>
void adam_range(index_t b, index_t e, AdamArgs<T> a) {
  T* __restrict p = a.p;
  const T* __restrict g = a.g;
  T* __restrict ma = a.m;
  T* __restrict va = a.v;
  T* __restrict vmax = a.vmax;
  const T neg_step_size = a.neg_step_size, bc2_sqrt = a.bc2_sqrt, w1 = a.w1, b2 = a.b2, w2 = a.w2;
  const T eps = a.eps, wd = a.wd, shrink = a.shrink, sign = a.sign;
  for (index_t i = b; i < e; ++i) {
    T d = sign * g[i];
    const T pi = p[i] * shrink;
    if constexpr (kL2) d += wd * pi;
    const T m = lerp<kLow>(ma[i], d, w1);
    const T v = va[i] * b2 + w2 * d * d;
    ma[i] = m;
    va[i] = v;
    T vhat = v;
    if constexpr (kAms) {
      vhat = std::max(vmax[i], v);
      vmax[i] = vhat;
    }
    const T denom = std::sqrt(vhat) / bc2_sqrt + eps;
    p[i] = pi + neg_step_size * m / denom;
  }
}

template <typename T>
struct RmspropArgs {
  T* p;
  const T* g;
  T *sq, *ga, *buf;
  T neg_lr, alpha, wa, eps, wd, mu, sign;
};

template <typename T, bool kWd, bool kCentered, bool kBuf, bool kLow>
void rmsprop_range(index_t b, index_t e, RmspropArgs<T> a) {
  T* __restrict p = a.p;
  const T* __restrict g = a.g;
  T* __restrict sqa = a.sq;
  T* __restrict gaa = a.ga;
  T* __restrict mb = a.buf;
  const T neg_lr = a.neg_lr, alpha = a.alpha, wa = a.wa, eps = a.eps, wd = a.wd, mu = a.mu, sign = a.sign;
  for (index_t i = b; i < e; ++i) {
    T d = sign * g[i];
    if constexpr (kWd) d += wd * p[i];
    const T sq = sqa[i] * alpha + wa * d * d;
    sqa[i] = sq;
    T avg;
    if constexpr (kCentered) {
      const T ga = lerp<kLow>(gaa[i], d, wa);
      gaa[i] = ga;
      avg = std::sqrt(sq - ga * ga);
    } else {
      avg = std::sqrt(sq);
    }
    avg += eps;
    if constexpr (kBuf) {
      const T buf = mb[i] * mu + d / avg;
      mb[i] = buf;
      p[i] += neg_lr * buf;
    } else {
      p[i] += neg_lr * d / avg;
    }
  }
}

template <typename T>
struct AdagradArgs {
  T* p;
  const T* g;
  T* sum;
  T neg_clr, eps, wd, sign;
};

template <typename T, bool kWd>
void adagrad_range(index_t b, index_t e, AdagradArgs<T> a) {
  T* __restrict p = a.p;
  const T* __restrict g = a.g;
  T* __restrict sa = a.sum;
  const T neg_clr = a.neg_clr, eps = a.eps, wd = a.wd, sign = a.sign;
  for (index_t i = b; i < e; ++i) {
    T d = sign * g[i];
    if constexpr (kWd) d += wd * p[i];
    const T s = sa[i] + d * d;
    sa[i] = s;
    p[i] += neg_clr * d / (std::sqrt(s) + eps);
  }
}

}  // namespace

template <typename T>
void sgd_step(index_t n, T* p, const T* g, T* momentum_buf, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool maximize, bool first) {
  check_sgd_args(lr, momentum, dampening, weight_decay, nesterov);
  const bool use_buf = momentum != 0.0;
  check_value(!use_buf || momentum_buf, "sgd_step", "momentum > 0 needs a momentum buffer");
  const SgdArgs<T> args{p, g, momentum_buf, static_cast<T>(-lr), static_cast<T>(weight_decay),
                        static_cast<T>(momentum), static_cast<T>(1.0 - dampening), maximize ? T(-1) : T(1),
                        nesterov, first};
  with_flag(weight_decay != 0.0, [&](auto kWd) {
    with_flag(use_buf, [&](auto kBuf) {
      for_elements(n, [&](index_t b, index_t e) { sgd_range<T, kWd.value, kBuf.value>(b, e, args); });
    });
  });
}

template <typename T>
void adam_step(index_t n, T* p, const T* g, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, std::int64_t step,
               double lr, double beta1, double beta2, double eps, double weight_decay, bool decoupled, bool amsgrad,
               bool maximize) {
  check_adam_args(step, lr, beta1, beta2, eps, weight_decay);
  check_value(!amsgrad || max_exp_avg_sq, "adam_step", "amsgrad needs max_exp_avg_sq");
  // NOTE: the bias corrections are formed in double like torch's Python scalars, then rounded
  // to T once, so float32 steps match torch's float32 steps.
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  // Multiplying by exactly 1 when there is no decoupled decay changes nothing, even for inf/NaN.
  const T shrink = weight_decay != 0.0 && decoupled ? static_cast<T>(1.0 - lr * weight_decay) : T(1);
  const AdamArgs<T> args{p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, static_cast<T>(-(lr / bc1)),
                         static_cast<T>(std::sqrt(bc2)), static_cast<T>(1.0 - beta1), static_cast<T>(beta2),
                         static_cast<T>(1.0 - beta2), static_cast<T>(eps), static_cast<T>(weight_decay), shrink,
                         maximize ? T(-1) : T(1)};
  with_flag(weight_decay != 0.0 && !decoupled, [&](auto kL2) {
    with_flag(amsgrad, [&](auto kAms) {
      with_flag(args.w1 < T(0.5), [&](auto kLow) {
        for_elements(n, [&](index_t b, index_t e) {
          adam_range<T, kL2.value, kAms.value, kLow.value>(b, e, args);
        });
      });
    });
  });
}

template <typename T>
void rmsprop_step(index_t n, T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buf, double lr,
                  double alpha, double eps, double weight_decay, double momentum, bool centered, bool maximize) {
  check_rmsprop_args(lr, alpha, eps, weight_decay, momentum);
  check_value(!centered || grad_avg, "rmsprop_step", "centered needs grad_avg");
  const bool use_buf = momentum > 0.0;
  check_value(!use_buf || momentum_buf, "rmsprop_step", "momentum > 0 needs a momentum buffer");
  const RmspropArgs<T> args{p, g, square_avg, grad_avg, momentum_buf, static_cast<T>(-lr), static_cast<T>(alpha),
                            static_cast<T>(1.0 - alpha), static_cast<T>(eps), static_cast<T>(weight_decay),
                            static_cast<T>(momentum), maximize ? T(-1) : T(1)};
  with_flag(weight_decay != 0.0, [&](auto kWd) {
    with_flag(centered, [&](auto kCentered) {
      with_flag(use_buf, [&](auto kBuf) {
        with_flag(args.wa < T(0.5), [&](auto kLow) {
          for_elements(n, [&](index_t b, index_t e) {
            rmsprop_range<T, kWd.value, kCentered.value, kBuf.value, kLow.value>(b, e, args);
          });
        });
      });
    });
  });
}

template <typename T>
void adagrad_step(index_t n, T* p, const T* g, T* state_sum, std::int64_t step, double lr, double lr_decay,
                  double weight_decay, double eps, bool maximize) {
  check_adagrad_args(step, lr, lr_decay, weight_decay, eps);
  const AdagradArgs<T> args{p, g, state_sum, static_cast<T>(-(lr / (1.0 + static_cast<double>(step - 1) * lr_decay))),
                            static_cast<T>(eps), static_cast<T>(weight_decay), maximize ? T(-1) : T(1)};
  with_flag(weight_decay != 0.0, [&](auto kWd) {
    for_elements(n, [&](index_t b, index_t e) { adagrad_range<T, kWd.value>(b, e, args); });
  });
}

#define HEPNN_INSTANTIATE_OPTIM(T)                                                                      \
  template void sgd_step<T>(index_t, T*, const T*, T*, double, double, double, double, bool, bool, bool); \
  template void adam_step<T>(index_t, T*, const T*, T*, T*, T*, std::int64_t, double, double, double,     \
                             double, double, bool, bool, bool);                                           \
  template void rmsprop_step<T>(index_t, T*, const T*, T*, T*, T*, double, double, double, double,        \
                                double, bool, bool);                                                      \
  template void adagrad_step<T>(index_t, T*, const T*, T*, std::int64_t, double, double, double, double,  \
                                bool);
HEPNN_INSTANTIATE_OPTIM(float)
HEPNN_INSTANTIATE_OPTIM(double)
#undef HEPNN_INSTANTIATE_OPTIM

}  // namespace cpu
}  // namespace hepnn
