// Internal to rnn_lstm.cpp / rnn_gru.cpp: what both recurrences share. Step order and the
// previous state of a step, the batch split of the time loop, the gate nonlinearities (AVX2 for
// float32), per-thread scratch, the input projection and the weight-gradient GEMMs over all steps.
#pragma once
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/cpu_features.hpp"
#include "core/threadpool.hpp"
#include "core/types.hpp"
#include "ops/gemm.hpp"
#include "ops/gemm_ukernel.hpp"
#include "ops/linear.hpp"
#if defined(HEPNN_HAVE_AVX2_KERNELS)
#include "ops/activation_avx2.hpp"
#endif

namespace hepnn::cpu::rnn {

// Reusable per-thread buffers; Slot keeps buffers that are live at the same time apart.
template <typename T, int Slot>
T* scratch(size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

// The time index of step s, and of the step before it (valid for s >= 1).
inline index_t time_of(index_t s, index_t L, bool reverse) { return reverse ? L - 1 - s : s; }
inline index_t prev_time(index_t t, bool reverse) { return reverse ? t + 1 : t - 1; }

inline bool active(const std::int64_t* lengths, index_t b, index_t t) {
  return !lengths || t < lengths[b];
}

// The time loop runs per block of batch rows, each block on one thread with its own small
// GEMMs: no synchronisation per step, and row b's arithmetic does not depend on the split.
constexpr index_t kRowGrain = 8;

template <typename F>
void over_batch(index_t B, F&& body) {
  parallel_for(B, kRowGrain, body);
}

// NOTE: sigmoid as exp(-|x|) based form on both sides, so large |x| never overflows exp.
template <typename T>
inline T sigmoid_scalar(T x) {
  const T e = std::exp(-std::abs(x));
  return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <typename T>
void sigmoid_inplace(index_t n, T* x) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>)
    if (avx2_f32() && avx2::act_forward_f32(Act::sigmoid, n, x, x, 0.f)) return;
#endif
  for (index_t i = 0; i < n; ++i) x[i] = sigmoid_scalar(x[i]);
}

// y = tanh(x); y may be x.
template <typename T>
void tanh_into(index_t n, const T* x, T* y) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>)
    if (avx2_f32() && avx2::act_forward_f32(Act::tanh, n, x, y, 0.f)) return;
#endif
  for (index_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

// Single-threaded C = A @ B^T (A m x k, B n x k): the per-step hidden GEMM inside a batch block.
template <typename T>
void gemm_nt_serial(index_t m, index_t n, index_t k, const T* A, index_t lda, const T* Bm,
                    index_t ldb, T* C, index_t ldc) {
  detail::gemm_ex<T>(Trans::N, Trans::T, m, n, k, T(1), A, lda, Bm, ldb, T(0), C, ldc, nullptr, 1);
}

// Single-threaded C = A @ B (A m x k, B k x n): dh_prev = dgates @ w_hh inside a batch block.
template <typename T>
void gemm_nn_serial(index_t m, index_t n, index_t k, const T* A, index_t lda, const T* Bm,
                    index_t ldb, T* C, index_t ldc) {
  detail::gemm_ex<T>(Trans::N, Trans::N, m, n, k, T(1), A, lda, Bm, ldb, T(0), C, ldc, nullptr, 1);
}

// xg (L*B, GH) = x @ w_ih^T + bias for all steps at once; bias is b_ih plus the part of b_hh
// that enters the gates unscaled (first `fold` entries), or null when neither exists.
template <typename T>
void input_projection(index_t rows, index_t I, index_t GH, const T* x, const T* w_ih,
                      const T* b_ih, const T* b_hh, index_t fold, T* xg) {
  const T* bias = nullptr;
  if (b_ih || b_hh) {
    T* bsum = scratch<T, 9>(size_t(GH));
    for (index_t j = 0; j < GH; ++j)
      bsum[j] = (b_ih ? b_ih[j] : T(0)) + (b_hh && j < fold ? b_hh[j] : T(0));
    bias = bsum;
  }
  linear_forward<T>(rows, I, GH, x, w_ih, bias, Act::none, 0.0, xg, nullptr);
}

// out[c] = sum over rows of a[r, c] (a is rows x cols, row stride lda): column blocks in
// parallel, rows in order inside a block, so the sum does not depend on the thread count.
template <typename T>
void column_sums(index_t rows, index_t cols, const T* a, index_t lda, T* out) {
  constexpr index_t kCols = 64;
  const index_t blocks = (cols + kCols - 1) / kCols;
  parallel_for(blocks, 1, [&](index_t b0, index_t b1) {
    for (index_t blk = b0; blk < b1; ++blk) {
      const index_t c0 = blk * kCols, c1 = std::min(cols, c0 + kCols);
      T acc[kCols] = {};
      for (index_t r = 0; r < rows; ++r) {
        const T* row = a + r * lda;
        for (index_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
      }
      for (index_t c = c0; c < c1; ++c) out[c] = acc[c - c0];
    }
  });
}

// dW (GH x K) = sum over steps of dg[t]^T @ prev_state(t), where the previous state of each
// step is hs of the step before or h0 for the first. Both orders pair a contiguous run of
// L-1 gate blocks with a contiguous run of hs, so it is one GEMM plus one for h0.
template <typename T>
void hidden_weight_grad(index_t L, index_t B, index_t H, index_t GH, const T* dg, index_t ldg,
                        const T* hs, const T* h0, bool reverse, T* dw) {
  const index_t step_rows = B;
  const index_t K = (L - 1) * step_rows;
  const T* dg_run = reverse ? dg : dg + step_rows * ldg;   // gates of steps 2..L
  const T* hs_run = reverse ? hs + step_rows * H : hs;     // states they follow
  gemm<T>(Trans::T, Trans::N, GH, H, K, T(1), dg_run, ldg, hs_run, H, T(0), dw, H);
  if (h0) {
    const T* dg_first = dg + (reverse ? (L - 1) * step_rows * ldg : 0);
    gemm<T>(Trans::T, Trans::N, GH, H, B, T(1), dg_first, ldg, h0, H, T(1), dw, H);
  }
}

// The input-side gradients from the stacked gate gradients dgx (L*B, GH): dw_ih = dgx^T x and
// dx (+)= dgx @ w_ih, each one GEMM over all steps.
template <typename T>
void input_grads(index_t rows, index_t I, index_t GH, const T* x, const T* w_ih, const T* dgx,
                 T* dx, bool dx_accumulate, T* dw_ih) {
  gemm<T>(Trans::T, Trans::N, GH, I, rows, T(1), dgx, GH, x, I, T(0), dw_ih, I);
  if (dx) gemm<T>(Trans::N, Trans::N, rows, I, GH, T(1), dgx, GH, w_ih, I, dx_accumulate ? T(1) : T(0), dx, I);
}

}  // namespace hepnn::cpu::rnn
