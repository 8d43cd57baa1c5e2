// Per-element math of the rational-quadratic spline, shared by the CPU kernel (cpp/ops/spline.cpp)
// and its CUDA twin (cuda/spline.cu) so the two backends compute the same expressions: parameter
// normalisation, bin search, the forward / inverse rational quadratic and the analytic backward.
// Notation (Durkan et al. 2019, eqs. 4-8): bin k spans [xk, xk + w] -> [yk, yk + h], s = h / w,
// xi = (x - xk) / w, knot derivatives d0 (left) and d1 (right).
#pragma once
#include <cmath>

#include "ops/spline.hpp"

#if defined(__CUDACC__)
#define HEPNN_SPLINE_HD __host__ __device__ inline
#else
#define HEPNN_SPLINE_HD inline
#endif

namespace hepnn::spline {

// float stays float on the host (the global ::exp would promote to double).
using std::exp;
using std::log;
using std::sqrt;

// The softmax of one element's K unnormalised widths or heights: p(j) = exp(v_j - max) / sum.
// `e`, when not null, caches the K exponentials (the CPU kernels keep them on the stack; the
// CUDA ones recompute them rather than spill a per-thread array to local memory).
template <typename T>
struct Softmax {
  const T* v;
  const T* e;
  T max, inv_sum;
  HEPNN_SPLINE_HD T p(int j) const { return (e ? e[j] : exp(v[j] - max)) * inv_sum; }
};

// `nan` is set when a value is NaN (a comparison with NaN is false, so the max alone would hide it).
template <typename T>
HEPNN_SPLINE_HD Softmax<T> softmax_stats(const T* v, int K, bool& nan, T* cache) {
  T m = v[0];
  for (int j = 0; j < K; ++j) {
    if (!(v[j] == v[j])) nan = true;
    m = v[j] > m ? v[j] : m;
  }
  T sum = T(0);
  for (int j = 0; j < K; ++j) {
    const T e = exp(v[j] - m);
    if (cache) cache[j] = e;
    sum += e;
  }
  return {v, cache, m, T(1) / sum};
}

// log(1 + e) for e in [0, 1] to a few ulps with one plain log: the rounding of w = 1 + e is
// undone by e / (w - 1) (Goldberg 1991, Theorem 4). NOTE: glibc's log1pf cost the CPU kernels
// a fifth of their time.
template <typename T>
HEPNN_SPLINE_HD T log1p_small(T e) {
  const T w = T(1) + e;
  return w == T(1) ? e : log(w) * (e / (w - T(1)));
}

// softplus(v) = log(1 + e^v) = max(v, 0) + log(1 + e^-|v|) without overflow, and its derivative.
template <typename T>
HEPNN_SPLINE_HD T softplus(T v) {
  return (v > T(0) ? v : T(0)) + log1p_small(exp(v > T(0) ? -v : v));
}
template <typename T>
HEPNN_SPLINE_HD T sigmoid(T v) {
  return T(1) / (T(1) + exp(-v));
}

// One element's bin: index k, where it starts (xk, yk), its size (w, h), the knot derivatives
// and the softmax facts the backward needs (cumulative probabilities of the bins before k).
template <typename T>
struct Bin {
  int k;
  T xk, w, yk, h, d0, d1;
  T pw, ph;          // softmax probability of bin k (widths, heights)
  T cum_pw, cum_ph;  // sum of the probabilities of bins 0..k-1
  Softmax<T> sw, sh;
};

// Bin sizes on [-B, B]: 2B * (min + (1 - min K) p). Positions are summed from the probabilities,
// xk = -B + 2B (k min + (1 - min K) cum_p), so that the backward is a closed form in cum_p.
template <typename T>
HEPNN_SPLINE_HD T bin_size(const SplineShape& s, double min, T p) {
  return T(2 * s.bound) * (T(min) + T(1 - min * s.K) * p);
}
template <typename T>
HEPNN_SPLINE_HD T bin_start(const SplineShape& s, double min, int k, T cum_p) {
  return T(-s.bound) + T(2 * s.bound) * (T(min * k) + T(1 - min * s.K) * cum_p);
}

// Finds the bin holding v: along x (by_y false, the forward) or along y (the inverse). The last
// bin takes anything at or beyond its start, so a NaN knot can never send k out of range.
// cache_w / cache_h: room for K exponentials each, or null (see Softmax).
template <typename T>
HEPNN_SPLINE_HD Bin<T> locate(const SplineShape& s, const T* W, const T* H, const T* D, T v, bool by_y,
                              bool& nan, T* cache_w = nullptr, T* cache_h = nullptr) {
  const int K = s.K;
  Bin<T> b;
  b.sw = softmax_stats(W, K, nan, cache_w);
  b.sh = softmax_stats(H, K, nan, cache_h);
  for (int j = 0; j < K - 1; ++j)
    if (!(D[j] == D[j])) nan = true;
  const Softmax<T>& st = by_y ? b.sh : b.sw;
  const double mn = by_y ? s.min_height : s.min_width;
  // v < bin_start(k + 1) compared in probability units: (v + B) / 2B against mn (k+1) + c cum.
  const T u = (v + T(s.bound)) / T(2 * s.bound), tm = T(mn), tc = T(1 - mn * K);
  T cum = T(0);
  int k = 0;
  for (; k < K - 1; ++k) {
    const T p = st.p(k);
    if (u < tm * T(k + 1) + tc * (cum + p)) break;
    cum += p;
  }
  b.k = k;
  // The other axis' cumulative probability up to bin k.
  const Softmax<T>& sq = by_y ? b.sw : b.sh;
  T cum_q = T(0);
  for (int j = 0; j < k; ++j) cum_q += sq.p(j);
  b.cum_pw = by_y ? cum_q : cum;
  b.cum_ph = by_y ? cum : cum_q;
  b.pw = b.sw.p(k);
  b.ph = b.sh.p(k);
  b.xk = bin_start(s, s.min_width, k, b.cum_pw);
  b.yk = bin_start(s, s.min_height, k, b.cum_ph);
  b.w = bin_size(s, s.min_width, b.pw);
  b.h = bin_size(s, s.min_height, b.ph);
  b.d0 = k == 0 ? T(1) : T(s.min_derivative) + softplus(D[k - 1]);
  b.d1 = k == K - 1 ? T(1) : T(s.min_derivative) + softplus(D[k]);
  return b;
}

template <typename T>
HEPNN_SPLINE_HD bool inside(const SplineShape& s, T v) {
  return v >= T(-s.bound) && v <= T(s.bound);
}

template <typename T>
HEPNN_SPLINE_HD T clamp01(T v) {
  return v < T(0) ? T(0) : (v > T(1) ? T(1) : v);
}

// log dy/dx = log(s^2 P / den^2) as one log instead of three. NOTE: s lies in
// [min_height, 1 / min_width] and den >= min(s, d0, d1) > 0, so the product overflows a float only
// for knot derivatives beyond ~1e30, i.e. unnormalised derivatives of a diverged network.
template <typename T>
HEPNN_SPLINE_HD T log_slope(T s, T P, T den) {
  const T r = s / den;
  return log(r * r * P);
}

// y and log dy/dx at x inside bin b (eqs. 4 and 5).
template <typename T>
HEPNN_SPLINE_HD void rq_forward(const Bin<T>& b, T x, T& y, T& logdet) {
  const T xi = clamp01((x - b.xk) / b.w), s = b.h / b.w, t = xi * (T(1) - xi);
  const T den = s + (b.d0 + b.d1 - T(2) * s) * t;
  y = b.yk + b.h * (s * xi * xi + b.d0 * t) / den;
  const T P = b.d1 * xi * xi + T(2) * s * t + b.d0 * (T(1) - xi) * (T(1) - xi);
  logdet = log_slope(s, P, den);
}

// x and log dx/dy at y inside bin b: the root in [0, 1] of the quadratic in xi (eqs. 6-8).
template <typename T>
HEPNN_SPLINE_HD void rq_inverse(const Bin<T>& b, T y, T& x, T& logdet) {
  const T s = b.h / b.w, dy = y - b.yk, delta = b.d0 + b.d1 - T(2) * s;
  const T qa = b.h * (s - b.d0) + dy * delta;
  const T qb = b.h * b.d0 - dy * delta;
  const T qc = -s * dy;
  T disc = qb * qb - T(4) * qa * qc;
  disc = disc > T(0) ? disc : T(0);
  // NOTE: the root wanted is (-b + sqrt(disc)) / 2a = 2c / (-b - sqrt(disc)); each form cancels
  // for one sign of b (b < 0 occurs where d1 > 2s), so the other one is used there.
  const T root = sqrt(disc);
  T xi;
  if (qb >= T(0))
    xi = (qb + root) > T(0) ? T(-2) * qc / (qb + root) : T(0);
  else
    xi = qa > T(0) ? (root - qb) / (T(2) * qa) : T(1);
  xi = clamp01(xi);
  x = b.xk + xi * b.w;
  const T t = xi * (T(1) - xi);
  const T den = s + delta * t;
  const T P = b.d1 * xi * xi + T(2) * s * t + b.d0 * (T(1) - xi) * (T(1) - xi);
  logdet = -log_slope(s, P, den);
}

// Gradients of gy * y + gl * logdet at x inside bin b w.r.t. the bin's local quantities.
template <typename T>
struct BinGrad {
  T x, xk, w, yk, h, d0, d1;
};

// NOTE: derived by hand from eqs. 4-5 with xi = (x - xk) / w and s = h / w as the only coupling
// between the local quantities; checked against finite differences in tests/ops/spline.py.
template <typename T>
HEPNN_SPLINE_HD BinGrad<T> rq_backward(const Bin<T>& b, T x, T gy, T gl) {
  const T xi = clamp01((x - b.xk) / b.w), s = b.h / b.w, t = xi * (T(1) - xi), u = T(1) - T(2) * xi;
  const T delta = b.d0 + b.d1 - T(2) * s;
  const T num = s * xi * xi + b.d0 * t, den = s + delta * t;
  const T P = b.d1 * xi * xi + T(2) * s * t + b.d0 * (T(1) - xi) * (T(1) - xi);
  const T iden = T(1) / den, iP = T(1) / P, hq = b.h * iden * iden;
  // d/dq of y = yk + h num / den and of L = 2 log s + log P - 2 log den, q in {xi, s, d0, d1}.
  const T dnum_xi = T(2) * s * xi + b.d0 * u, dden_xi = delta * u;
  const T dP_xi = T(2) * (b.d1 * xi + s * u - b.d0 * (T(1) - xi));
  const T g_xi = gy * hq * (dnum_xi * den - num * dden_xi) + gl * (dP_xi * iP - T(2) * dden_xi * iden);
  const T dden_s = T(1) - T(2) * t;
  const T g_s = gy * hq * (xi * xi * den - num * dden_s) +
                gl * (T(2) / s + T(2) * t * iP - T(2) * dden_s * iden);
  const T g_d0 = gy * hq * (t * den - num * t) + gl * ((T(1) - xi) * (T(1) - xi) * iP - T(2) * t * iden);
  const T g_d1 = gy * hq * (-num * t) + gl * (xi * xi * iP - T(2) * t * iden);
  BinGrad<T> g;
  const T iw = T(1) / b.w;
  g.x = g_xi * iw;
  g.xk = -g_xi * iw;
  g.w = -(g_xi * xi + g_s * s) * iw;
  g.h = gy * num * iden + g_s * iw;
  g.yk = gy;
  g.d0 = g_d0;
  g.d1 = g_d1;
  return g;
}

// Gradient w.r.t. the unnormalised widths (or heights) of one element from those w.r.t. the bin
// start (only bins before k move it) and the size of bin k, through the softmax.
template <typename T>
HEPNN_SPLINE_HD void softmax_backward(const SplineShape& s, double min, const Softmax<T>& st, int k,
                                      T cum_p, T p_k, T g_start, T g_size, T* dV) {
  const T scale = T(2 * s.bound) * T(1 - min * s.K);
  const T gs = scale * g_start, gz = scale * g_size;
  const T dot = gs * cum_p + gz * p_k;  // sum_j p_j * (dL / dp_j)
  for (int j = 0; j < s.K; ++j) {
    const T gj = j < k ? gs : (j == k ? gz : T(0));
    dV[j] = st.p(j) * (gj - dot);
  }
}

}  // namespace hepnn::spline
