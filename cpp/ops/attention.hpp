// Fused scaled dot-product attention (flash style), forward and backward, for particle
// transformers. Shape letters: B batch, H heads, Lq queries, Lk keys (particles), D head dim.
#pragma once
#include <cstdint>

#include "core/types.hpp"

namespace hepnn::cpu {

// out = softmax(scale * q @ k^T + bias, masked keys removed) @ v per (batch, head).
// q (B,H,Lq,D), k and v (B,H,Lk,D), out (B,H,Lq,D), lse (B,H,Lq): the log-sum-exp of each row's
// scores, the only thing kept for the backward. key_mask (B,Lk) may be null: nonzero = a real
// key, zero = padding (never attended). bias (B,bias_heads,Lq,Lk) may be null; bias_heads is 1
// (broadcast over heads, ParT's interaction matrix) or H.
// NOTE: a row with no real key (or every score -inf) gives out = 0 and lse = -inf, not NaN.
template <typename T>
void attention_forward(index_t B, index_t H, index_t Lq, index_t Lk, index_t D, const T* q,
                       const T* k, const T* v, const std::uint8_t* key_mask, const T* bias,
                       index_t bias_heads, double scale, T* out, T* lse);

// dq, dk, dv (shapes of q, k, v) and dbias (shape of bias; may be null) from dout, recomputing
// the probabilities tile by tile from lse. Gradients at masked keys are 0. Deterministic.
template <typename T>
void attention_backward(index_t B, index_t H, index_t Lq, index_t Lk, index_t D, const T* q,
                        const T* k, const T* v, const std::uint8_t* key_mask, const T* bias,
                        index_t bias_heads, double scale, const T* out, const T* lse,
                        const T* dout, T* dq, T* dk, T* dv, T* dbias);

}  // namespace hepnn::cpu
