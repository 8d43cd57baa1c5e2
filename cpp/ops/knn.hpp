// k nearest neighbours per event in a coordinate space, for graph building (EdgeConv, GNNs).
// Shape letters: B events, N points (padded), D coordinates, K neighbours.
#pragma once
#include <cstdint>

#include "core/types.hpp"

namespace hepnn::cpu {

// idx (B, N, K) receives, for every valid point i of event b, the indices j (within the event,
// in [0, N)) of its K nearest valid points by squared Euclidean distance over D coordinates,
// nearest first, i itself excluded. Ties in distance go to the smaller j, so the result is
// deterministic. mask (B, N), nonzero = real point, may be null (all real).
// NOTE: slots that cannot be filled (a padded point, or fewer than K other valid points) get -1;
// gather/EdgeConv treat -1 as "no edge", so padded points never send or receive messages.
template <typename T>
void knn_forward(index_t B, index_t N, index_t D, index_t K, const T* coords, const std::uint8_t* mask,
                 index_t* idx);

}  // namespace hepnn::cpu
