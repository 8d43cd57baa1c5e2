// GRU layer on the CPU, one direction per call. Forward: the input projection of all steps as one
// GEMM (b_ih and the r, z parts of b_hh folded in), then per step and batch block the hidden GEMM
// and a fused gate pass (r z n, hidden update). Backward: per step the fused gate backward and
// dh_prev = z * dh + dgates_h @ w_hh; then weights, dx and biases as GEMMs / sums over all steps.
#include <cstring>

#include "ops/rnn.hpp"
#include "ops/rnn_util.hpp"

namespace hepnn::cpu {
namespace {

// One active row of the forward step: g (3H) holds x W_ih^T + b_ih + [b_hr, b_hz, 0] and gets
// the activated gates r z n; hg (3H) is h_prev W_hh^T; hnb (H) keeps W_hn h_prev + b_hn.
template <typename T>
void gru_cell_row(index_t H, T* __restrict g, const T* __restrict hg, const T* __restrict b_hn,
                  const T* __restrict hp, T* __restrict hnb, T* __restrict h) {
  for (index_t j = 0; j < 2 * H; ++j) g[j] += hg[j];
  rnn::sigmoid_inplace(2 * H, g);  // r, z
  const T* gr = g;
  const T* gz = g + H;
  T* gn = g + 2 * H;
  for (index_t j = 0; j < H; ++j) {
    hnb[j] = hg[2 * H + j] + (b_hn ? b_hn[j] : T(0));
    gn[j] += gr[j] * hnb[j];
  }
  rnn::tanh_into(H, gn, gn);
  for (index_t j = 0; j < H; ++j) h[j] = (T(1) - gz[j]) * gn[j] + gz[j] * hp[j];
}

// One active row of the backward step: dh (H) reaches h_t (dy added). Writes the input-side
// pre-activation gradients dgx (3H) and the hidden-side ones dgh (3H), which differ in n:
// d(W_hn h + b_hn) = dn_pre * r.
template <typename T>
void gru_cell_backward_row(index_t H, const T* __restrict g, const T* __restrict hnb,
                           const T* __restrict hp, const T* __restrict dh, T* __restrict dgx,
                           T* __restrict dgh) {
  const T* gr = g;
  const T* gz = g + H;
  const T* gn = g + 2 * H;
  for (index_t j = 0; j < H; ++j) {
    const T r = gr[j], z = gz[j], n = gn[j];
    const T dn = dh[j] * (T(1) - z) * (T(1) - n * n);
    const T dz = dh[j] * (hp[j] - n) * z * (T(1) - z);
    const T dr = dn * hnb[j] * r * (T(1) - r);
    dgx[j] = dgh[j] = dr;
    dgx[H + j] = dgh[H + j] = dz;
    dgx[2 * H + j] = dn;
    dgh[2 * H + j] = dn * r;
  }
}

}  // namespace

template <typename T>
void gru_forward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                 const T* w_hh, const T* b_ih, const T* b_hh, const T* h0,
                 const std::int64_t* lengths, bool reverse, T* y, index_t ldy, T* hn, T* gates,
                 T* hs, T* hnb) {
  const index_t GH = 3 * H;
  if (B <= 0 || H <= 0) return;
  if (L <= 0) {
    for (index_t i = 0; i < B * H; ++i) hn[i] = h0 ? h0[i] : T(0);
    return;
  }
  rnn::input_projection(L * B, I, GH, x, w_ih, b_ih, b_hh, 2 * H, gates);
  const T* b_hn = b_hh ? b_hh + 2 * H : nullptr;
  rnn::over_batch(B, [&](index_t b0, index_t b1) {
    const index_t nb = b1 - b0;
    T* hg = rnn::scratch<T, 4>(size_t(nb * GH));
    T* zeros = rnn::scratch<T, 5>(size_t(nb * H));
    std::fill(zeros, zeros + nb * H, T(0));
    const T* h_init = h0 ? h0 + b0 * H : zeros;
    for (index_t s = 0; s < L; ++s) {
      const index_t t = rnn::time_of(s, L, reverse);
      const T* hp = s == 0 ? h_init : hs + (rnn::prev_time(t, reverse) * B + b0) * H;
      if (s == 0 && !h0)
        std::fill(hg, hg + nb * GH, T(0));
      else
        rnn::gemm_nt_serial(nb, GH, H, hp, H, w_hh, H, hg, GH);
      for (index_t r = 0; r < nb; ++r) {
        const index_t b = b0 + r;
        T* hrow = hs + (t * B + b) * H;
        T* yrow = y + (t * B + b) * ldy;
        if (!rnn::active(lengths, b, t)) {
          std::memcpy(hrow, hp + r * H, size_t(H) * sizeof(T));
          std::fill(yrow, yrow + H, T(0));
          continue;
        }
        gru_cell_row(H, gates + (t * B + b) * GH, hg + r * GH, b_hn, hp + r * H,
                     hnb + (t * B + b) * H, hrow);
        std::memcpy(yrow, hrow, size_t(H) * sizeof(T));
      }
    }
  });
  const index_t t_last = reverse ? 0 : L - 1;
  std::memcpy(hn, hs + t_last * B * H, size_t(B * H) * sizeof(T));
}

template <typename T>
void gru_backward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                  const T* w_hh, const T* h0, const std::int64_t* lengths, bool reverse,
                  const T* gates, const T* hs, const T* hnb, const T* dy, index_t ldy,
                  const T* dhn, T* dx, bool dx_accumulate, T* dw_ih, T* dw_hh, T* db_ih,
                  T* db_hh, T* dh0) {
  const index_t GH = 3 * H;
  if (H <= 0) return;
  if (L <= 0 || B <= 0) {
    std::fill(dw_ih, dw_ih + GH * I, T(0));
    std::fill(dw_hh, dw_hh + GH * H, T(0));
    if (db_ih) std::fill(db_ih, db_ih + GH, T(0));
    if (db_hh) std::fill(db_hh, db_hh + GH, T(0));
    if (dh0)
      for (index_t i = 0; i < B * H; ++i) dh0[i] = dhn ? dhn[i] : T(0);
    return;
  }
  T* dgx = rnn::scratch<T, 1>(size_t(L * B * GH));
  T* dgh = rnn::scratch<T, 2>(size_t(L * B * GH));
  rnn::over_batch(B, [&](index_t b0, index_t b1) {
    const index_t nb = b1 - b0;
    T* dh = rnn::scratch<T, 4>(size_t(nb * H));
    T* dhp = rnn::scratch<T, 5>(size_t(nb * H));
    T* zeros = rnn::scratch<T, 6>(size_t(nb * H));
    std::fill(zeros, zeros + nb * H, T(0));
    for (index_t i = 0; i < nb * H; ++i) dh[i] = dhn ? dhn[b0 * H + i] : T(0);
    const T* h_init = h0 ? h0 + b0 * H : zeros;
    for (index_t s = L - 1; s >= 0; --s) {
      const index_t t = rnn::time_of(s, L, reverse);
      const T* hp = s == 0 ? h_init : hs + (rnn::prev_time(t, reverse) * B + b0) * H;
      T* dgxt = dgx + (t * B + b0) * GH;
      T* dght = dgh + (t * B + b0) * GH;
      for (index_t r = 0; r < nb; ++r) {
        const index_t b = b0 + r;
        if (!rnn::active(lengths, b, t)) {
          std::fill(dgxt + r * GH, dgxt + (r + 1) * GH, T(0));
          std::fill(dght + r * GH, dght + (r + 1) * GH, T(0));
          continue;
        }
        T* dhr = dh + r * H;
        if (dy) {
          const T* dyr = dy + (t * B + b) * ldy;
          for (index_t j = 0; j < H; ++j) dhr[j] += dyr[j];
        }
        gru_cell_backward_row(H, gates + (t * B + b) * GH, hnb + (t * B + b) * H, hp + r * H, dhr,
                              dgxt + r * GH, dght + r * GH);
      }
      rnn::gemm_nn_serial(nb, H, GH, dght, GH, w_hh, H, dhp, H);
      // dh_prev = z * dh + dgates_h @ w_hh on active rows; frozen rows pass dh through.
      for (index_t r = 0; r < nb; ++r) {
        if (!rnn::active(lengths, b0 + r, t)) continue;
        const T* z = gates + (t * B + b0 + r) * GH + H;
        T* dhr = dh + r * H;
        const T* d = dhp + r * H;
        for (index_t j = 0; j < H; ++j) dhr[j] = z[j] * dhr[j] + d[j];
      }
    }
    if (dh0) std::memcpy(dh0 + b0 * H, dh, size_t(nb * H) * sizeof(T));
  });
  rnn::hidden_weight_grad(L, B, H, GH, dgh, GH, hs, h0, reverse, dw_hh);
  rnn::input_grads(L * B, I, GH, x, w_ih, dgx, dx, dx_accumulate, dw_ih);
  if (db_ih) rnn::column_sums(L * B, GH, dgx, GH, db_ih);
  if (db_hh) rnn::column_sums(L * B, GH, dgh, GH, db_hh);
}

#define HEPNN_GRU_INSTANTIATE(T)                                                                  \
  template void gru_forward<T>(index_t, index_t, index_t, index_t, const T*, const T*, const T*,  \
                               const T*, const T*, const T*, const std::int64_t*, bool, T*,       \
                               index_t, T*, T*, T*, T*);                                          \
  template void gru_backward<T>(index_t, index_t, index_t, index_t, const T*, const T*, const T*, \
                                const T*, const std::int64_t*, bool, const T*, const T*,          \
                                const T*, const T*, index_t, const T*, T*, bool, T*, T*, T*, T*,  \
                                T*);
HEPNN_GRU_INSTANTIATE(float)
HEPNN_GRU_INSTANTIATE(double)
#undef HEPNN_GRU_INSTANTIATE

}  // namespace hepnn::cpu
