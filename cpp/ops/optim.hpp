// Fused optimizer steps over one parameter buffer of n elements; the bindings call them for every
// parameter of a model in one call. Formulas and argument names follow torch.optim.
#pragma once
#include <cstdint>
#include "core/types.hpp"

namespace hepnn {

// Hyper-parameter checks shared by the CPU kernels and the bindings (which run them once before
// updating any parameter, on either backend): ValueError "[<op>] ..." for NaN/inf, a negative lr,
// betas outside [0, 1), eps <= 0, step < 1, nesterov without momentum or with dampening ...
void check_sgd_args(double lr, double momentum, double dampening, double weight_decay, bool nesterov);
void check_adam_args(std::int64_t step, double lr, double beta1, double beta2, double eps, double weight_decay);
void check_rmsprop_args(double lr, double alpha, double eps, double weight_decay, double momentum);
void check_adagrad_args(std::int64_t step, double lr, double lr_decay, double weight_decay, double eps);

}  // namespace hepnn

namespace hepnn::cpu {

// `first`: the momentum buffer is uninitialised (torch initialises it to the gradient).
template <typename T>
void sgd_step(index_t n, T* p, const T* g, T* momentum_buf, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool maximize, bool first);

// Adam and AdamW (decoupled = true). `step` counts from 1.
template <typename T>
void adam_step(index_t n, T* p, const T* g, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
               std::int64_t step, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled, bool amsgrad, bool maximize);

// grad_avg used when centered, momentum_buf when momentum > 0 (else may be null).
template <typename T>
void rmsprop_step(index_t n, T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buf,
                  double lr, double alpha, double eps, double weight_decay, double momentum,
                  bool centered, bool maximize);

template <typename T>
void adagrad_step(index_t n, T* p, const T* g, T* state_sum, std::int64_t step, double lr,
                  double lr_decay, double weight_decay, double eps, bool maximize);

}  // namespace hepnn::cpu
