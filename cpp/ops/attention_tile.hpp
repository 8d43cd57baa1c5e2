// Internal to attention.cpp / attention_avx2.cpp: the per-task tile loops of the fused attention,
// written once as templates and compiled twice (portable flags, and -mavx2 -mfma for float32).
// NOTE: everything here has internal linkage (anonymous namespace) so the two compilations never
// merge at link time (an ODR clash would let the linker pick the AVX2 copy on any CPU).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/types.hpp"
#include "ops/gemm_ukernel.hpp"

namespace hepnn::cpu::attn {

template <typename T>
struct Problem {
  index_t B, H, Lq, Lk, D;
  const T *q, *k, *v;
  const std::uint8_t* key_mask;
  const T* bias;
  index_t bias_heads;
  T scale;
};

constexpr index_t kQTile = 64;   // query rows per task tile
constexpr index_t kKTile = 128;  // keys per tile (the real ones gathered densely)

}  // namespace hepnn::cpu::attn

namespace {

using hepnn::index_t;
using hepnn::cpu::attn::kKTile;
using hepnn::cpu::attn::kQTile;
using hepnn::cpu::attn::Problem;

// Per-thread buffers: the gathered real keys / values of one key tile (and their gradients),
// the score / probability tile and its gradient, the running row state, the indices of real keys.
template <typename T>
struct Work {
  std::vector<T> kc, vc, dkc, dvc, s, dp, acc, m, l, delta;
  std::vector<index_t> idx;
  explicit Work(index_t D)
      : kc(kKTile * D), vc(kKTile * D), dkc(kKTile * D), dvc(kKTile * D), s(kQTile * kKTile),
        dp(kQTile * kKTile), acc(kQTile * D), m(kQTile), l(kQTile), idx(kKTile) {}
};

// The real keys of [j0, j0 + nj) into idx; returns how many.
inline index_t real_keys(const std::uint8_t* km, index_t j0, index_t nj, index_t* idx) {
  index_t n = 0;
  if (!km) {
    for (index_t j = 0; j < nj; ++j) idx[j] = j0 + j;
    return nj;
  }
  for (index_t j = j0; j < j0 + nj; ++j)
    if (km[j]) idx[n++] = j;
  return n;
}

// Rows idx[0..n) of src (rows of D) packed densely into dst: padded keys never reach the GEMMs.
template <typename T>
inline void gather_rows(const T* src, index_t D, const index_t* idx, index_t n, T* dst) {
  for (index_t jj = 0; jj < n; ++jj) std::copy(src + idx[jj] * D, src + idx[jj] * D + D, dst + jj * D);
}

// C (m x n, ldc) = alpha op(A) op(B) + beta C on this thread (the caller is a pool task).
template <typename T>
inline void mm(hepnn::Trans ta, hepnn::Trans tb, index_t m, index_t n, index_t k, T alpha,
               const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
  hepnn::cpu::detail::gemm_ex(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc,
                              static_cast<const hepnn::cpu::detail::Epilogue<T>*>(nullptr), 1);
}

// The vector primitives the loops need, supplied by each compilation (Vec): max(n, x);
// exp_sum(n, x, shift, y): y = exp(x - shift) (x <= shift), returns the sum in double;
// exp_nonpos(n, x, y): y = exp(x) for x <= 0 (y may be x).

// One forward task: query rows [i0, i0 + ni) of head (b, h).
template <typename T, typename Vec>
void forward_task(const Problem<T>& P, index_t b, index_t h, index_t i0, index_t ni, Work<T>& w,
                  T* out, T* lse, const Vec& vec) {
  using hepnn::Trans;
  const index_t D = P.D, Lk = P.Lk, bh = b * P.H + h;
  const T* q = P.q + (bh * P.Lq + i0) * D;
  const T* k = P.k + bh * Lk * D;
  const T* v = P.v + bh * Lk * D;
  const std::uint8_t* km = P.key_mask ? P.key_mask + b * Lk : nullptr;
  const T* bias = P.bias ? P.bias + ((b * P.bias_heads + (P.bias_heads == 1 ? 0 : h)) * P.Lq + i0) * Lk
                         : nullptr;
  const T ninf = -std::numeric_limits<T>::infinity();
  std::fill(w.m.begin(), w.m.begin() + ni, ninf);
  std::fill(w.l.begin(), w.l.begin() + ni, T(0));
  std::fill(w.acc.begin(), w.acc.begin() + ni * D, T(0));
  const index_t* idx = w.idx.data();
  for (index_t j0 = 0; j0 < Lk; j0 += kKTile) {
    const index_t n = real_keys(km, j0, std::min(kKTile, Lk - j0), w.idx.data());
    if (n == 0) continue;
    const T *kp = k + j0 * D, *vp = v + j0 * D;
    if (km) {
      gather_rows(k, D, idx, n, w.kc.data());
      gather_rows(v, D, idx, n, w.vc.data());
      kp = w.kc.data(), vp = w.vc.data();
    }
    mm(Trans::N, Trans::T, ni, n, D, P.scale, q, D, kp, D, T(0), w.s.data(), kKTile);
    for (index_t i = 0; i < ni; ++i) {
      T* s = w.s.data() + i * kKTile;
      if (bias)
        for (index_t jj = 0; jj < n; ++jj) s[jj] += bias[i * Lk + idx[jj]];
      const T mx = vec.max(n, s);
      if (mx == ninf) {  // every score of this tile is -inf: it adds nothing
        std::fill(s, s + n, T(0));
        continue;
      }
      // NOTE: online softmax: the running sum and output are rescaled by exp(m_old - m_new)
      // when a tile raises the row maximum (exp(-inf) = 0 on the first tile). The tile's sum
      // of exp is accumulated in double.
      const T mnew = std::max(w.m[i], mx);
      const T corr = std::exp(w.m[i] - mnew);
      const T sum = static_cast<T>(vec.exp_sum(n, s, mnew, s));
      w.l[i] = w.l[i] * corr + sum;
      if (corr != T(1)) {
        T* acc = w.acc.data() + i * D;
        for (index_t d = 0; d < D; ++d) acc[d] *= corr;
      }
      w.m[i] = mnew;
    }
    mm(Trans::N, Trans::N, ni, D, n, T(1), w.s.data(), kKTile, vp, D, T(1), w.acc.data(), D);
  }
  T* o = out + (bh * P.Lq + i0) * D;
  T* ls = lse + bh * P.Lq + i0;
  for (index_t i = 0; i < ni; ++i) {
    const T li = w.l[i];
    const T inv = li > T(0) ? T(1) / li : T(0);
    for (index_t d = 0; d < D; ++d) o[i * D + d] = w.acc[i * D + d] * inv;
    ls[i] = li > T(0) ? w.m[i] + std::log(li) : ninf;
  }
}

// One backward head (b, h): dq, dk, dv of the head and (+=) its dbias rows, every key tile
// against every query tile. dq/dk/dv are written whole (zeroed first); dbias must be zeroed by
// the caller. NOTE: ds = p * (dp - delta) with delta = dout . out per row (the softmax
// Jacobian without materialising P); p = exp(s - lse) is recomputed from the saved lse.
template <typename T, typename Vec>
void backward_head(const Problem<T>& P, index_t b, index_t h, const T* out, const T* lse,
                   const T* dout, T* dq, T* dk, T* dv, T* dbias, Work<T>& w, const Vec& vec) {
  using hepnn::Trans;
  const index_t D = P.D, Lq = P.Lq, Lk = P.Lk, bh = b * P.H + h;
  const T* q = P.q + bh * Lq * D;
  const T* k = P.k + bh * Lk * D;
  const T* v = P.v + bh * Lk * D;
  const T* o = out + bh * Lq * D;
  const T* go = dout + bh * Lq * D;
  const T* ls = lse + bh * Lq;
  const std::uint8_t* km = P.key_mask ? P.key_mask + b * Lk : nullptr;
  const index_t bo = ((b * P.bias_heads + (P.bias_heads == 1 ? 0 : h)) * Lq) * Lk;
  const T* bias = P.bias ? P.bias + bo : nullptr;
  T* db = dbias ? dbias + bo : nullptr;
  T* gq = dq + bh * Lq * D;
  T* gk = dk + bh * Lk * D;
  T* gv = dv + bh * Lk * D;
  std::fill(gq, gq + Lq * D, T(0));
  std::fill(gk, gk + Lk * D, T(0));
  std::fill(gv, gv + Lk * D, T(0));
  if (static_cast<index_t>(w.delta.size()) < Lq) w.delta.resize(Lq);
  for (index_t i = 0; i < Lq; ++i) {
    T s = 0;
    for (index_t d = 0; d < D; ++d) s += go[i * D + d] * o[i * D + d];
    w.delta[i] = s;
  }
  const T ninf = -std::numeric_limits<T>::infinity();
  const index_t* idx = w.idx.data();
  for (index_t j0 = 0; j0 < Lk; j0 += kKTile) {
    const index_t n = real_keys(km, j0, std::min(kKTile, Lk - j0), w.idx.data());
    if (n == 0) continue;
    const T *kp = k + j0 * D, *vp = v + j0 * D;
    T *gkp = gk + j0 * D, *gvp = gv + j0 * D;
    if (km) {
      gather_rows(k, D, idx, n, w.kc.data());
      gather_rows(v, D, idx, n, w.vc.data());
      kp = w.kc.data(), vp = w.vc.data();
      gkp = w.dkc.data(), gvp = w.dvc.data();
      std::fill(gkp, gkp + n * D, T(0));
      std::fill(gvp, gvp + n * D, T(0));
    }
    for (index_t i0 = 0; i0 < Lq; i0 += kQTile) {
      const index_t ni = std::min(kQTile, Lq - i0);
      T* S = w.s.data();
      T* dS = w.dp.data();
      mm(Trans::N, Trans::T, ni, n, D, P.scale, q + i0 * D, D, kp, D, T(0), S, kKTile);
      mm(Trans::N, Trans::T, ni, n, D, T(1), go + i0 * D, D, vp, D, T(0), dS, kKTile);
      for (index_t i = 0; i < ni; ++i) {
        T* s = S + i * kKTile;
        T* g = dS + i * kKTile;
        const T li = ls[i0 + i];
        if (li == ninf) {  // a row with no real key: its output was 0, no gradient
          std::fill(s, s + n, T(0));
          std::fill(g, g + n, T(0));
          continue;
        }
        if (bias)
          for (index_t jj = 0; jj < n; ++jj) s[jj] += bias[(i0 + i) * Lk + idx[jj]];
        for (index_t jj = 0; jj < n; ++jj) s[jj] = std::min(s[jj] - li, T(0));
        vec.exp_nonpos(n, s, s);  // s now holds p
        const T delta = w.delta[i0 + i];
        for (index_t jj = 0; jj < n; ++jj) g[jj] = s[jj] * (g[jj] - delta);  // g now holds ds
        if (db)
          for (index_t jj = 0; jj < n; ++jj) db[(i0 + i) * Lk + idx[jj]] += g[jj];
      }
      mm(Trans::N, Trans::N, ni, D, n, P.scale, dS, kKTile, kp, D, T(1), gq + i0 * D, D);
      mm(Trans::T, Trans::N, n, D, ni, P.scale, dS, kKTile, q + i0 * D, D, T(1), gkp, D);
      mm(Trans::T, Trans::N, n, D, ni, T(1), S, kKTile, go + i0 * D, D, T(1), gvp, D);
    }
    if (km)
      for (index_t jj = 0; jj < n; ++jj) {
        std::copy(gkp + jj * D, gkp + jj * D + D, gk + idx[jj] * D);
        std::copy(gvp + jj * D, gvp + jj * D + D, gv + idx[jj] * D);
      }
  }
}

}  // namespace

namespace {

// Forward tasks [t0, t1) of the (b, h, query tile) grid.
template <typename T, typename Vec>
void run_forward(const Problem<T>& P, index_t t0, index_t t1, T* out, T* lse, const Vec& vec) {
  Work<T> w(P.D);
  const index_t nqt = (P.Lq + kQTile - 1) / kQTile;
  for (index_t t = t0; t < t1; ++t) {
    const index_t bh = t / nqt, i0 = (t % nqt) * kQTile;
    forward_task(P, bh / P.H, bh % P.H, i0, std::min(kQTile, P.Lq - i0), w, out, lse, vec);
  }
}

// Backward tasks [t0, t1): one per (b, h), or one per b (all heads in order) when a bias shared
// by the heads needs its gradient, so that its sum over heads has a fixed order.
template <typename T, typename Vec>
void run_backward(const Problem<T>& P, index_t t0, index_t t1, bool per_batch, const T* out,
                  const T* lse, const T* dout, T* dq, T* dk, T* dv, T* dbias, const Vec& vec) {
  Work<T> w(P.D);
  const index_t block = P.Lq * P.Lk;
  for (index_t t = t0; t < t1; ++t) {
    const index_t b = per_batch ? t : t / P.H;
    const index_t h0 = per_batch ? 0 : t % P.H, h1 = per_batch ? P.H : h0 + 1;
    if (dbias) {
      T* db = dbias + (b * P.bias_heads + (P.bias_heads == 1 ? 0 : h0)) * block;
      std::fill(db, db + block, T(0));
    }
    for (index_t h = h0; h < h1; ++h)
      backward_head(P, b, h, out, lse, dout, dq, dk, dv, dbias, w, vec);
  }
}

}  // namespace

#if defined(HEPNN_HAVE_AVX2_KERNELS)
namespace hepnn::cpu::attn {
// attention_avx2.cpp: the same loops compiled for AVX2+FMA (float32).
void forward_f32_avx2(const Problem<float>& P, index_t t0, index_t t1, float* out, float* lse);
void backward_f32_avx2(const Problem<float>& P, index_t t0, index_t t1, bool per_batch,
                       const float* out, const float* lse, const float* dout, float* dq, float* dk,
                       float* dv, float* dbias);
}  // namespace hepnn::cpu::attn
#endif
