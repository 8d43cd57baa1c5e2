// LSTM layer on the CPU, one direction per call. Forward: the input projection of all steps as
// one GEMM (both biases folded in), then per step and batch block the hidden GEMM and a fused
// gate pass (i f g o, cell and hidden update). Backward: per step the fused gate backward and
// dh_prev = dgates @ w_hh; then dw_ih, dw_hh, dx and the biases as GEMMs / sums over all steps.
#include <cstring>

#include "ops/rnn.hpp"
#include "ops/rnn_util.hpp"

namespace hepnn::cpu {
namespace {

// One active row of the forward step: g (4H) holds x W_ih^T + b_ih + b_hh and gets the
// activated gates; hg (4H) is h_prev W_hh^T.
template <typename T>
void lstm_cell_row(index_t H, T* __restrict g, const T* __restrict hg, const T* __restrict cp,
                   T* __restrict c, T* __restrict h, T* __restrict tc) {
  const index_t GH = 4 * H;
  for (index_t j = 0; j < GH; ++j) g[j] += hg[j];
  rnn::sigmoid_inplace(2 * H, g);      // i, f
  rnn::tanh_into(H, g + 2 * H, g + 2 * H);  // g
  rnn::sigmoid_inplace(H, g + 3 * H);  // o
  const T* gi = g;
  const T* gf = g + H;
  const T* gg = g + 2 * H;
  const T* go = g + 3 * H;
  for (index_t j = 0; j < H; ++j) c[j] = gf[j] * cp[j] + gi[j] * gg[j];
  rnn::tanh_into(H, c, tc);
  for (index_t j = 0; j < H; ++j) h[j] = go[j] * tc[j];
}

// One active row of the backward step. dh (H) is the gradient reaching h_t (dy already added),
// dc (H) the one reaching c_t; writes the pre-activation gradients dg (4H) and turns dc into
// the gradient of c_{t-1}.
template <typename T>
void lstm_cell_backward_row(index_t H, const T* __restrict g, const T* __restrict c,
                            const T* __restrict cp, const T* __restrict dh, T* __restrict dc,
                            T* __restrict dg, T* __restrict tc) {
  const T* gi = g;
  const T* gf = g + H;
  const T* gg = g + 2 * H;
  const T* go = g + 3 * H;
  rnn::tanh_into(H, c, tc);
  for (index_t j = 0; j < H; ++j) {
    const T i = gi[j], f = gf[j], gv = gg[j], o = go[j], t = tc[j];
    const T dcj = dc[j] + dh[j] * o * (T(1) - t * t);
    dg[j] = dcj * gv * i * (T(1) - i);
    dg[H + j] = dcj * cp[j] * f * (T(1) - f);
    dg[2 * H + j] = dcj * i * (T(1) - gv * gv);
    dg[3 * H + j] = dh[j] * t * o * (T(1) - o);
    dc[j] = dcj * f;
  }
}

}  // namespace

template <typename T>
void lstm_forward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                  const T* w_hh, const T* b_ih, const T* b_hh, const T* h0, const T* c0,
                  const std::int64_t* lengths, bool reverse, T* y, index_t ldy, T* hn, T* cn,
                  T* gates, T* hs, T* cs) {
  const index_t GH = 4 * H;
  if (B <= 0 || H <= 0) return;
  if (L <= 0) {
    for (index_t i = 0; i < B * H; ++i) {
      hn[i] = h0 ? h0[i] : T(0);
      cn[i] = c0 ? c0[i] : T(0);
    }
    return;
  }
  rnn::input_projection(L * B, I, GH, x, w_ih, b_ih, b_hh, GH, gates);
  rnn::over_batch(B, [&](index_t b0, index_t b1) {
    const index_t nb = b1 - b0;
    T* hg = rnn::scratch<T, 4>(size_t(nb * GH));
    T* zeros = rnn::scratch<T, 5>(size_t(nb * H));
    T* tc = rnn::scratch<T, 6>(size_t(H));
    std::fill(zeros, zeros + nb * H, T(0));
    const T* h_init = h0 ? h0 + b0 * H : zeros;
    const T* c_init = c0 ? c0 + b0 * H : zeros;
    for (index_t s = 0; s < L; ++s) {
      const index_t t = rnn::time_of(s, L, reverse);
      const index_t tp = rnn::prev_time(t, reverse);
      const T* hp = s == 0 ? h_init : hs + (tp * B + b0) * H;
      const T* cp = s == 0 ? c_init : cs + (tp * B + b0) * H;
      if (s == 0 && !h0)
        std::fill(hg, hg + nb * GH, T(0));
      else
        rnn::gemm_nt_serial(nb, GH, H, hp, H, w_hh, H, hg, GH);
      for (index_t r = 0; r < nb; ++r) {
        const index_t b = b0 + r;
        T* hrow = hs + (t * B + b) * H;
        T* crow = cs + (t * B + b) * H;
        T* yrow = y + (t * B + b) * ldy;
        if (!rnn::active(lengths, b, t)) {
          std::memcpy(hrow, hp + r * H, size_t(H) * sizeof(T));
          std::memcpy(crow, cp + r * H, size_t(H) * sizeof(T));
          std::fill(yrow, yrow + H, T(0));
          continue;
        }
        lstm_cell_row(H, gates + (t * B + b) * GH, hg + r * GH, cp + r * H, crow, hrow, tc);
        std::memcpy(yrow, hrow, size_t(H) * sizeof(T));
      }
    }
  });
  const index_t t_last = reverse ? 0 : L - 1;
  std::memcpy(hn, hs + t_last * B * H, size_t(B * H) * sizeof(T));
  std::memcpy(cn, cs + t_last * B * H, size_t(B * H) * sizeof(T));
}

template <typename T>
void lstm_backward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                   const T* w_hh, const T* h0, const T* c0, const std::int64_t* lengths,
                   bool reverse, const T* gates, const T* hs, const T* cs, const T* dy,
                   index_t ldy, const T* dhn, const T* dcn, T* dx, bool dx_accumulate, T* dw_ih,
                   T* dw_hh, T* db_ih, T* db_hh, T* dh0, T* dc0) {
  const index_t GH = 4 * H;
  if (H <= 0) return;
  if (L <= 0 || B <= 0) {
    std::fill(dw_ih, dw_ih + GH * I, T(0));
    std::fill(dw_hh, dw_hh + GH * H, T(0));
    if (db_ih) std::fill(db_ih, db_ih + GH, T(0));
    if (db_hh) std::fill(db_hh, db_hh + GH, T(0));
    for (index_t i = 0; i < B * H; ++i) {
      if (dh0) dh0[i] = dhn ? dhn[i] : T(0);
      if (dc0) dc0[i] = dcn ? dcn[i] : T(0);
    }
    return;
  }
  T* dg = rnn::scratch<T, 1>(size_t(L * B * GH));
  rnn::over_batch(B, [&](index_t b0, index_t b1) {
    const index_t nb = b1 - b0;
    T* dh = rnn::scratch<T, 4>(size_t(nb * H));
    T* dc = rnn::scratch<T, 5>(size_t(nb * H));
    T* dhp = rnn::scratch<T, 6>(size_t(nb * H));
    T* zeros = rnn::scratch<T, 7>(size_t(nb * H));
    T* tc = rnn::scratch<T, 8>(size_t(H));
    std::fill(zeros, zeros + nb * H, T(0));
    for (index_t i = 0; i < nb * H; ++i) {
      dh[i] = dhn ? dhn[b0 * H + i] : T(0);
      dc[i] = dcn ? dcn[b0 * H + i] : T(0);
    }
    const T* c_init = c0 ? c0 + b0 * H : zeros;
    for (index_t s = L - 1; s >= 0; --s) {
      const index_t t = rnn::time_of(s, L, reverse);
      const T* cp = s == 0 ? c_init : cs + (rnn::prev_time(t, reverse) * B + b0) * H;
      T* dgt = dg + (t * B + b0) * GH;
      for (index_t r = 0; r < nb; ++r) {
        const index_t b = b0 + r;
        if (!rnn::active(lengths, b, t)) {
          std::fill(dgt + r * GH, dgt + (r + 1) * GH, T(0));
          continue;
        }
        T* dhr = dh + r * H;
        if (dy) {
          const T* dyr = dy + (t * B + b) * ldy;
          for (index_t j = 0; j < H; ++j) dhr[j] += dyr[j];
        }
        lstm_cell_backward_row(H, gates + (t * B + b) * GH, cs + (t * B + b) * H, cp + r * H, dhr,
                               dc + r * H, dgt + r * GH, tc);
      }
      // dh_prev = dgates @ w_hh; frozen rows keep their dh (their gate gradients are zero).
      rnn::gemm_nn_serial(nb, H, GH, dgt, GH, w_hh, H, dhp, H);
      for (index_t r = 0; r < nb; ++r)
        if (rnn::active(lengths, b0 + r, t)) std::memcpy(dh + r * H, dhp + r * H, size_t(H) * sizeof(T));
    }
    if (dh0) std::memcpy(dh0 + b0 * H, dh, size_t(nb * H) * sizeof(T));
    if (dc0) std::memcpy(dc0 + b0 * H, dc, size_t(nb * H) * sizeof(T));
  });
  rnn::hidden_weight_grad(L, B, H, GH, dg, GH, hs, h0, reverse, dw_hh);
  rnn::input_grads(L * B, I, GH, x, w_ih, dg, dx, dx_accumulate, dw_ih);
  // NOTE: both biases enter the same pre-activation, so their gradients are equal.
  if (db_ih) rnn::column_sums(L * B, GH, dg, GH, db_ih);
  if (db_hh) {
    if (db_ih) std::memcpy(db_hh, db_ih, size_t(GH) * sizeof(T));
    else rnn::column_sums(L * B, GH, dg, GH, db_hh);
  }
}

#define HEPNN_LSTM_INSTANTIATE(T)                                                                 \
  template void lstm_forward<T>(index_t, index_t, index_t, index_t, const T*, const T*, const T*, \
                                const T*, const T*, const T*, const T*, const std::int64_t*, bool, \
                                T*, index_t, T*, T*, T*, T*, T*);                                  \
  template void lstm_backward<T>(index_t, index_t, index_t, index_t, const T*, const T*,          \
                                 const T*, const T*, const T*, const std::int64_t*, bool,         \
                                 const T*, const T*, const T*, const T*, index_t, const T*,       \
                                 const T*, T*, bool, T*, T*, T*, T*, T*, T*);
HEPNN_LSTM_INSTANTIATE(float)
HEPNN_LSTM_INSTANTIATE(double)
#undef HEPNN_LSTM_INSTANTIATE

}  // namespace hepnn::cpu
