// Fused losses: value and gradient with respect to the prediction in one pass.
// Per-sample weights w (HEP event weights, may be null). Reductions:
//   sum  -> sum_i w_i l_i;   mean -> sum_i w_i l_i / sum_i w_i   (plain mean when w is null);
//   none -> w_i l_if written to `out` (B x F for mse/bce, B for cross-entropy), grad is then
//           d(sum of out)/d pred; `loss` receives 0.
// Weighted mean with sum_i w_i == 0 throws ValueError "[op] event weights sum to zero".
// NOTE: weighted "mean" normalises by the sum of weights, the convention of weighted
// histograms, not torch's mean over w_i * l_i.
#pragma once
#include <cstdint>
#include "core/types.hpp"

namespace hepnn::cpu {

// pred, target: B x F (F features per sample, averaged within the sample for mean).
// `loss` (1 element) receives the reduced loss (0 for none); writing it to a buffer instead of
// returning it keeps the CUDA twin free of a host synchronisation. grad (B x F, may be null) = d loss / d pred.
template <typename T>
void mse_loss(index_t B, index_t F, const T* pred, const T* target, const T* w,
                Reduction red, T* out, T* grad, T* loss);

// Numerically stable binary cross-entropy on logits; pred, target: B x F.
template <typename T>
void bce_with_logits_loss(index_t B, index_t F, const T* logits, const T* target, const T* w,
                            Reduction red, T* out, T* grad, T* loss);

// Softmax cross-entropy with integer labels in [0, C): logits B x C, labels B.
// Throws ValueError for a label out of range.
template <typename T>
void cross_entropy_loss(index_t B, index_t C, const T* logits, const std::int64_t* labels,
                          const T* w, Reduction red, T* out, T* grad, T* loss);

}  // namespace hepnn::cpu
