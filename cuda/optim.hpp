// CUDA twin of cpp/ops/optim.hpp (same signature plus the stream to launch on).
// Fused optimizer steps over one parameter buffer of n elements; the bindings call them for every
// parameter of a model in one call. Formulas and argument names follow torch.optim.
#pragma once
#include <cstdint>
#include "core/types.hpp"

namespace hepnn::cuda {

// `first`: the momentum buffer is uninitialised (torch initialises it to the gradient).
template <typename T>
void sgd_step(index_t n, T* p, const T* g, T* momentum_buf, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov, bool maximize, bool first, Stream stream);

// Adam and AdamW (decoupled = true). `step` counts from 1.
template <typename T>
void adam_step(index_t n, T* p, const T* g, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
               std::int64_t step, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled, bool amsgrad, bool maximize, Stream stream);

// grad_avg used when centered, momentum_buf when momentum > 0 (else may be null).
template <typename T>
void rmsprop_step(index_t n, T* p, const T* g, T* square_avg, T* grad_avg, T* momentum_buf,
                  double lr, double alpha, double eps, double weight_decay, double momentum,
                  bool centered, bool maximize, Stream stream);

template <typename T>
void adagrad_step(index_t n, T* p, const T* g, T* state_sum, std::int64_t step, double lr,
                  double lr_decay, double weight_decay, double eps, bool maximize, Stream stream);

}  // namespace hepnn::cuda
