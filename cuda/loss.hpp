// CUDA twin of cpp/ops/loss.hpp (same signature plus the stream to launch on).
// Fused losses: value and gradient with respect to the prediction in one pass.
// Per-sample weights w (HEP event weights, may be null). Reductions:
//   sum  -> sum_i w_i l_i;   mean -> sum_i w_i l_i / sum_i w_i   (plain mean when w is null);
//   none -> unreduced losses w_i l written to `out` (B x F for mse/bce, B for cross-entropy),
//           grad is then the gradient of their sum; `out` is not touched for mean/sum.
// NOTE: weighted "mean" normalises by the sum of weights, the convention of weighted
// histograms, not torch's mean over w_i * l_i.
#pragma once
#include <cstdint>
#include "core/types.hpp"

namespace hepnn::cuda {

// pred, target: B x F (F features per sample, averaged within the sample for mean).
// `loss` (1 element, device memory) receives the reduced loss (0 for none) in stream order: no
// host synchronisation. grad (B x F, may be null) = d loss / d pred. Same-size inputs give
// bitwise-identical results (fixed reduction order).
template <typename T>
void mse_loss(index_t B, index_t F, const T* pred, const T* target, const T* w,
                Reduction red, T* out, T* grad, T* loss, Stream stream);

// Numerically stable binary cross-entropy on logits; pred, target: B x F.
template <typename T>
void bce_with_logits_loss(index_t B, index_t F, const T* logits, const T* target, const T* w,
                            Reduction red, T* out, T* grad, T* loss, Stream stream);

// Softmax cross-entropy with integer labels in [0, C): logits B x C, labels B.
// A label out of range cannot raise from the device (that would need a host sync): the sample's
// out value and grad row are NaN, so the reduced loss is NaN. Validate labels before if needed.
template <typename T>
void cross_entropy_loss(index_t B, index_t C, const T* logits, const std::int64_t* labels,
                          const T* w, Reduction red, T* out, T* grad, T* loss, Stream stream);

}  // namespace hepnn::cuda
