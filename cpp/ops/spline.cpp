// Rational-quadratic spline on the CPU: forward, inverse and backward of the forward, one task per
// block of elements. Each element recomputes its softmax / softplus normalisation from the raw
// parameters (no normalised copies are stored), using the math shared with CUDA in spline_math.hpp.
#include "ops/spline.hpp"

#include <atomic>
#include <cmath>
#include <string>

#include "core/error.hpp"
#include "core/threadpool.hpp"
#include "ops/spline_math.hpp"

namespace hepnn {

void check_spline_shape(const SplineShape& s, const char* op) {
  check_value(s.M >= 0, op, "needs a non-negative element count");
  check_value(s.K >= 2 && s.K <= kSplineMaxBins, op,
              "bin count must be in [2, " + std::to_string(kSplineMaxBins) + "], got " +
                  std::to_string(s.K));
  check_value(std::isfinite(s.bound) && s.bound > 0.0, op,
              "bound must be finite and > 0, got " + std::to_string(s.bound));
  check_value(s.min_width > 0.0 && s.min_width * s.K < 1.0, op,
              "min_width must be > 0 with min_width * K < 1, got " + std::to_string(s.min_width) +
                  " for K = " + std::to_string(s.K));
  check_value(s.min_height > 0.0 && s.min_height * s.K < 1.0, op,
              "min_height must be > 0 with min_height * K < 1, got " + std::to_string(s.min_height) +
                  " for K = " + std::to_string(s.K));
  check_value(std::isfinite(s.min_derivative) && s.min_derivative > 0.0, op,
              "min_derivative must be finite and > 0, got " + std::to_string(s.min_derivative));
}

namespace cpu {
namespace {

constexpr index_t kGrain = 512;  // elements per task: each costs ~3K exp

void check_nan(bool nan, const char* op) {
  check_value(!nan, op, "widths, heights or derivatives contain NaN");
}

}  // namespace

template <typename T>
void spline_forward(const SplineShape& s, const T* x, const T* W, const T* H, const T* D, T* y,
                    T* logdet) {
  check_spline_shape(s, "spline_forward");
  const int K = s.K;
  std::atomic<bool> any_nan{false};
  parallel_for(s.M, kGrain, [&](index_t e0, index_t e1) {
    bool nan = false;
    T cw[kSplineMaxBins], ch[kSplineMaxBins];  // the exponentials of one element
    for (index_t e = e0; e < e1; ++e) {
      const T v = x[e];
      if (!spline::inside(s, v)) {
        y[e] = v;
        logdet[e] = T(0);
        continue;
      }
      const auto b = spline::locate(s, W + e * K, H + e * K, D + e * (K - 1), v, false, nan, cw, ch);
      spline::rq_forward(b, v, y[e], logdet[e]);
    }
    if (nan) any_nan.store(true, std::memory_order_relaxed);
  });
  check_nan(any_nan.load(), "spline_forward");
}

template <typename T>
void spline_inverse(const SplineShape& s, const T* y, const T* W, const T* H, const T* D, T* x,
                    T* logdet) {
  check_spline_shape(s, "spline_inverse");
  const int K = s.K;
  std::atomic<bool> any_nan{false};
  parallel_for(s.M, kGrain, [&](index_t e0, index_t e1) {
    bool nan = false;
    T cw[kSplineMaxBins], ch[kSplineMaxBins];  // the exponentials of one element
    for (index_t e = e0; e < e1; ++e) {
      const T v = y[e];
      if (!spline::inside(s, v)) {
        x[e] = v;
        logdet[e] = T(0);
        continue;
      }
      const auto b = spline::locate(s, W + e * K, H + e * K, D + e * (K - 1), v, true, nan, cw, ch);
      spline::rq_inverse(b, v, x[e], logdet[e]);
    }
    if (nan) any_nan.store(true, std::memory_order_relaxed);
  });
  check_nan(any_nan.load(), "spline_inverse");
}

template <typename T>
void spline_backward(const SplineShape& s, const T* x, const T* W, const T* H, const T* D,
                     const T* dy, const T* dlogdet, T* dx, T* dW, T* dH, T* dD) {
  check_spline_shape(s, "spline_backward");
  const int K = s.K;
  std::atomic<bool> any_nan{false};
  parallel_for(s.M, kGrain, [&](index_t e0, index_t e1) {
    bool nan = false;
    T cw[kSplineMaxBins], ch[kSplineMaxBins];  // the exponentials of one element
    for (index_t e = e0; e < e1; ++e) {
      const T v = x[e];
      const T gy = dy ? dy[e] : T(0), gl = dlogdet ? dlogdet[e] : T(0);
      T* dw = dW ? dW + e * K : nullptr;
      T* dh = dH ? dH + e * K : nullptr;
      T* dd = dD ? dD + e * (K - 1) : nullptr;
      if (dd)
        for (int j = 0; j < K - 1; ++j) dd[j] = T(0);
      if (!spline::inside(s, v)) {
        if (dx) dx[e] = gy;
        if (dw)
          for (int j = 0; j < K; ++j) dw[j] = T(0);
        if (dh)
          for (int j = 0; j < K; ++j) dh[j] = T(0);
        continue;
      }
      const T* we = W + e * K;
      const T* he = H + e * K;
      const T* de = D + e * (K - 1);
      const auto b = spline::locate(s, we, he, de, v, false, nan, cw, ch);
      const auto g = spline::rq_backward(b, v, gy, gl);
      if (dx) dx[e] = g.x;
      if (dw) spline::softmax_backward(s, s.min_width, b.sw, b.k, b.cum_pw, b.pw, g.xk, g.w, dw);
      if (dh) spline::softmax_backward(s, s.min_height, b.sh, b.k, b.cum_ph, b.ph, g.yk, g.h, dh);
      if (dd) {
        if (b.k > 0) dd[b.k - 1] = g.d0 * spline::sigmoid(de[b.k - 1]);
        if (b.k < K - 1) dd[b.k] = g.d1 * spline::sigmoid(de[b.k]);
      }
    }
    if (nan) any_nan.store(true, std::memory_order_relaxed);
  });
  check_nan(any_nan.load(), "spline_backward");
}

#define HEPNN_SPLINE_INSTANTIATE(T)                                                              \
  template void spline_forward<T>(const SplineShape&, const T*, const T*, const T*, const T*, T*, \
                                  T*);                                                           \
  template void spline_inverse<T>(const SplineShape&, const T*, const T*, const T*, const T*, T*, \
                                  T*);                                                           \
  template void spline_backward<T>(const SplineShape&, const T*, const T*, const T*, const T*,    \
                                   const T*, const T*, T*, T*, T*, T*);
HEPNN_SPLINE_INSTANTIATE(float)
HEPNN_SPLINE_INSTANTIATE(double)
#undef HEPNN_SPLINE_INSTANTIATE

}  // namespace cpu
}  // namespace hepnn
