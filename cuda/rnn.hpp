// CUDA twin of cpp/ops/rnn.hpp (same signatures plus the stream to launch on).
// Recurrent layers, LSTM and GRU: one layer in one direction per call, the whole time loop in C++.
// PyTorch's gate order and equations (LSTM i f g o; GRU r z n with n = tanh(W_in x + b_in +
// r * (W_hn h + b_hn))). Shape letters: L time steps, B batch, I input features, H hidden size.
//
// Layout: x (L, B, I) time-major; w_ih (G*H, I), w_hh (G*H, H), b_ih/b_hh (G*H) or null (G = 4
// for LSTM, 3 for GRU); h0/c0 (B, H) or null (zeros); lengths (B) int64 or null (all L). Steps
// t >= lengths[b] freeze the state of row b and give a zero output, as a packed sequence does in
// torch; reverse runs t = L-1 .. 0, so a row's reverse pass starts at its own last valid step.
// y has row stride ldy (>= H): a bidirectional layer writes both directions into one (L, B, 2H).
//
// Scratch (the combined bias, zero states, per-step gate products, gate gradients) comes from
// cudaMallocAsync on the stream and is freed on it.
//
// Workspace written by forward and read by backward (all (L, B, .), owned by the caller):
//   LSTM: gates (4H: activated i f g o), hs (H: hidden state after each step), cs (H: cell state)
//   GRU:  gates (3H: activated r z n), hs (H), hn (H: W_hn h_prev + b_hn, inside the reset gate)
#pragma once
#include <cstdint>

#include "core/types.hpp"

namespace hepnn::cuda {

// hn, cn (B, H): the state after each row's last step.
template <typename T>
void lstm_forward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                  const T* w_hh, const T* b_ih, const T* b_hh, const T* h0, const T* c0,
                  const std::int64_t* lengths, bool reverse, T* y, index_t ldy, T* hn, T* cn,
                  T* gates, T* hs, T* cs, Stream stream);

// Backprop through time. dy (row stride ldy), dhn, dcn may be null (zero). dx (L, B, I) may be
// null; with dx_accumulate it is added to (the second direction of a bidirectional layer).
// db_ih/db_hh, dh0, dc0 may be null. Weight gradients are overwritten, not accumulated.
template <typename T>
void lstm_backward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                   const T* w_hh, const T* h0, const T* c0, const std::int64_t* lengths,
                   bool reverse, const T* gates, const T* hs, const T* cs, const T* dy,
                   index_t ldy, const T* dhn, const T* dcn, T* dx, bool dx_accumulate, T* dw_ih,
                   T* dw_hh, T* db_ih, T* db_hh, T* dh0, T* dc0, Stream stream);

template <typename T>
void gru_forward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                 const T* w_hh, const T* b_ih, const T* b_hh, const T* h0,
                 const std::int64_t* lengths, bool reverse, T* y, index_t ldy, T* hn, T* gates,
                 T* hs, T* hnb, Stream stream);

template <typename T>
void gru_backward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                  const T* w_hh, const T* h0, const std::int64_t* lengths, bool reverse,
                  const T* gates, const T* hs, const T* hnb, const T* dy, index_t ldy,
                  const T* dhn, T* dx, bool dx_accumulate, T* dw_ih, T* dw_hh, T* db_ih,
                  T* db_hh, T* dh0, Stream stream);

}  // namespace hepnn::cuda
