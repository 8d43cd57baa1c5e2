// CUDA LSTM layer, one direction per call (twin of cpp/ops/rnn_lstm.cpp). Forward: the input
// projection of all steps as one GEMM (both biases folded in), then per step the hidden GEMM and
// one fused gate kernel (one thread per (row, hidden unit)). Backward: per step the fused gate
// backward kernel and dh_prev = dgates @ w_hh; then weights, dx and biases over all steps.
#include <cuda_runtime.h>

#include "cuda/rnn.hpp"
#include "cuda/rnn_util.cuh"

namespace hepnn::cuda {
namespace {

// g (B, 4H) holds x W_ih^T + b and gets the activated gates; hg (B, 4H) = h_prev W_hh^T.
template <typename T>
__global__ void lstm_step_kernel(index_t B, index_t H, index_t t, const std::int64_t* lengths,
                                 T* __restrict__ g, const T* __restrict__ hg,
                                 const T* __restrict__ hp, const T* __restrict__ cp,
                                 T* __restrict__ h, T* __restrict__ c, T* __restrict__ y,
                                 index_t ldy) {
  const index_t n = B * H, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t k = index_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index_t b = k / H, j = k - b * H;
    if (!rnn::active(lengths, b, t)) {
      h[k] = hp[k];
      c[k] = cp[k];
      y[b * ldy + j] = T(0);
      continue;
    }
    T* gr = g + b * 4 * H;
    const T* hr = hg + b * 4 * H;
    const T i = dm::sigmoid(gr[j] + hr[j]);
    const T f = dm::sigmoid(gr[H + j] + hr[H + j]);
    const T gg = dm::tanh(gr[2 * H + j] + hr[2 * H + j]);
    const T o = dm::sigmoid(gr[3 * H + j] + hr[3 * H + j]);
    gr[j] = i;
    gr[H + j] = f;
    gr[2 * H + j] = gg;
    gr[3 * H + j] = o;
    const T cv = f * cp[k] + i * gg;
    const T hv = o * dm::tanh(cv);
    c[k] = cv;
    h[k] = hv;
    y[b * ldy + j] = hv;
  }
}

// dh (B, H) += dy on active rows, dc becomes the gradient of c_{t-1}; dg (B, 4H) gets the
// pre-activation gradients (zero on frozen rows).
template <typename T>
__global__ void lstm_step_backward_kernel(index_t B, index_t H, index_t t,
                                          const std::int64_t* lengths, const T* __restrict__ g,
                                          const T* __restrict__ c, const T* __restrict__ cp,
                                          const T* __restrict__ dy, index_t ldy, T* __restrict__ dh,
                                          T* __restrict__ dc, T* __restrict__ dg) {
  const index_t n = B * H, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t k = index_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    const index_t b = k / H, j = k - b * H;
    T* dgr = dg + b * 4 * H;
    if (!rnn::active(lengths, b, t)) {
      dgr[j] = dgr[H + j] = dgr[2 * H + j] = dgr[3 * H + j] = T(0);
      continue;
    }
    const T* gr = g + b * 4 * H;
    const T i = gr[j], f = gr[H + j], gg = gr[2 * H + j], o = gr[3 * H + j];
    const T dhv = dh[k] + (dy ? dy[b * ldy + j] : T(0));
    const T tc = dm::tanh(c[k]);
    const T dcv = dc[k] + dhv * o * (T(1) - tc * tc);
    dgr[j] = dcv * gg * i * (T(1) - i);
    dgr[H + j] = dcv * cp[k] * f * (T(1) - f);
    dgr[2 * H + j] = dcv * i * (T(1) - gg * gg);
    dgr[3 * H + j] = dhv * tc * o * (T(1) - o);
    dc[k] = dcv * f;
  }
}

// dh = dhp on active rows (dhp = dgates @ w_hh); frozen rows keep dh.
template <typename T>
__global__ void take_active_kernel(index_t B, index_t H, index_t t, const std::int64_t* lengths,
                                   const T* __restrict__ dhp, T* __restrict__ dh) {
  const index_t n = B * H, stride = index_t(gridDim.x) * blockDim.x;
  for (index_t k = index_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride)
    if (rnn::active(lengths, k / H, t)) dh[k] = dhp[k];
}

}  // namespace

template <typename T>
void lstm_forward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                  const T* w_hh, const T* b_ih, const T* b_hh, const T* h0, const T* c0,
                  const std::int64_t* lengths, bool reverse, T* y, index_t ldy, T* hn, T* cn,
                  T* gates, T* hs, T* cs, Stream stream) {
  const char* op = "lstm";
  check_value(L >= 0 && B >= 0 && I >= 0 && H >= 0, op, "negative size");
  const cudaStream_t s = as_cuda(stream);
  const index_t GH = 4 * H, n = B * H;
  if (n == 0) return;
  if (L == 0) {
    rnn::copy_or_zero(hn, h0, n, s);
    rnn::copy_or_zero(cn, c0, n, s);
    return;
  }
  rnn::input_projection(L * B, I, GH, x, w_ih, b_ih, b_hh, GH, gates, s, op);
  Scratch<T> zeros((h0 && c0) ? 0 : static_cast<std::size_t>(n), s, op);
  if (!(h0 && c0)) rnn::copy_or_zero<T>(zeros.get(), nullptr, n, s);
  Scratch<T> hg(static_cast<std::size_t>(B * GH), s, op);
  for (index_t st = 0; st < L; ++st) {
    const index_t t = rnn::time_of(st, L, reverse), tp = rnn::prev_time(t, reverse);
    const T* hp = st == 0 ? (h0 ? h0 : zeros.get()) : hs + tp * n;
    const T* cp = st == 0 ? (c0 ? c0 : zeros.get()) : cs + tp * n;
    if (st == 0 && !h0)
      rnn::copy_or_zero<T>(hg.get(), nullptr, B * GH, s);
    else
      gemm<T>(Trans::N, Trans::T, B, GH, H, T(1), hp, H, w_hh, H, T(0), hg.get(), GH, stream);
    lstm_step_kernel<T><<<grid_for(n), kBlock, 0, s>>>(B, H, t, lengths, gates + t * B * GH, hg.get(),
                                                       hp, cp, hs + t * n, cs + t * n, y + t * B * ldy, ldy);
    check_launch(op);
  }
  const index_t t_last = reverse ? 0 : L - 1;
  rnn::copy_or_zero(hn, hs + t_last * n, n, s);
  rnn::copy_or_zero(cn, cs + t_last * n, n, s);
}

template <typename T>
void lstm_backward(index_t L, index_t B, index_t I, index_t H, const T* x, const T* w_ih,
                   const T* w_hh, const T* h0, const T* c0, const std::int64_t* lengths,
                   bool reverse, const T* gates, const T* hs, const T* cs, const T* dy,
                   index_t ldy, const T* dhn, const T* dcn, T* dx, bool dx_accumulate, T* dw_ih,
                   T* dw_hh, T* db_ih, T* db_hh, T* dh0, T* dc0, Stream stream) {
  const char* op = "lstm";
  check_value(L >= 0 && B >= 0 && I >= 0 && H >= 0, op, "negative size");
  const cudaStream_t s = as_cuda(stream);
  const index_t GH = 4 * H, n = B * H;
  if (H == 0) return;
  if (L == 0 || B == 0) {
    rnn::copy_or_zero<T>(dw_ih, nullptr, GH * I, s);
    rnn::copy_or_zero<T>(dw_hh, nullptr, GH * H, s);
    if (db_ih) rnn::copy_or_zero<T>(db_ih, nullptr, GH, s);
    if (db_hh) rnn::copy_or_zero<T>(db_hh, nullptr, GH, s);
    if (dh0) rnn::copy_or_zero(dh0, dhn, n, s);
    if (dc0) rnn::copy_or_zero(dc0, dcn, n, s);
    return;
  }
  Scratch<T> dg(static_cast<std::size_t>(L * B * GH), s, op);
  Scratch<T> state(static_cast<std::size_t>(4 * n), s, op);  // dh, dc, dhp, zeros
  T* dh = state.get();
  T* dc = dh + n;
  T* dhp = dc + n;
  T* zeros = dhp + n;
  rnn::copy_or_zero(dh, dhn, n, s);
  rnn::copy_or_zero(dc, dcn, n, s);
  rnn::copy_or_zero<T>(zeros, nullptr, n, s);
  for (index_t st = L - 1; st >= 0; --st) {
    const index_t t = rnn::time_of(st, L, reverse);
    const T* cp = st == 0 ? (c0 ? c0 : zeros) : cs + rnn::prev_time(t, reverse) * n;
    T* dgt = dg.get() + t * B * GH;
    lstm_step_backward_kernel<T><<<grid_for(n), kBlock, 0, s>>>(
        B, H, t, lengths, gates + t * B * GH, cs + t * n, cp, dy ? dy + t * B * ldy : nullptr, ldy, dh,
        dc, dgt);
    check_launch(op);
    gemm<T>(Trans::N, Trans::N, B, H, GH, T(1), dgt, GH, w_hh, H, T(0), dhp, H, stream);
    take_active_kernel<T><<<grid_for(n), kBlock, 0, s>>>(B, H, t, lengths, dhp, dh);
    check_launch(op);
  }
  if (dh0) rnn::copy_or_zero<T>(dh0, dh, n, s);
  if (dc0) rnn::copy_or_zero<T>(dc0, dc, n, s);
  rnn::hidden_weight_grad(L, B, H, GH, dg.get(), hs, h0, reverse, dw_hh, stream);
  rnn::input_grads(L * B, I, GH, x, w_ih, dg.get(), dx, dx_accumulate, dw_ih, stream);
  // NOTE: both biases enter the same pre-activation, so their gradients are equal.
  if (db_ih) rnn::column_sums(L * B, GH, dg.get(), db_ih, s, op);
  if (db_hh) rnn::column_sums(L * B, GH, dg.get(), db_hh, s, op);
}

#define HEPNN_LSTM_INSTANTIATE(T)                                                                 \
  template void lstm_forward<T>(index_t, index_t, index_t, index_t, const T*, const T*, const T*, \
                                const T*, const T*, const T*, const T*, const std::int64_t*, bool, \
                                T*, index_t, T*, T*, T*, T*, T*, Stream);                          \
  template void lstm_backward<T>(index_t, index_t, index_t, index_t, const T*, const T*,          \
                                 const T*, const T*, const T*, const std::int64_t*, bool,         \
                                 const T*, const T*, const T*, const T*, index_t, const T*,       \
                                 const T*, T*, bool, T*, T*, T*, T*, T*, T*, Stream);
HEPNN_LSTM_INSTANTIATE(float)
HEPNN_LSTM_INSTANTIATE(double)
#undef HEPNN_LSTM_INSTANTIATE

}  // namespace hepnn::cuda
