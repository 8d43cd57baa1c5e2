// CUDA twin of cpp/ops/edgeconv.hpp (same signature plus the stream to launch on).
// Fused EdgeConv (ParticleNet's block): y_i = agg_{j in nbr(i)} mlp([x_i, x_j - x_i]), with the
// first edge layer factorised into two per-point products. Forward and backward.
// Shape letters: B events, N points, C input features, K neighbours, L edge-MLP layers, F_l widths.
#pragma once
#include "core/types.hpp"

namespace hepnn::cuda {

// x (B, N, C); idx (B, N, K) neighbour indices within the event, -1 = no edge (knn's marker);
// W[0] (F_0, 2C) and W[l] (F_l, F_{l-1}) in torch's Linear layout, b[l] (F_l) or null; `act`
// follows every layer (the last included); aggregation is the mean over a point's edges, or the
// max when max_agg; a point without edges gets 0. y (B, N, F_{L-1}). pq (B*N, 2 F_0) may be null;
// if given it receives the per-point products [x (W_a - W_b)^T + b_0, x W_b^T] for the backward.
template <typename T>
void edgeconv_forward(index_t B, index_t N, index_t C, index_t K, index_t L, const index_t* widths,
                      const T* x, const index_t* idx, const T* const* W, const T* const* b, Act act,
                      double alpha, bool max_agg, T* y, T* pq, Stream stream);

// Gradients from dy (B, N, F_{L-1}): dx (B, N, C) (may be null), dW[l] like W[l], db[l] like b[l]
// (entries may be null). pq is the forward's, or null to recompute it.
template <typename T>
void edgeconv_backward(index_t B, index_t N, index_t C, index_t K, index_t L, const index_t* widths,
                       const T* x, const index_t* idx, const T* const* W, const T* const* b, Act act,
                       double alpha, bool max_agg, const T* pq, const T* dy, T* dx, T* const* dW,
                       T* const* db, Stream stream);

}  // namespace hepnn::cuda
