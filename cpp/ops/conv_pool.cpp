// Pooling kernels on the CPU (float, double), one plane per work item on the thread pool.
// Max: window maxima with their flat indices; backward scatters dy to those indices, serially
// within a plane so overlapping windows add in a fixed order. Average: plain window sums (backward
// spreads dy / divisor over the window, gathered per plane). Adaptive: torch's window bounds.
#include "ops/conv_pool.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/cpu_features.hpp"
#include "core/error.hpp"
#include "core/threadpool.hpp"
#if defined(HEPNN_HAVE_AVX2_KERNELS)
#include "ops/pool_avx2.hpp"
#endif

namespace hepnn::cpu {
namespace {

index_t plane_grain(index_t work_per_plane) {
  return std::max<index_t>(1, 16384 / std::max<index_t>(1, work_per_plane));
}

void check_pool(const PoolShape& s, const char* op) {
  HEPNN_CHECK_VALUE(s.P >= 0 && s.H >= 0 && s.W >= 0 && s.OH >= 0 && s.OW >= 0, op, "negative size");
  HEPNN_CHECK_VALUE(s.KH >= 1 && s.KW >= 1 && s.sh >= 1 && s.sw >= 1 && s.dh >= 1 && s.dw >= 1 &&
                  s.ph >= 0 && s.pw >= 0,
              op, "kernel, stride and dilation must be >= 1, padding >= 0");
}

inline index_t adaptive_start(index_t i, index_t in, index_t out) { return (i * in) / out; }
inline index_t adaptive_end(index_t i, index_t in, index_t out) { return ((i + 1) * in + out - 1) / out; }

// The divisor and clipped window of output (oh, ow) for average pooling.
struct Window {
  index_t h0, h1, w0, w1;
  index_t divisor;
};
inline Window avg_window(const PoolShape& s, bool include_pad, index_t oh, index_t ow) {
  index_t h0 = oh * s.sh - s.ph, w0 = ow * s.sw - s.pw;
  index_t h1 = std::min(h0 + s.KH, s.H + s.ph), w1 = std::min(w0 + s.KW, s.W + s.pw);
  const index_t padded = (h1 - h0) * (w1 - w0);
  h0 = std::max<index_t>(h0, 0);
  w0 = std::max<index_t>(w0, 0);
  h1 = std::min(h1, s.H);
  w1 = std::min(w1, s.W);
  return {h0, h1, w0, w1, include_pad ? padded : (h1 - h0) * (w1 - w0)};
}

// NOTE: as torch: NaN is the maximum, and ties keep the first index. Written as selects so the
// 2x2 path vectorises.
template <typename T>
inline bool better(T v, T best) {
  return v > best || (v != v && best == best);
}

constexpr index_t kRowChunk = 256;

// Plain ordering for planes without NaN (the NaN-aware compare makes compilers emit branches).
template <typename T>
inline bool greater(T v, T best) {
  return v > best;
}

template <typename T>
bool has_nan(index_t n, const T* __restrict x) {
  bool nan = false;
  for (index_t i = 0; i < n; ++i) nan |= x[i] != x[i];
  return nan;
}

// The CNN's common case: 2x2 windows, stride 2, no padding or dilation. `Better` is the
// NaN-aware compare or, for planes checked free of NaN, the plain one.
template <typename T, bool (*better)(T, T)>
void max_pool_2x2_plane(const PoolShape& s, const T* __restrict xp, T* __restrict yp, std::int64_t* __restrict ip) {
  for (index_t oh = 0; oh < s.OH; ++oh) {
    const T* r0 = xp + 2 * oh * s.W;
    const T* r1 = r0 + s.W;
    T* yr = yp + oh * s.OW;
    if (!ip) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
      // Planes free of NaN (the plain compare) may use the vector max, which does not order NaN.
      if constexpr (std::is_same_v<T, float> && better == &greater<T>) {
        if (avx2_f32()) {
          avx2::max_pool_2x2_row_f32(s.OW, r0, r1, yr);
          continue;
        }
      }
#endif
      // Values only: the order of comparisons does not matter (NaN wins either way), so take the
      // maximum of the two rows first (contiguous, vectorises), then of neighbouring pairs.
      T v[kRowChunk];
      for (index_t o0 = 0; o0 < s.OW; o0 += kRowChunk / 2) {
        const index_t n = std::min<index_t>(kRowChunk / 2, s.OW - o0);
        const T* a = r0 + 2 * o0;
        const T* b = r1 + 2 * o0;
        for (index_t j = 0; j < 2 * n; ++j) v[j] = better(b[j], a[j]) ? b[j] : a[j];
        for (index_t j = 0; j < n; ++j) yr[o0 + j] = better(v[2 * j + 1], v[2 * j]) ? v[2 * j + 1] : v[2 * j];
      }
      continue;
    }
    // A tree of selects, left preferred on ties: the first maximum in scan order, as a scan would
    // find it, without the mispredicted branches (ReLU outputs tie at zero all the time).
    std::int64_t* ir = ip + oh * s.OW;
    const std::int64_t base = 2 * oh * s.W;
    for (index_t ow = 0; ow < s.OW; ++ow) {
      const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
      const bool sb = better(b, a), sd = better(d, c);
      const T h0 = sb ? b : a, h1 = sd ? d : c;
      const std::int64_t s1 = better(h1, h0);
      yr[ow] = s1 ? h1 : h0;
      // Arithmetic, not a select, so the index needs no branch either.
      ir[ow] = base + 2 * ow + s1 * (s.W + std::int64_t(sd)) + (1 - s1) * std::int64_t(sb);
    }
  }
}

}  // namespace

template <typename T>
void max_pool2d_forward(const PoolShape& s, const T* x, T* y, std::int64_t* idx) {
  check_pool(s, "max_pool2d_forward");
  const index_t HW = s.H * s.W, OHW = s.OH * s.OW;
  // The 2x2 path reads whole windows: not for an output whose last windows pass the input's end
  // (ceil mode or end padding, as the ONNX runtime's pools ask for).
  const bool two_by_two = s.KH == 2 && s.KW == 2 && s.sh == 2 && s.sw == 2 && s.ph == 0 && s.pw == 0 &&
                          2 * s.OH <= s.H && 2 * s.OW <= s.W;
  parallel_for(s.P, plane_grain(OHW * s.KH * s.KW), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      const T* xp = x + p * HW;
      T* yp = y + p * OHW;
      std::int64_t* ip = idx ? idx + p * OHW : nullptr;
      if (two_by_two) {
        if (has_nan(HW, xp)) max_pool_2x2_plane<T, better<T>>(s, xp, yp, ip);
        else max_pool_2x2_plane<T, greater<T>>(s, xp, yp, ip);
        continue;
      }
      for (index_t oh = 0; oh < s.OH; ++oh) {
        // Window rows/cols inside the input: kh in [kh0, kh1), kw in [kw0, kw1).
        const index_t h = oh * s.sh - s.ph;
        const index_t kh0 = h >= 0 ? 0 : (-h + s.dh - 1) / s.dh;
        const index_t kh1 = std::min(s.KH, (s.H - 1 - h) / s.dh + 1);
        for (index_t ow = 0; ow < s.OW; ++ow) {
          const index_t w = ow * s.sw - s.pw;
          const index_t kw0 = w >= 0 ? 0 : (-w + s.dw - 1) / s.dw;
          const index_t kw1 = std::min(s.KW, (s.W - 1 - w) / s.dw + 1);
          index_t arg = (h + kh0 * s.dh) * s.W + w + kw0 * s.dw;
          T best = xp[arg];
          for (index_t kh = kh0; kh < kh1; ++kh) {
            const T* row = xp + (h + kh * s.dh) * s.W + w;
            for (index_t kw = kw0; kw < kw1; ++kw) {
              const T v = row[kw * s.dw];
              if (better(v, best)) {
                best = v;
                arg = (h + kh * s.dh) * s.W + w + kw * s.dw;
              }
            }
          }
          yp[oh * s.OW + ow] = best;
          if (ip) ip[oh * s.OW + ow] = arg;
        }
      }
    }
  });
}

template <typename T>
void max_pool_backward(index_t P, index_t HW, index_t OHW, const T* dy, const std::int64_t* idx, T* dx) {
  HEPNN_CHECK_VALUE(P >= 0 && HW >= 0 && OHW >= 0, "max_pool_backward", "negative size");
  parallel_for(P, plane_grain(HW + OHW), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      T* dxp = dx + p * HW;
      std::fill(dxp, dxp + HW, T(0));
      const T* g = dy + p * OHW;
      const std::int64_t* ip = idx + p * OHW;
      for (index_t o = 0; o < OHW; ++o)
        if (ip[o] >= 0 && ip[o] < HW) dxp[ip[o]] += g[o];  // -1: an empty window (no input)
    }
  });
}

template <typename T>
void avg_pool2d_forward(const PoolShape& s, bool include_pad, const T* x, T* y) {
  check_pool(s, "avg_pool2d_forward");
  const index_t HW = s.H * s.W, OHW = s.OH * s.OW;
  parallel_for(s.P, plane_grain(OHW * s.KH * s.KW), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      const T* xp = x + p * HW;
      T* yp = y + p * OHW;
      for (index_t oh = 0; oh < s.OH; ++oh) {
        for (index_t ow = 0; ow < s.OW; ++ow) {
          const Window w = avg_window(s, include_pad, oh, ow);
          T acc = T(0);
          for (index_t ih = w.h0; ih < w.h1; ++ih)
            for (index_t iw = w.w0; iw < w.w1; ++iw) acc += xp[ih * s.W + iw];
          yp[oh * s.OW + ow] = w.divisor > 0 ? acc / T(w.divisor) : T(0);
        }
      }
    }
  });
}

template <typename T>
void avg_pool2d_backward(const PoolShape& s, bool include_pad, const T* dy, T* dx) {
  check_pool(s, "avg_pool2d_backward");
  const index_t HW = s.H * s.W, OHW = s.OH * s.OW;
  parallel_for(s.P, plane_grain(OHW * s.KH * s.KW + HW), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      T* dxp = dx + p * HW;
      std::fill(dxp, dxp + HW, T(0));
      const T* g = dy + p * OHW;
      for (index_t oh = 0; oh < s.OH; ++oh) {
        for (index_t ow = 0; ow < s.OW; ++ow) {
          const Window w = avg_window(s, include_pad, oh, ow);
          if (w.divisor <= 0) continue;
          const T v = g[oh * s.OW + ow] / T(w.divisor);
          for (index_t ih = w.h0; ih < w.h1; ++ih)
            for (index_t iw = w.w0; iw < w.w1; ++iw) dxp[ih * s.W + iw] += v;
        }
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_forward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* x, T* y) {
  HEPNN_CHECK_VALUE(P >= 0 && H >= 1 && W >= 1 && OH >= 1 && OW >= 1, "adaptive_avg_pool2d_forward", "bad size");
  parallel_for(P, plane_grain(H * W), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      const T* xp = x + p * H * W;
      for (index_t oh = 0; oh < OH; ++oh) {
        const index_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        for (index_t ow = 0; ow < OW; ++ow) {
          const index_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
          T acc = T(0);
          for (index_t ih = h0; ih < h1; ++ih)
            for (index_t iw = w0; iw < w1; ++iw) acc += xp[ih * W + iw];
          y[(p * OH + oh) * OW + ow] = acc / T((h1 - h0) * (w1 - w0));
        }
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_backward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* dy, T* dx) {
  HEPNN_CHECK_VALUE(P >= 0 && H >= 1 && W >= 1 && OH >= 1 && OW >= 1, "adaptive_avg_pool2d_backward", "bad size");
  parallel_for(P, plane_grain(H * W), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      T* dxp = dx + p * H * W;
      std::fill(dxp, dxp + H * W, T(0));
      for (index_t oh = 0; oh < OH; ++oh) {
        const index_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        for (index_t ow = 0; ow < OW; ++ow) {
          const index_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
          const T v = dy[(p * OH + oh) * OW + ow] / T((h1 - h0) * (w1 - w0));
          for (index_t ih = h0; ih < h1; ++ih)
            for (index_t iw = w0; iw < w1; ++iw) dxp[ih * W + iw] += v;
        }
      }
    }
  });
}

template <typename T>
void adaptive_max_pool2d_forward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* x, T* y,
                                 std::int64_t* idx) {
  HEPNN_CHECK_VALUE(P >= 0 && H >= 1 && W >= 1 && OH >= 1 && OW >= 1, "adaptive_max_pool2d_forward", "bad size");
  parallel_for(P, plane_grain(H * W), [&](index_t p0, index_t p1) {
    for (index_t p = p0; p < p1; ++p) {
      const T* xp = x + p * H * W;
      for (index_t oh = 0; oh < OH; ++oh) {
        const index_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
        for (index_t ow = 0; ow < OW; ++ow) {
          const index_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
          T best = xp[h0 * W + w0];
          index_t arg = h0 * W + w0;
          for (index_t ih = h0; ih < h1 && !std::isnan(best); ++ih)
            for (index_t iw = w0; iw < w1; ++iw) {
              const T v = xp[ih * W + iw];
              if (v > best || std::isnan(v)) {
                best = v;
                arg = ih * W + iw;
                if (std::isnan(v)) break;
              }
            }
          y[(p * OH + oh) * OW + ow] = best;
          idx[(p * OH + oh) * OW + ow] = arg;
        }
      }
    }
  });
}

#define HEPNN_POOL_INSTANTIATE(T)                                                                       \
  template void max_pool2d_forward<T>(const PoolShape&, const T*, T*, std::int64_t*);                  \
  template void max_pool_backward<T>(index_t, index_t, index_t, const T*, const std::int64_t*, T*);    \
  template void avg_pool2d_forward<T>(const PoolShape&, bool, const T*, T*);                           \
  template void avg_pool2d_backward<T>(const PoolShape&, bool, const T*, T*);                          \
  template void adaptive_avg_pool2d_forward<T>(index_t, index_t, index_t, index_t, index_t, const T*, T*); \
  template void adaptive_avg_pool2d_backward<T>(index_t, index_t, index_t, index_t, index_t, const T*, T*); \
  template void adaptive_max_pool2d_forward<T>(index_t, index_t, index_t, index_t, index_t, const T*, T*, \
                                               std::int64_t*);
HEPNN_POOL_INSTANTIATE(float)
HEPNN_POOL_INSTANTIATE(double)
#undef HEPNN_POOL_INSTANTIATE

}  // namespace hepnn::cpu
