// CUDA twin of cpp/ops/attention.hpp (same signature plus the stream to launch on).
// Fused scaled dot-product attention, forward and backward. Shape letters: B batch, H heads,
// Lq queries, Lk keys, D head dim (D <= 256 here). key_mask (B,Lk): nonzero = real key.
#pragma once
#include <cstdint>

#include "core/types.hpp"

namespace hepnn::cuda {

// out (B,H,Lq,D) and lse (B,H,Lq); bias (B,bias_heads,Lq,Lk) or null. Rows with no real key
// give out = 0, lse = -inf.
template <typename T>
void attention_forward(index_t B, index_t H, index_t Lq, index_t Lk, index_t D, const T* q,
                       const T* k, const T* v, const std::uint8_t* key_mask, const T* bias,
                       index_t bias_heads, double scale, T* out, T* lse, Stream stream);

// dq, dk, dv and dbias (may be null) from dout; deterministic (no atomics). A B*H*Lq scratch
// for the row terms dout . out comes from cudaMallocAsync on `stream`.
template <typename T>
void attention_backward(index_t B, index_t H, index_t Lq, index_t Lk, index_t D, const T* q,
                        const T* k, const T* v, const std::uint8_t* key_mask, const T* bias,
                        index_t bias_heads, double scale, const T* out, const T* lse,
                        const T* dout, T* dq, T* dk, T* dv, T* dbias, Stream stream);

}  // namespace hepnn::cuda
