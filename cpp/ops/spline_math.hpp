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
using std::log1p;
using std::sqrt;

// Max and 1 / sum(exp(v - max)) of one element's K unnormalised widths or heights. `nan` is set
// when a value is NaN (a comparison with NaN is false, so the max alone would hide it).
template <typename T>
struct Softmax {
  T max, inv_sum;
};

template <typename T>
HEPNN_SPLINE_HD Softmax<T> softmax_stats(const T* v, int K, bool& nan) {
  T m = v[0];
  for (int j = 0; j < K; ++j) {
    if (!(v[j] == v[j])) nan = true;
    m = v[j] > m ? v[j] : m;
  }
  T sum = T(0);
  for (int j = 0; j < K; ++j) sum += exp(v[j] - m);
  return {m, T(1) / sum};
}

template <typename T>
HEPNN_SPLINE_HD T prob(T v, const Softmax<T>& st) {
  return exp(v - st.max) * st.inv_sum;
}

// softplus(v) = log(1 + e^v) without overflow, and its derivative sigmoid(v).
template <typename T>
HEPNN_SPLINE_HD T softplus(T v) {
  return v > T(20) ? v : log1p(exp(v));
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
template <typename T>
HEPNN_SPLINE_HD Bin<T> locate(const SplineShape& s, const T* W, const T* H, const T* D, T v, bool by_y,
                              bool& nan) {
  const int K = s.K;
  Bin<T> b;
  b.sw = softmax_stats(W, K, nan);
  b.sh = softmax_stats(H, K, nan);
  for (int j = 0; j < K - 1; ++j)
    if (!(D[j] == D[j])) nan = true;
  const T* P = by_y ? H : W;
  const Softmax<T>& st = by_y ? b.sh : b.sw;
  const double mn = by_y ? s.min_height : s.min_width;
  T cum = T(0);
  int k = 0;
  for (; k < K - 1; ++k) {
    const T p = prob(P[k], st);
    if (v < bin_start(s, mn, k + 1, cum + p)) break;
    cum += p;
  }
  b.k = k;
  // The other axis' cumulative probability up to bin k.
  const T* Q = by_y ? W : H;
  const Softmax<T>& sq = by_y ? b.sw : b.sh;
  T cum_q = T(0);
  for (int j = 0; j < k; ++j) cum_q += prob(Q[j], sq);
  b.cum_pw = by_y ? cum_q : cum;
  b.cum_ph = by_y ? cum : cum_q;
  b.pw = prob(W[k], b.sw);
  b.ph = prob(H[k], b.sh);
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

// y and log dy/dx at x inside bin b (eqs. 4 and 5).
template <typename T>
HEPNN_SPLINE_HD void rq_forward(const Bin<T>& b, T x, T& y, T& logdet) {
  const T xi = clamp01((x - b.xk) / b.w), s = b.h / b.w, t = xi * (T(1) - xi);
  const T den = s + (b.d0 + b.d1 - T(2) * s) * t;
  y = b.yk + b.h * (s * xi * xi + b.d0 * t) / den;
  const T P = b.d1 * xi * xi + T(2) * s * t + b.d0 * (T(1) - xi) * (T(1) - xi);
  logdet = T(2) * log(s) + log(P) - T(2) * log(den);
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
  logdet = -(T(2) * log(s) + log(P) - T(2) * log(den));
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
HEPNN_SPLINE_HD void softmax_backward(const SplineShape& s, double min, const T* V, const Softmax<T>& st,
                                      int k, T cum_p, T p_k, T g_start, T g_size, T* dV) {
  const T scale = T(2 * s.bound) * T(1 - min * s.K);
  const T gs = scale * g_start, gz = scale * g_size;
  const T dot = gs * cum_p + gz * p_k;  // sum_j p_j * (dL / dp_j)
  for (int j = 0; j < s.K; ++j) {
    const T gj = j < k ? gs : (j == k ? gz : T(0));
    dV[j] = prob(V[j], st) * (gj - dot);
  }
}

}  // namespace hepnn::spline
