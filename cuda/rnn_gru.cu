// CUDA GRU layer, one direction per call (twin of cpp/ops/rnn_gru.cpp). Forward: the input
// projection of all steps as one GEMM (b_ih and b_hr, b_hz folded in), then per step the hidden
// GEMM and one fused gate kernel (one thread per (row, hidden unit)). Backward: per step the fused
// gate backward kernel, dh_prev = z * dh + dgates_h @ w_hh; then weights, dx, biases over all steps.
#include <cuda_runtime.h>

#include "cuda/rnn.hpp"
#include "cuda/rnn_util.cuh"

namespace hepnn::cuda {
namespace {

// g (B, 3H) holds x W_ih^T + b_ih + [b_hr, b_hz, 0] and gets r z n; hg (B, 3H) = h_prev W_hh^T;
// hnb (B, H) keeps W_hn h_prev + b_hn.
template <typename T>
__global__ void gru_step_kernel(index_t B, index_t H, index_t t, const std::int64_t* lengths,
                                T* __restrict__ g, const T* __restrict__ hg,
                                const T* __restrict__ b_hn, const T* __restrict__ hp,
                                T* __restrict__ h, T* __restrict__ hnb, T* __restrict__ y,
                                index_t ldy) {
  const index_t n = B * H, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t k = index_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index_t b = k / H, j = k - b * H;
    if (!rnn::active(lengths, b, t)) {
      h[k] = hp[k];
      y[b * ldy + j] = T(0);
      continue;
    }
    T* gr = g + b * 3 * H;
    const T* hr = hg + b * 3 * H;
    const T r = dm::sigmoid(gr[j] + hr[j]);
    const T z = dm::sigmoid(gr[H + j] + hr[H + j]);
    const T hn = hr[2 * H + j] + (b_hn ? b_hn[j] : T(0));
    const T nv = dm::tanh(gr[2 * H + j] + r * hn);
    gr[j] = r;
    gr[H + j] = z;
    gr[2 * H + j] = nv;
    hnb[k] = hn;
    const T hv = (T(1) - z) * nv + z * hp[k];
    h[k] = hv;
    y[b * ldy + j] = hv;
  }
}

// dh (B, H) += dy on active rows; dgx / dgh (B, 3H) get the input- and hidden-side
// pre-activation gradients (zero on frozen rows).
template <typename T>
__global__ void gru_step_backward_kernel(index_t B, index_t H, index_t t,
                                         const std::int64_t* lengths, const T* __restrict__ g,
                                         const T* __restrict__ hnb, const T* __restrict__ hp,
                                         const T* __restrict__ dy, index_t ldy, T* __restrict__ dh,
                                         T* __restrict__ dgx, T* __restrict__ dgh) {
  const index_t n = B * H, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t k = index_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index_t b = k / H, j = k - b * H;
    T* dxr = dgx + b * 3 * H;
    T* dhr = dgh + b * 3 * H;
    if (!rnn::active(lengths, b, t)) {
      dxr[j] = dxr[H + j] = dxr[2 * H + j] = T(0);
      dhr[j] = dhr[H + j] = dhr[2 * H + j] = T(0);
      continue;
    }
    const T* gr = g + b * 3 * H;
    const T r = gr[j], z = gr[H + j], nv = gr[2 * H + j];
    const T dhv = dh[k] + (dy ? dy[b * ldy + j] : T(0));
    dh[k] = dhv;
    const T dn = dhv * (T(1) - z) * (T(1) - nv * nv);
    const T dz = dhv * (hp[k] - nv) * z * (T(1) - z);
    const T dr = dn * hnb[k] * r * (T(1) - r);
    dxr[j] = dhr[j] = dr;
    dxr[H + j] = dhr[H + j] = dz;
    dxr[2 * H + j] = dn;
    dhr[2 * H + j] = dn * r;
  }
}

// dh = z * dh + dhp on active rows (dhp = dgates_h @ w_hh); frozen rows keep dh.
template <typename T>
__global__ void gru_merge_kernel(index_t B, index_t H, index_t t, const std::int64_t* lengths,
                                 const T* __restrict__ g, const T* __restrict__ dhp,
                                 T* __restrict__ dh) {
  const index_t n = B * H, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t k = index_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index_t b = k / H, j = k - b * H;
    if (rnn::active(lengths, b, t)) dh[k] = g[b * 3 * H + H + j] * dh[k] + dhp[k];
  }
}

}  // namespace

template <typename T>
void gru_forward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                 const T* w_hh, const T* b_ih, const T* b_hh, const T* h0,
                 const std::int64_t* lengths, bool reverse, T* y, index_t ldy, T* hn, T* gates,
                 T* hs, T* hnb, Stream stream) {
  const char* op = "gru";
  check_value(L >= 0 && B >= 0 && I >= 0 && H >= 0, op, "negative size");
  const cudaStream_t s = as_cuda(stream);
  const index_t GH = 3 * H, n = B * H;
  if (n == 0) return;
  if (L == 0) {
    rnn::copy_or_zero(hn, h0, n, s);
    return;
  }
  rnn::input_projection(L * B, I, GH, x, w_ih, b_ih, b_hh, 2 * H, gates, s, op);
  const T* b_hn = b_hh ? b_hh + 2 * H : nullptr;
  Scratch<T> zeros(h0 ? 0 : static_cast<std::size_t>(n), s, op);
  if (!h0) rnn::copy_or_zero<T>(zeros.get(), nullptr, n, s);
  Scratch<T> hg(static_cast<std::size_t>(B * GH), s, op);
  for (index_t st = 0; st < L; ++st) {
    const index_t t = rnn::time_of(st, L, reverse);
    const T* hp = st == 0 ? (h0 ? h0 : zeros.get()) : hs + rnn::prev_time(t, reverse) * n;
    if (st == 0 && !h0)
      rnn::copy_or_zero<T>(hg.get(), nullptr, B * GH, s);
    else
      gemm<T>(Trans::N, Trans::T, B, GH, H, T(1), hp, H, w_hh, H, T(0), hg.get(), GH, stream);
    gru_step_kernel<T><<<grid_for(n), kBlock, 0, s>>>(B, H, t, lengths, gates + t * B * GH, hg.get(),
                                                      b_hn, hp, hs + t * n, hnb + t * n, y + t * B * ldy, ldy);
    check_launch(op);
  }
  rnn::copy_or_zero(hn, hs + (reverse ? 0 : L - 1) * n, n, s);
}

template <typename T>
void gru_backward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                  const T* w_hh, const T* h0, const std::int64_t* lengths, bool reverse,
                  const T* gates, const T* hs, const T* hnb, const T* dy, index_t ldy,
                  const T* dhn, T* dx, bool dx_accumulate, T* dw_ih, T* dw_hh, T* db_ih,
                  T* db_hh, T* dh0, Stream stream) {
  const char* op = "gru";
  check_value(L >= 0 && B >= 0 && I >= 0 && H >= 0, op, "negative size");
  const cudaStream_t s = as_cuda(stream);
  const index_t GH = 3 * H, n = B * H;
  if (H == 0) return;
  if (L == 0 || B == 0) {
    rnn::copy_or_zero<T>(dw_ih, nullptr, GH * I, s);
    rnn::copy_or_zero<T>(dw_hh, nullptr, GH * H, s);
    if (db_ih) rnn::copy_or_zero<T>(db_ih, nullptr, GH, s);
    if (db_hh) rnn::copy_or_zero<T>(db_hh, nullptr, GH, s);
    if (dh0) rnn::copy_or_zero(dh0, dhn, n, s);
    return;
  }
  Scratch<T> dg(static_cast<std::size_t>(2 * L * B * GH), s, op);  // dgx, then dgh
  T* dgx = dg.get();
  T* dgh = dgx + L * B * GH;
  Scratch<T> state(static_cast<std::size_t>(3 * n), s, op);  // dh, dhp, zeros
  T* dh = state.get();
  T* dhp = dh + n;
  T* zeros = dhp + n;
  rnn::copy_or_zero(dh, dhn, n, s);
  rnn::copy_or_zero<T>(zeros, nullptr, n, s);
  for (index_t st = L - 1; st >= 0; --st) {
    const index_t t = rnn::time_of(st, L, reverse);
    const T* hp = st == 0 ? (h0 ? h0 : zeros) : hs + rnn::prev_time(t, reverse) * n;
    T* dght = dgh + t * B * GH;
    gru_step_backward_kernel<T><<<grid_for(n), kBlock, 0, s>>>(
        B, H, t, lengths, gates + t * B * GH, hnb + t * n, hp, dy ? dy + t * B * ldy : nullptr, ldy, dh,
        dgx + t * B * GH, dght);
    check_launch(op);
    gemm<T>(Trans::N, Trans::N, B, H, GH, T(1), dght, GH, w_hh, H, T(0), dhp, H, stream);
    gru_merge_kernel<T><<<grid_for(n), kBlock, 0, s>>>(B, H, t, lengths, gates + t * B * GH, dhp, dh);
    check_launch(op);
  }
  if (dh0) rnn::copy_or_zero<T>(dh0, dh, n, s);
  rnn::hidden_weight_grad(L, B, H, GH, dgh, hs, h0, reverse, dw_hh, stream);
  rnn::input_grads(L * B, I, GH, x, w_ih, dgx, dx, dx_accumulate, dw_ih, stream);
  if (db_ih) rnn::column_sums(L * B, GH, dgx, db_ih, s, op);
  if (db_hh) rnn::column_sums(L * B, GH, dgh, db_hh, s, op);
}

#define HEPNN_GRU_INSTANTIATE(T)                                                                  \
  template void gru_forward<T>(index_t, index_t, index_t, index_t, const T*, const T*, const T*,  \
                               const T*, const T*, const T*, const std::int64_t*, bool, T*,       \
                               index_t, T*, T*, T*, T*, Stream);                                  \
  template void gru_backward<T>(index_t, index_t, index_t, index_t, const T*, const T*, const T*, \
                                const T*, const std::int64_t*, bool, const T*, const T*,          \
                                const T*, const T*, index_t, const T*, T*, bool, T*, T*, T*, T*,  \
                                T*, Stream);
HEPNN_GRU_INSTANTIATE(float)
HEPNN_GRU_INSTANTIATE(double)
#undef HEPNN_GRU_INSTANTIATE

}  // namespace hepnn::cuda
