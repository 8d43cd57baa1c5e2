// Fused optimizer steps on the CPU: SGD (momentum, nesterov), Adam/AdamW (amsgrad), RMSprop
// (centered, momentum), Adagrad. One pass per element, in the parameter's dtype like torch.optim,
// threaded over elements for large buffers.
#include "ops/optim.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

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
  check_value(std::isfinite(v) && v >= lo, op,
              std::string(name) + " must be a finite number >= " + num(lo) + ", got " + num(v));
}
void check_positive(const char* op, const char* name, double v) {
  check_value(std::isfinite(v) && v > 0.0, op, std::string(name) + " must be a finite number > 0, got " + num(v));
}
void check_unit(const char* op, const char* name, double v, bool one_allowed) {
  const bool ok = std::isfinite(v) && v >= 0.0 && (one_allowed ? v <= 1.0 : v < 1.0);
  check_value(ok, op, std::string(name) + " must be in [0, 1" + (one_allowed ? "]" : ")") + ", got " + num(v));
}
void check_step(const char* op, std::int64_t step) {
  check_value(step >= 1, op, "step counts from 1, got " + std::to_string(step));
}

// torch's lerp: the two branches keep a + w (b - a) exact at both ends of w.
template <typename T>
inline T lerp(T a, T b, T w) {
  return w < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
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
  check_value(std::isfinite(dampening), op, "dampening must be finite, got " + num(dampening));
  check_finite_min(op, "weight_decay", weight_decay, 0.0);
  check_value(!nesterov || (momentum > 0.0 && dampening == 0.0), op,
              "nesterov momentum requires momentum > 0 and dampening == 0, got momentum=" + num(momentum) +
                  ", dampening=" + num(dampening));
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

template <typename T>
void sgd_step(index_t n, T* p, const T* g, T* momentum_buf, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool maximize, bool first) {
  check_sgd_args(lr, momentum, dampening, weight_decay, nesterov);
  const bool use_buf = momentum != 0.0;
  check_value(!use_buf || momentum_buf, "sgd_step", "momentum > 0 needs a momentum buffer");
  const T neg_lr = static_cast<T>(-lr), wd = static_cast<T>(weight_decay), mu = static_cast<T>(momentum);
  const T keep = static_cast<T>(1.0 - dampening);
  const T sign = maximize ? T(-1) : T(1);
  for_elements(n, [&](index_t b, index_t e) {
    for (index_t i = b; i < e; ++i) {
      T d = sign * g[i];
      if (weight_decay != 0.0) d += wd * p[i];
      if (use_buf) {
        const T buf = first ? d : momentum_buf[i] * mu + keep * d;
        momentum_buf[i] = buf;
        d = nesterov ? d + mu * buf : buf;
      }
      p[i] += neg_lr * d;
    }
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
  const T neg_step_size = static_cast<T>(-(lr / bc1));
  const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
  const T w1 = static_cast<T>(1.0 - beta1), b2 = static_cast<T>(beta2), w2 = static_cast<T>(1.0 - beta2);
  const T e = static_cast<T>(eps), wd = static_cast<T>(weight_decay);
  const T shrink = static_cast<T>(1.0 - lr * weight_decay);
  const bool l2 = weight_decay != 0.0 && !decoupled, decay = weight_decay != 0.0 && decoupled;
  const T sign = maximize ? T(-1) : T(1);
  for_elements(n, [&](index_t b, index_t end) {
    for (index_t i = b; i < end; ++i) {
      T d = sign * g[i];
      T pi = p[i];
      if (decay) pi *= shrink;
      if (l2) d += wd * pi;
      const T m = lerp(exp_avg[i], d, w1);
      const T v = exp_avg_sq[i] * b2 + w2 * d * d;
      exp_avg[i] = m;
      exp_avg_sq[i] = v;
      T vhat = v;
      if (amsgrad) {
        vhat = std::max(max_exp_avg_sq[i], v);
        max_exp_avg_sq[i] = vhat;
      }
      const T denom = std::sqrt(vhat) / bc2_sqrt + e;
      p[i] = pi + neg_step_size * m / denom;
    }
  });
}

template <typename T>
void rmsprop_step(index_t n, T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buf, double lr,
                  double alpha, double eps, double weight_decay, double momentum, bool centered, bool maximize) {
  check_rmsprop_args(lr, alpha, eps, weight_decay, momentum);
  check_value(!centered || grad_avg, "rmsprop_step", "centered needs grad_avg");
  const bool use_buf = momentum > 0.0;
  check_value(!use_buf || momentum_buf, "rmsprop_step", "momentum > 0 needs a momentum buffer");
  const T neg_lr = static_cast<T>(-lr), a = static_cast<T>(alpha), wa = static_cast<T>(1.0 - alpha);
  const T e = static_cast<T>(eps), wd = static_cast<T>(weight_decay), mu = static_cast<T>(momentum);
  const T sign = maximize ? T(-1) : T(1);
  for_elements(n, [&](index_t b, index_t end) {
    for (index_t i = b; i < end; ++i) {
      T d = sign * g[i];
      if (weight_decay != 0.0) d += wd * p[i];
      const T sq = square_avg[i] * a + wa * d * d;
      square_avg[i] = sq;
      T avg;
      if (centered) {
        const T ga = lerp(grad_avg[i], d, wa);
        grad_avg[i] = ga;
        avg = std::sqrt(sq - ga * ga);
      } else {
        avg = std::sqrt(sq);
      }
      avg += e;
      if (use_buf) {
        const T buf = momentum_buf[i] * mu + d / avg;
        momentum_buf[i] = buf;
        p[i] += neg_lr * buf;
      } else {
        p[i] += neg_lr * d / avg;
      }
    }
  });
}

template <typename T>
void adagrad_step(index_t n, T* p, const T* g, T* state_sum, std::int64_t step, double lr, double lr_decay,
                  double weight_decay, double eps, bool maximize) {
  check_adagrad_args(step, lr, lr_decay, weight_decay, eps);
  const T neg_clr = static_cast<T>(-(lr / (1.0 + static_cast<double>(step - 1) * lr_decay)));
  const T e = static_cast<T>(eps), wd = static_cast<T>(weight_decay);
  const T sign = maximize ? T(-1) : T(1);
  for_elements(n, [&](index_t b, index_t end) {
    for (index_t i = b; i < end; ++i) {
      T d = sign * g[i];
      if (weight_decay != 0.0) d += wd * p[i];
      const T s = state_sum[i] + d * d;
      state_sum[i] = s;
      p[i] += neg_clr * d / (std::sqrt(s) + e);
    }
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
