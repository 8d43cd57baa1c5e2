// Convolutions on the CPU by im2col + GEMM (ops/gemm.hpp), NCHW. Forward: per (sample, group)
// the kernel windows are unrolled into a K x N column matrix and y = W_g @ col runs through the
// blocked GEMM whose store epilogue adds the bias, keeps z and applies the activation while the
// tile is in L1. Backward: dz = dy * act', db = per-channel sums, dW = dz @ col^T summed over the
// batch in fixed chunks, dx = col2im(W_g^T @ dz). conv_transpose2d reuses the same two cores.
// Variants: float, double; 1x1 stride-1 unpadded convolutions skip im2col (col is x itself);
// shallow ones (K = C/groups * KH * KW <= 16, unit column stride) run a direct loop instead.
#include "ops/conv.hpp"

#include <algorithm>
#include <climits>
#include <type_traits>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "core/threadpool.hpp"
#include "core/cpu_features.hpp"
#include "ops/activation.hpp"
#include "ops/conv_pool.hpp"
#if defined(HEPNN_HAVE_AVX2_KERNELS)
#include "ops/conv_avx2.hpp"
#endif
#include "ops/gemm.hpp"
#include "ops/gemm_ukernel.hpp"
#include "ops/linear.hpp"

namespace hepnn::cpu {
namespace {

// Thread-local scratch, one buffer per tag (col, dcol, dz and the dW partials must not alias).
template <typename T, int Tag>
T* scratch(size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

bool is_pointwise(const ConvShape& s) {
  return s.KH == 1 && s.KW == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
}

// Zero-padded copy of Cg planes (Cg, H + 2ph, W + 2pw) plus `tail` zeros after the last plane.
template <typename T>
void pad_planes(const ConvShape& s, const T* x, T* xp, index_t tail) {
  const index_t Hp = s.H + 2 * s.ph, Wp = s.W + 2 * s.pw;
  for (index_t c = 0; c < s.Cg(); ++c) {
    T* plane = xp + c * Hp * Wp;
    std::fill(plane, plane + s.ph * Wp, T(0));
    for (index_t h = 0; h < s.H; ++h) {
      T* row = plane + (h + s.ph) * Wp;
      std::fill(row, row + s.pw, T(0));
      std::memcpy(row + s.pw, x + (c * s.H + h) * s.W, size_t(s.W) * sizeof(T));
      std::fill(row + s.pw + s.W, row + Wp, T(0));
    }
    std::fill(plane + (s.ph + s.H) * Wp, plane + Hp * Wp, T(0));
  }
  std::fill(xp + s.Cg() * Hp * Wp, xp + s.Cg() * Hp * Wp + tail, T(0));
}

template <typename T>
void copy_run(index_t n, const T* __restrict src, T* __restrict dst) {
  for (index_t j = 0; j < n; ++j) dst[j] = src[j];
}

// col (K x N) from one group's Cg input planes: row (c, kh, kw), column (oh, ow).
// NOTE: reading from a zero-padded copy makes every output row one branch-free run (the
// bounds-checked version spent more time in per-row bookkeeping than in copying).
template <typename T>
void im2col(const ConvShape& s, const T* x, T* col) {
  const index_t Hp = s.H + 2 * s.ph, Wp = s.W + 2 * s.pw, N = s.N();
  T* xp = scratch<T, 6>(size_t(s.Cg()) * size_t(Hp) * size_t(Wp));
  pad_planes(s, x, xp, 0);
  for (index_t c = 0; c < s.Cg(); ++c) {
    for (index_t kh = 0; kh < s.KH; ++kh) {
      for (index_t kw = 0; kw < s.KW; ++kw) {
        T* row = col + ((c * s.KH + kh) * s.KW + kw) * N;
        const T* base = xp + (c * Hp + kh * s.dh) * Wp + kw * s.dw;
        for (index_t oh = 0; oh < s.OH; ++oh) {
          const T* src = base + oh * s.sh * Wp;
          T* dst = row + oh * s.OW;
          if (s.sw == 1) {
            copy_run(s.OW, src, dst);
          } else {
            for (index_t ow = 0; ow < s.OW; ++ow) dst[ow] = src[ow * s.sw];
          }
        }
      }
    }
  }
}

template <typename T>
void add_run(index_t n, const T* __restrict src, T* __restrict dst) {
  for (index_t j = 0; j < n; ++j) dst[j] += src[j];
}

// dx (Cg planes) = the columns of dcol scattered back to the windows they came from, summed in a
// zero-padded buffer (branch-free row runs) whose interior is then copied out. Serial within a
// sample, so the summation order is fixed.
template <typename T>
void col2im(const ConvShape& s, const T* dcol, T* dx) {
  const index_t Hp = s.H + 2 * s.ph, Wp = s.W + 2 * s.pw, N = s.N();
  T* xp = scratch<T, 6>(size_t(s.Cg()) * size_t(Hp) * size_t(Wp));
  std::fill(xp, xp + s.Cg() * Hp * Wp, T(0));
  for (index_t c = 0; c < s.Cg(); ++c) {
    for (index_t kh = 0; kh < s.KH; ++kh) {
      for (index_t kw = 0; kw < s.KW; ++kw) {
        const T* row = dcol + ((c * s.KH + kh) * s.KW + kw) * N;
        T* base = xp + (c * Hp + kh * s.dh) * Wp + kw * s.dw;
        for (index_t oh = 0; oh < s.OH; ++oh) {
          const T* src = row + oh * s.OW;
          T* dst = base + oh * s.sh * Wp;
          if (s.sw == 1) {
            add_run(s.OW, src, dst);
          } else {
            for (index_t ow = 0; ow < s.OW; ++ow) dst[ow * s.sw] += src[ow];
          }
        }
      }
    }
    for (index_t h = 0; h < s.H; ++h)
      std::memcpy(dx + (c * s.H + h) * s.W, xp + (c * Hp + h + s.ph) * Wp + s.pw, size_t(s.W) * sizeof(T));
  }
}

template <typename T>
struct EpiCtx {
  const T* b;  // this group's bias, or null
  T* z;        // this (sample, group)'s pre-activation, or null
  index_t N;
  Act act;
  double alpha;
};

// The tile holds (W_g @ col) for output channels row0.. and pixels col0..: add the per-channel
// bias, keep z, apply the activation in place.
template <typename T>
void epilogue(const void* vctx, T* c, index_t ldc, index_t row0, index_t col0, index_t m, index_t n) {
  const auto& ctx = *static_cast<const EpiCtx<T>*>(vctx);
  for (index_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (ctx.b) {
      const T bv = ctx.b[row0 + i];
      for (index_t j = 0; j < n; ++j) row[j] += bv;
    }
    if (ctx.z) std::memcpy(ctx.z + (row0 + i) * ctx.N + col0, row, size_t(n) * sizeof(T));
    switch (ctx.act) {
      case Act::none: break;
      case Act::relu:
        for (index_t j = 0; j < n; ++j) row[j] = row[j] < T(0) ? T(0) : row[j];  // NaN stays NaN
        break;
      default:
        act_forward<T>(ctx.act, n, row, row, ctx.alpha);
    }
  }
}

// NOTE: with a shallow GEMM depth (a 1-channel 3x3 layer has K = 9) im2col + GEMM moves more
// memory than it computes; below this depth a direct loop over a zero-padded copy of the input
// wins (measured 5x on the 1x40x40 -> 32 channel layer). Unit column stride keeps rows contiguous.
constexpr index_t kDirectMaxK = 16;

bool use_direct(const ConvShape& s) { return s.sw == 1 && s.K() <= kDirectMaxK; }

// True when the AVX2 tap kernel runs this type (float32 on an AVX2+FMA CPU).
template <typename T>
bool fast_taps() {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>) {
    static const bool enabled = use_avx2_fma();
    return enabled;
  }
#endif
  return false;
}

template <typename T>
void acc_row(index_t n, T wv, const T* __restrict src, T* __restrict dst) {
  for (index_t j = 0; j < n; ++j) dst[j] += wv * src[j];
}

// dst += w0 * s0 + w1 * s1 + w2 * s2: three taps per pass over dst (a third of the load/stores).
template <typename T>
void acc3(index_t n, T w0, const T* __restrict s0, T w1, const T* __restrict s1, T w2, const T* __restrict s2,
          T* __restrict dst) {
  for (index_t j = 0; j < n; ++j) dst[j] += w0 * s0[j] + w1 * s1[j] + w2 * s2[j];
}

// One (sample, group): out (Og, OH, OW) from the group's Cg input planes, epilogue per channel.
// With unit row stride every tap reads one contiguous run of the padded input: the output is
// computed on rows of the padded width Wp (the Wp - OW extra columns are discarded), so a tap is
// one long vector loop instead of OH short ones.
template <typename T>
void direct_group(const ConvShape& s, const T* x, const T* w, const EpiCtx<T>& ctx, T* out) {
  const index_t Hp = s.H + 2 * s.ph, Wp = s.W + 2 * s.pw, Cg = s.Cg(), K = s.K(), N = s.N();
  const index_t tail = (s.KW - 1) * s.dw + 1;  // the last row's discarded columns read past the plane
  T* xp = scratch<T, 4>(size_t(Cg) * size_t(Hp) * size_t(Wp) + size_t(tail));
  pad_planes(s, x, xp, tail);
  const detail::Epilogue<T> epi{&epilogue<T>, &ctx};
  const bool wide = s.sh == 1;
  const index_t L = s.OH * Wp;
  T* acc = wide && !fast_taps<T>() ? scratch<T, 5>(size_t(L)) : nullptr;
  auto tap_src = [&](index_t t) {
    const index_t kw = t % s.KW, kh = (t / s.KW) % s.KH, c = t / (s.KW * s.KH);
    return xp + (c * Hp + kh * s.dh) * Wp + kw * s.dw;
  };
  for (index_t o = 0; o < s.Og(); ++o) {
    const T* wo = w + o * K;
    T* plane = out + o * N;
    if (fast_taps<T>()) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
      // Straight into the output rows: no wide grid, no copy.
      const float* srcs[kDirectMaxK];
      for (index_t t = 0; t < K; ++t) srcs[t] = reinterpret_cast<const float*>(tap_src(t));
      for (index_t oh = 0; oh < s.OH; ++oh)
        avx2::conv_taps_f32(s.OW, K, srcs, oh * s.sh * Wp, reinterpret_cast<const float*>(wo),
                            reinterpret_cast<float*>(plane + oh * s.OW));
#endif
    } else if (wide) {
      std::fill(acc, acc + L, T(0));
      index_t t = 0;
      for (; t + 3 <= K; t += 3) acc3(L, wo[t], tap_src(t), wo[t + 1], tap_src(t + 1), wo[t + 2], tap_src(t + 2), acc);
      for (; t < K; ++t) acc_row(L, wo[t], tap_src(t), acc);
      for (index_t oh = 0; oh < s.OH; ++oh) std::memcpy(plane + oh * s.OW, acc + oh * Wp, size_t(s.OW) * sizeof(T));
    } else {
      std::fill(plane, plane + N, T(0));
      for (index_t oh = 0; oh < s.OH; ++oh)
        for (index_t t = 0; t < K; ++t) acc_row(s.OW, wo[t], tap_src(t) + oh * s.sh * Wp, plane + oh * s.OW);
    }
    epi.fn(epi.ctx, plane, N, o, 0, 1, N);
  }
}

// out (B, O, OH, OW) = act(conv(in, w) + b); z optional.
// With `pool`, each (sample, group) result goes to thread scratch and only its max-pooled planes
// reach `pooled` (B, O, pool->OH, pool->OW): the conv output never leaves the cache.
template <typename T>
void forward_core(const ConvShape& s, const T* in, const T* w, const T* b, Act act, double alpha,
                  T* out, T* z, const PoolShape* pool = nullptr, T* pooled = nullptr) {
  const index_t G = s.groups, Og = s.Og(), K = s.K(), N = s.N();
  if (s.B == 0 || s.O == 0 || N == 0) return;
  const index_t in_plane = s.C * s.H * s.W, out_plane = s.O * N;
  const bool pointwise = is_pointwise(s);
  const bool direct = !pointwise && use_direct(s);
  const index_t tasks = s.B * G;
  const bool outer = tasks >= get_num_threads() || direct;
  auto run = [&](index_t t0, index_t t1) {
    T* col = pointwise || direct ? nullptr : scratch<T, 0>(size_t(K) * size_t(N));
    for (index_t t = t0; t < t1; ++t) {
      const index_t n = t / G, g = t % G;
      const T* xg = in + n * in_plane + g * s.Cg() * s.H * s.W;
      index_t off = n * out_plane + g * Og * N;
      T* dst = out;
      if (pool) {
        dst = scratch<T, 8>(size_t(Og) * size_t(N));
        off = 0;
      }
      const EpiCtx<T> ctx{b ? b + g * Og : nullptr, z ? z + off : nullptr, N, act, alpha};
      auto finish = [&] {
        if (!pool) return;
        PoolShape ps = *pool;
        ps.P = Og;
        const index_t pn = ps.OH * ps.OW;
        max_pool2d_forward<T>(ps, dst, pooled + (n * s.O + g * Og) * pn, nullptr);
      };
      if (direct) {
        direct_group(s, xg, w + g * Og * K, ctx, dst + off);
        finish();
        continue;
      }
      const T* src = xg;
      if (!pointwise) {
        im2col(s, xg, col);
        src = col;
      }
      const detail::Epilogue<T> epi{&epilogue<T>, &ctx};
      detail::gemm_ex<T>(Trans::N, Trans::N, Og, N, K, T(1), w + g * Og * K, K, src, N, T(0),
                         dst + off, N, &epi, outer ? 1 : INT_MAX);
      finish();
    }
  };
  if (outer) parallel_for(tasks, 1, run);
  else run(0, tasks);
}

constexpr index_t kMaxChunks = 8;

// From dout (B, O, OH, OW): dw (may be null) = sum_n dout_n @ col(in_n)^T, and din (may be null)
// = col2im(W^T @ dout_n). The batch is cut into min(B, kMaxChunks) chunks, each summing its dW
// partial in sample order; the partials are added in chunk order, so the result does not depend
// on the number of threads.
template <typename T>
void backward_core(const ConvShape& s, const T* in, const T* dout, const T* w, T* dw, T* din) {
  const index_t G = s.groups, Og = s.Og(), K = s.K(), N = s.N();
  const index_t in_plane = s.C * s.H * s.W, out_plane = s.O * N, wsize = s.O * K;
  if (s.B == 0 || wsize == 0 || N == 0) {  // nothing flows back: zero gradients
    if (din) std::fill(din, din + s.B * in_plane, T(0));
    if (dw) std::fill(dw, dw + wsize, T(0));
    return;
  }
  const bool pointwise = is_pointwise(s);
  const index_t chunks = std::min(s.B, kMaxChunks);
  const bool outer = chunks > 1 && get_num_threads() > 1;
  const int gemm_threads = outer ? 1 : INT_MAX;
  T* partials = dw && chunks > 1 ? scratch<T, 2>(size_t(chunks) * size_t(wsize)) : nullptr;
  // W_g^T (K x Og) once per call, so each sample's dcol = W_g^T dz is a plain NN product (the
  // transposed-A packing is the GEMM's slow generic path).
  T* wt = din ? scratch<T, 7>(size_t(wsize)) : nullptr;
  if (wt)
    for (index_t g = 0; g < G; ++g)
      for (index_t o = 0; o < Og; ++o)
        for (index_t k = 0; k < K; ++k) wt[g * Og * K + k * Og + o] = w[(g * Og + o) * K + k];
  auto run = [&](index_t c0, index_t c1) {
    T* col = pointwise ? nullptr : scratch<T, 0>(size_t(K) * size_t(N));
    T* dcol = pointwise ? nullptr : scratch<T, 1>(size_t(K) * size_t(N));
    for (index_t c = c0; c < c1; ++c) {
      T* part = dw ? (partials ? partials + c * wsize : dw) : nullptr;
      const index_t n0 = s.B * c / chunks, n1 = s.B * (c + 1) / chunks;
      for (index_t n = n0; n < n1; ++n) {
        for (index_t g = 0; g < G; ++g) {
          const index_t in_off = n * in_plane + g * s.Cg() * s.H * s.W;
          const T* dz = dout + n * out_plane + g * Og * N;
          if (part) {
            const T* src = in + in_off;
            if (!pointwise) {
              im2col(s, in + in_off, col);
              src = col;
            }
            detail::gemm_ex<T>(Trans::N, Trans::T, Og, K, N, T(1), dz, N, src, N, n == n0 ? T(0) : T(1),
                               part + g * Og * K, K, nullptr, gemm_threads);
          }
          if (din) {
            if (pointwise) {
              detail::gemm_ex<T>(Trans::N, Trans::N, K, N, Og, T(1), wt + g * Og * K, Og, dz, N, T(0),
                                 din + in_off, N, nullptr, gemm_threads);
            } else {
              detail::gemm_ex<T>(Trans::N, Trans::N, K, N, Og, T(1), wt + g * Og * K, Og, dz, N, T(0), dcol,
                                 N, nullptr, gemm_threads);
              col2im(s, dcol, din + in_off);
            }
          }
        }
      }
    }
  };
  if (outer) parallel_for(chunks, 1, run);
  else run(0, chunks);
  if (partials) {
    parallel_for(wsize, 4096, [&](index_t i0, index_t i1) {
      for (index_t i = i0; i < i1; ++i) {
        T acc = partials[i];
        for (index_t c = 1; c < chunks; ++c) acc += partials[c * wsize + i];
        dw[i] = acc;
      }
    });
  }
}

// db[c] = sum over the batch and the plane of g (B, Cn, P), each channel summed in a fixed order.
template <typename T>
void channel_sums(index_t B, index_t Cn, index_t P, const T* g, T* db) {
  parallel_for(Cn, std::max<index_t>(1, 16384 / std::max<index_t>(1, B * P)), [&](index_t c0, index_t c1) {
    for (index_t c = c0; c < c1; ++c) {
      T acc = T(0);
      for (index_t n = 0; n < B; ++n) {
        const T* p = g + (n * Cn + c) * P;
        T part = T(0);
        for (index_t i = 0; i < P; ++i) part += p[i];
        acc += part;
      }
      db[c] = acc;
    }
  });
}

void check_shape(const ConvShape& s, const char* op) {
  HEPNN_CHECK_VALUE(s.B >= 0 && s.C >= 0 && s.H >= 0 && s.W >= 0 && s.O >= 0 && s.OH >= 0 && s.OW >= 0,
              op, "negative size");
  HEPNN_CHECK_VALUE(s.KH >= 1 && s.KW >= 1 && s.sh >= 1 && s.sw >= 1 && s.dh >= 1 && s.dw >= 1 &&
                  s.ph >= 0 && s.pw >= 0 && s.groups >= 1,
              op, "kernel, stride and dilation must be >= 1, padding >= 0, groups >= 1");
  HEPNN_CHECK_VALUE(s.C % s.groups == 0 && s.O % s.groups == 0, op, "channels not divisible by groups");
}

}  // namespace

template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, Act act, double alpha,
                    T* y, T* z) {
  check_shape(s, "conv2d_forward");
  forward_core(s, x, w, b, act, alpha, y, z);
}

template <typename T>
void conv2d_maxpool2d_forward(const ConvShape& s, const PoolShape& pool, const T* x, const T* w, const T* b,
                              Act act, double alpha, T* y) {
  check_shape(s, "conv2d_maxpool2d_forward");
  HEPNN_CHECK_VALUE(pool.H == s.OH && pool.W == s.OW && pool.P == s.B * s.O, "conv2d_maxpool2d_forward",
              "pool geometry does not match the convolution output");
  if (pool.OH <= 0 || pool.OW <= 0) return;
  forward_core(s, x, w, b, act, alpha, static_cast<T*>(nullptr), static_cast<T*>(nullptr), &pool, y);
}

template <typename T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* z, const T* y,
                     const T* dy, Act act, double alpha, T* dx, T* dw, T* db) {
  const char* op = "conv2d_backward";
  check_shape(s, op);
  if (!z && act_needs_preactivation(act))
    throw ValueError(op_message(op, "this activation needs the pre-activation z, got none"));
  const index_t total = s.B * s.O * s.N();
  const T* dz = dy;
  if (act != Act::none && total > 0) {
    T* buf = scratch<T, 3>(size_t(total));
    if (act == Act::relu) {
      parallel_for(total, 65536, [&](index_t i0, index_t i1) {
        for (index_t i = i0; i < i1; ++i) {
          const T g = dy[i];
          buf[i] = y[i] > T(0) ? g : T(0);
        }
      });
    } else if (z) {
      act_backward<T>(act, total, z, y, dy, buf, alpha);
    } else {  // sigmoid, tanh: the derivative follows from y
      parallel_for(total, 4096, [&](index_t i0, index_t i1) {
        for (index_t i = i0; i < i1; ++i) buf[i] = dy[i] * act_derivative<T>(act, y[i], y[i], alpha);
      });
    }
    dz = buf;
  }
  if (db) channel_sums(s.B, s.O, s.N(), dz, db);
  backward_core(s, x, dz, w, dw, dx);
}

template <typename T>
void conv_transpose2d_forward(const ConvShape& s, const T* x, const T* w, const T* b, T* y) {
  check_shape(s, "conv_transpose2d_forward");
  backward_core<T>(s, nullptr, x, w, nullptr, y);
  if (b) {
    const index_t P = s.H * s.W;
    parallel_for(s.B * s.C, std::max<index_t>(1, 16384 / std::max<index_t>(1, P)), [&](index_t p0, index_t p1) {
      for (index_t p = p0; p < p1; ++p) {
        const T bv = b[p % s.C];
        T* plane = y + p * P;
        for (index_t i = 0; i < P; ++i) plane[i] += bv;
      }
    });
  }
}

template <typename T>
void conv_transpose2d_backward(const ConvShape& s, const T* x, const T* w, const T* dy, T* dx,
                               T* dw, T* db) {
  check_shape(s, "conv_transpose2d_backward");
  if (db) channel_sums(s.B, s.C, s.H * s.W, dy, db);
  // dW: the conv weight gradient with the roles of input (dy) and output gradient (x) swapped.
  backward_core<T>(s, dy, x, w, dw, nullptr);
  if (dx) forward_core<T>(s, dy, w, nullptr, Act::none, 0.0, dx, nullptr);
}

#define HEPNN_CONV_INSTANTIATE(T)                                                                 \
  template void conv2d_forward<T>(const ConvShape&, const T*, const T*, const T*, Act, double, T*, \
                                  T*);                                                            \
  template void conv2d_maxpool2d_forward<T>(const ConvShape&, const PoolShape&, const T*, const T*,       \
                                            const T*, Act, double, T*);                                   \
  template void conv2d_backward<T>(const ConvShape&, const T*, const T*, const T*, const T*,      \
                                   const T*, Act, double, T*, T*, T*);                            \
  template void conv_transpose2d_forward<T>(const ConvShape&, const T*, const T*, const T*, T*);  \
  template void conv_transpose2d_backward<T>(const ConvShape&, const T*, const T*, const T*, T*,  \
                                             T*, T*);
HEPNN_CONV_INSTANTIATE(float)
HEPNN_CONV_INSTANTIATE(double)
#undef HEPNN_CONV_INSTANTIATE

}  // namespace hepnn::cpu
