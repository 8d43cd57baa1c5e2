// Distance-correlation (DisCo) decorrelation loss (Kasieczka & Shih, arXiv:2001.05310): the
// event-weighted squared distance correlation between a classifier output x and a variable y
// (e.g. the jet mass) that the classifier should not learn, with its gradient with respect to x.
#pragma once
#include "core/types.hpp"

namespace hepnn::cpu {

// B events: x, y (B,), w (B,) non-negative event weights with a positive sum, or null for equal
// weights. Weights are normalised to p_i = w_i / sum_j w_j (the value is invariant to their scale,
// so sum w = 1 and the paper's sum w = B give the same result). With a_ij = |x_i - x_j|,
// abar_i = sum_j p_j a_ij, abar = sum_i p_i abar_i, A_ij = a_ij - abar_i - abar_j + abar (and B_ij
// from y alike), dCov^2(x, y) = sum_ij p_i p_j A_ij B_ij and
//   loss = R^power,  R = dCov^2(x, y) / sqrt(dCov^2(x, x) dCov^2(y, y))  (R = dCorr^2 in [0, 1]).
// power = 1 is the paper's DisCo term; power = 0.5 gives the distance correlation itself.
// `loss` (1 element) receives the value; dx (B, may be null) receives d loss / d x (y gets none).
// O(B^2) time in two tiled passes over row blocks (one when dx is null), O(B) memory: the B x B
// matrices are never formed. Bitwise the same result for any set_num_threads.
// NOTE: the derivative of |x_i - x_j| at a tie is taken as 0. When x or y has zero spread under
// the weights, dCorr is undefined: loss and dx are 0. R is clamped at 0 (it can only go below by
// rounding); where it is 0 the gradient is 0.
// Throws ValueError for B < 2, a non-finite x, y or w, a negative weight, weights summing to 0,
// or power not finite and > 0; nothing is written then.
template <typename T>
void disco_loss(index_t B, const T* x, const T* y, const T* w, double power, T* loss, T* dx);

}  // namespace hepnn::cpu
