// CUDA twin of cpp/ops/disco.hpp (same signature plus the stream to launch on): the event-weighted
// squared distance correlation (DisCo) R^power between x and y and its gradient with respect to x.
#pragma once
#include "core/types.hpp"

namespace hepnn::cuda {

// See cpp/ops/disco.hpp for the definition, the weight normalisation, power and the conventions
// at ties and for zero spread. `loss` (1 element) and dx (B, may be null) are device memory,
// written in stream order with no host synchronisation; same inputs give bitwise-identical results
// (every sum has a fixed order). Throws ValueError for B < 2 or power not finite and > 0.
// NOTE: checking values would need a host sync, so a non-finite x, y or w, a negative weight or
// weights summing to 0 are not raised here: they make loss and dx NaN. The binding documents it.
template <typename T>
void disco_loss(index_t B, const T* x, const T* y, const T* w, double power, T* loss, T* dx,
                Stream stream);

}  // namespace hepnn::cuda
