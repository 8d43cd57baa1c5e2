// Fused EdgeConv on the CPU. First edge layer factorised: W_0 [x_i, x_j - x_i] =
// (W_a - W_b) x_i + W_b x_j, so one GEMM over the points gives P = x (W_a - W_b)^T + b_0 and
// Q = x W_b^T, and each edge's first pre-activation is P_i + Q_j (no K-fold first-layer GEMM).
// The remaining layers run on tiles of ~kEdgeTile edges (a block of points and all their edges),
// aggregated into y before the next tile, so only one tile of B x N x K x F is ever live.
// Backward recomputes each tile (checkpointing) instead of keeping every edge activation.
// NOTE: why recompute: keeping every layer's edge activations for backward costs
// B N k sum(F) floats (64 x 128 x 16 x 256 x 4 B = 134 MB at the bench shape, twice that where
// the activation needs z); the recompute is one more forward of layers >= 1 per tile (~1/3 more
// backward FLOPs) on data that is already in cache, and memory stays at one tile per thread.
// One variant (mean or max aggregation chosen at run time); float and double.
#include "ops/edgeconv.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "core/threadpool.hpp"
#include "ops/activation.hpp"
#include "ops/gemm.hpp"
#include "ops/gemm_ukernel.hpp"
#include "ops/linear.hpp"
#include "ops/segment.hpp"

namespace hepnn::cpu {
namespace {

// NOTE: a tile of ~256 edges x <=128 features x (h, and z where the activation needs it) for
// every layer is a few hundred KiB, so it stays in L2 while the per-tile GEMMs still get M = 256
// rows. Measured single-threaded on the bench shape (64 x 128, k = 16, 64 -> 128-64-64) on the
// shared 2-core VM: tiles of 256, 512, 1024 and 2048 edges were all within its noise (~20%) in
// forward; 256 was the fastest backward in every run (273-293 ms vs 324-514 ms for the others).
// Memory is bounded by threads x one tile, independent of B and N.
constexpr index_t kEdgeTile = 256;
// Fixed number of event groups for the backward's weight-gradient partial sums: the partials
// are added in group order, so dW does not depend on the thread count.
constexpr index_t kGroups = 16;

template <typename T>
struct Net {
  index_t B, N, C, K, L;
  const index_t* F;  // widths
  const T* const* W;
  const T* const* b;
  Act act;
  double alpha;
  bool need_z;
  bool max_agg;
};

template <typename T>
struct EpiCtx {
  const T* bias;
  Act act;
  double alpha;
  T* z;
  index_t ldz;
};

// Bias, pre-activation copy and activation on a finished GEMM register tile.
template <typename T>
void layer_epilogue(const void* vctx, T* c, index_t ldc, index_t row0, index_t col0, index_t m, index_t n) {
  const auto& e = *static_cast<const EpiCtx<T>*>(vctx);
  for (index_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (e.bias)
      for (index_t j = 0; j < n; ++j) row[j] += e.bias[col0 + j];
    if (e.z) std::memcpy(e.z + (row0 + i) * e.ldz + col0, row, size_t(n) * sizeof(T));
    if (e.act == Act::relu) {
      for (index_t j = 0; j < n; ++j) row[j] = row[j] < T(0) ? T(0) : row[j];
    } else if (e.act != Act::none) {
      act_forward<T>(e.act, n, row, row, e.alpha);
    }
  }
}

// One tile: the edges of points [i0, i1) of event ev, with every layer's h (and z) kept.
template <typename T>
struct Tile {
  std::vector<index_t> src, dst, start;  // src/dst: point rows (b*N + i); start: per point
  std::vector<T> h, z;                    // layer l at offset E_cap * off[l]
  std::vector<index_t> off;
  index_t E = 0, cap = 0;

  void reserve(const Net<T>& n, index_t pts) {
    cap = pts * n.K;
    off.assign(size_t(n.L) + 1, 0);
    for (index_t l = 0; l < n.L; ++l) off[size_t(l) + 1] = off[size_t(l)] + n.F[l];
    src.resize(size_t(cap));
    dst.resize(size_t(cap));
    start.resize(size_t(pts) + 1);
    h.resize(size_t(cap * off[size_t(n.L)]));
    if (n.need_z) z.resize(h.size());
  }
  T* hl(index_t l) { return h.data() + cap * off[size_t(l)]; }
  T* zl(index_t l) { return z.empty() ? nullptr : z.data() + cap * off[size_t(l)]; }
};

template <typename T>
void tile_forward(const Net<T>& n, const index_t* idx, const T* pq, index_t ev, index_t i0, index_t i1,
                  Tile<T>& t) {
  const index_t F0 = n.F[0];
  index_t E = 0;
  for (index_t i = i0; i < i1; ++i) {
    t.start[size_t(i - i0)] = E;
    const index_t r = ev * n.N + i;
    for (index_t s = 0; s < n.K; ++s) {
      const index_t j = idx[r * n.K + s];
      if (j < 0) continue;
      t.src[size_t(E)] = r;
      t.dst[size_t(E)] = ev * n.N + j;
      ++E;
    }
  }
  t.start[size_t(i1 - i0)] = E;
  t.E = E;
  if (E == 0) return;
  T* h0 = t.hl(0);
  T* z0 = t.zl(0);
  for (index_t e = 0; e < E; ++e) {
    const T* P = pq + t.src[size_t(e)] * 2 * F0;
    const T* Q = pq + t.dst[size_t(e)] * 2 * F0 + F0;
    T* row = h0 + e * F0;
    for (index_t f = 0; f < F0; ++f) row[f] = P[f] + Q[f];
    if (z0) std::memcpy(z0 + e * F0, row, size_t(F0) * sizeof(T));
    if (n.act == Act::relu)
      for (index_t f = 0; f < F0; ++f) row[f] = row[f] < T(0) ? T(0) : row[f];
    else if (n.act != Act::none)
      act_forward<T>(n.act, F0, row, row, n.alpha);
  }
  for (index_t l = 1; l < n.L; ++l) {
    const EpiCtx<T> ctx{n.b[l], n.act, n.alpha, t.zl(l), n.F[l]};
    const detail::Epilogue<T> epi{&layer_epilogue<T>, &ctx};
    detail::gemm_ex<T>(Trans::N, Trans::T, E, n.F[l], n.F[l - 1], T(1), t.hl(l - 1), n.F[l - 1], n.W[l],
                       n.F[l - 1], T(0), t.hl(l), n.F[l], &epi, 1);
  }
}

// Edge e of point p holding the first maximum of feature f (for max aggregation).
template <typename T>
index_t first_max(const T* hL, index_t FL, index_t e0, index_t e1, index_t f) {
  index_t best = e0;
  for (index_t e = e0 + 1; e < e1; ++e)
    if (hL[e * FL + f] > hL[best * FL + f]) best = e;
  return best;
}

template <typename T>
void tile_aggregate(const Net<T>& n, Tile<T>& t, index_t ev, index_t i0, index_t i1, T* y) {
  const index_t FL = n.F[n.L - 1];
  const T* hL = t.hl(n.L - 1);
  for (index_t i = i0; i < i1; ++i) {
    T* yr = y + (ev * n.N + i) * FL;
    const index_t e0 = t.start[size_t(i - i0)], e1 = t.start[size_t(i - i0) + 1];
    if (e1 == e0) {
      std::fill(yr, yr + FL, T(0));
      continue;
    }
    if (n.max_agg) {
      for (index_t f = 0; f < FL; ++f) yr[f] = hL[first_max(hL, FL, e0, e1, f) * FL + f];
      continue;
    }
    std::copy(hL + e0 * FL, hL + e0 * FL + FL, yr);
    for (index_t e = e0 + 1; e < e1; ++e)
      for (index_t f = 0; f < FL; ++f) yr[f] += hL[e * FL + f];
    const T inv = T(1) / T(e1 - e0);
    for (index_t f = 0; f < FL; ++f) yr[f] *= inv;
  }
}

// dz = g * act'(z, h) in place over E rows of width F.
template <typename T>
void act_grad_inplace(const Net<T>& n, index_t count, const T* z, const T* h, T* g) {
  if (n.act == Act::none) return;
  if (n.act == Act::relu) {
    for (index_t i = 0; i < count; ++i) g[i] = h[i] > T(0) ? g[i] : T(0);
    return;
  }
  const T* zz = z ? z : h;  // sigmoid/tanh read their derivative from h
  for (index_t i = 0; i < count; ++i) g[i] *= act_derivative<T>(n.act, zz[i], h[i], n.alpha);
}

index_t points_per_tile(index_t N, index_t K) { return std::max<index_t>(1, std::min(N, kEdgeTile / K)); }

// The stacked first-layer weight [W_a - W_b; W_b] (2 F_0 x C).
template <typename T>
std::vector<T> stacked_first_weight(const Net<T>& n) {
  const index_t F0 = n.F[0], C = n.C;
  std::vector<T> w(size_t(2 * F0 * C));
  for (index_t o = 0; o < F0; ++o)
    for (index_t c = 0; c < C; ++c) {
      const T wa = n.W[0][o * 2 * C + c], wb = n.W[0][o * 2 * C + C + c];
      w[size_t(o * C + c)] = wa - wb;
      w[size_t((F0 + o) * C + c)] = wb;
    }
  return w;
}

template <typename T>
void compute_pq(const Net<T>& n, const T* x, const std::vector<T>& wpq, T* pq) {
  const index_t R = n.B * n.N, F0 = n.F[0];
  gemm<T>(Trans::N, Trans::T, R, 2 * F0, n.C, T(1), x, n.C, wpq.data(), n.C, T(0), pq, 2 * F0);
  if (n.b[0])
    for (index_t r = 0; r < R; ++r)
      for (index_t f = 0; f < F0; ++f) pq[r * 2 * F0 + f] += n.b[0][f];
}

template <typename T>
Net<T> make_net(const char* op, index_t B, index_t N, index_t C, index_t K, index_t L, const index_t* widths,
                const index_t* idx, const T* const* W, const T* const* b, Act act, double alpha, bool max_agg) {
  check_value(B >= 0 && N >= 0 && C >= 1 && K >= 1 && L >= 1, op, "needs B, N >= 0 and C, K, L >= 1");
  for (index_t l = 0; l < L; ++l) check_value(widths[l] >= 1, op, "layer widths must be >= 1");
  check_index_range(op, "idx", B * N * K, idx, N, true);
  return Net<T>{B, N, C, K, L, widths, W, b, act, alpha, act_needs_preactivation(act), max_agg};
}

}  // namespace

template <typename T>
void edgeconv_forward(index_t B, index_t N, index_t C, index_t K, index_t L, const index_t* widths,
                      const T* x, const index_t* idx, const T* const* W, const T* const* b, Act act,
                      double alpha, bool max_agg, T* y, T* pq) {
  const Net<T> n = make_net("edgeconv_forward", B, N, C, K, L, widths, idx, W, b, act, alpha, max_agg);
  if (B * N == 0) return;
  std::vector<T> own_pq;
  if (!pq) {
    own_pq.resize(size_t(B * N * 2 * widths[0]));
    pq = own_pq.data();
  }
  compute_pq(n, x, stacked_first_weight(n), pq);
  const index_t pts = points_per_tile(N, K), tiles = (N + pts - 1) / pts;
  const T* pqc = pq;
  parallel_for(B * tiles, 1, [&](index_t t0, index_t t1) {
    Tile<T> tile;
    tile.reserve(n, pts);
    for (index_t t = t0; t < t1; ++t) {
      const index_t ev = t / tiles, i0 = (t % tiles) * pts, i1 = std::min(N, i0 + pts);
      tile_forward(n, idx, pqc, ev, i0, i1, tile);
      tile_aggregate(n, tile, ev, i0, i1, y);
    }
  });
}

template <typename T>
void edgeconv_backward(index_t B, index_t N, index_t C, index_t K, index_t L, const index_t* widths,
                       const T* x, const index_t* idx, const T* const* W, const T* const* b, Act act,
                       double alpha, bool max_agg, const T* pq, const T* dy, T* dx, T* const* dW,
                       T* const* db) {
  const Net<T> n = make_net("edgeconv_backward", B, N, C, K, L, widths, idx, W, b, act, alpha, max_agg);
  const index_t F0 = widths[0], FL = widths[L - 1], R = B * N;
  const std::vector<T> wpq = stacked_first_weight(n);
  std::vector<T> own_pq;
  if (!pq && R > 0) {
    own_pq.resize(size_t(R * 2 * F0));
    compute_pq(n, x, wpq, own_pq.data());
    pq = own_pq.data();
  }
  // Per-group partial sums of dW_l and db_l for l >= 1 (layer 0 goes through dpq below).
  std::vector<index_t> acc_off(size_t(L) + 1, 0);
  for (index_t l = 1; l < L; ++l) acc_off[size_t(l) + 1] = acc_off[size_t(l)] + widths[l] * (widths[l - 1] + 1);
  const index_t acc_size = acc_off[size_t(L)];
  const index_t groups = std::max<index_t>(1, std::min(B, kGroups));
  std::vector<T> acc(size_t(groups * acc_size), T(0));
  std::vector<T> dpq(size_t(R * 2 * F0), T(0));
  const index_t pts = points_per_tile(N, K), tiles = N > 0 ? (N + pts - 1) / pts : 0;
  index_t Fmax = 0;
  for (index_t l = 0; l < L; ++l) Fmax = std::max(Fmax, widths[l]);
  parallel_for(groups, 1, [&](index_t g0, index_t g1) {
    Tile<T> tile;
    tile.reserve(n, pts);
    std::vector<T> ga(size_t(tile.cap * Fmax)), gb(size_t(tile.cap * Fmax));
    for (index_t g = g0; g < g1; ++g) {
      T* accg = acc.data() + g * acc_size;
      const index_t ev0 = g * B / groups, ev1 = (g + 1) * B / groups;
      for (index_t ev = ev0; ev < ev1; ++ev)
        for (index_t t = 0; t < tiles; ++t) {
          const index_t i0 = t * pts, i1 = std::min(N, i0 + pts);
          tile_forward(n, idx, pq, ev, i0, i1, tile);
          const index_t E = tile.E;
          if (E == 0) continue;
          // Upstream gradient of every edge's last-layer output.
          T* g_cur = ga.data();
          T* g_nxt = gb.data();
          const T* hL = tile.hl(L - 1);
          for (index_t i = i0; i < i1; ++i) {
            const index_t e0 = tile.start[size_t(i - i0)], e1 = tile.start[size_t(i - i0) + 1];
            const T* dyr = dy + (ev * N + i) * FL;
            if (max_agg) {
              std::fill(g_cur + e0 * FL, g_cur + e1 * FL, T(0));
              for (index_t f = 0; f < FL; ++f) g_cur[first_max(hL, FL, e0, e1, f) * FL + f] = dyr[f];
            } else if (e1 > e0) {
              const T inv = T(1) / T(e1 - e0);
              for (index_t e = e0; e < e1; ++e)
                for (index_t f = 0; f < FL; ++f) g_cur[e * FL + f] = dyr[f] * inv;
            }
          }
          for (index_t l = L - 1; l >= 1; --l) {
            const index_t Fo = widths[l], Fi = widths[l - 1];
            act_grad_inplace(n, E * Fo, tile.zl(l), tile.hl(l), g_cur);
            T* dWl = accg + acc_off[size_t(l)];
            T* dbl = dWl + Fo * Fi;
            detail::gemm_ex<T>(Trans::T, Trans::N, Fo, Fi, E, T(1), g_cur, Fo, tile.hl(l - 1), Fi, T(1), dWl,
                               Fi, nullptr, 1);
            for (index_t e = 0; e < E; ++e)
              for (index_t f = 0; f < Fo; ++f) dbl[f] += g_cur[e * Fo + f];
            detail::gemm_ex<T>(Trans::N, Trans::N, E, Fi, Fo, T(1), g_cur, Fo, W[l], Fi, T(0), g_nxt, Fi,
                               nullptr, 1);
            std::swap(g_cur, g_nxt);
          }
          act_grad_inplace(n, E * F0, tile.zl(0), tile.hl(0), g_cur);
          // NOTE: the edges of one event only touch that event's rows of dpq, and a group walks
          // its events and tiles in order, so these sums need no atomics and are deterministic.
          for (index_t e = 0; e < E; ++e) {
            T* dP = dpq.data() + tile.src[size_t(e)] * 2 * F0;
            T* dQ = dpq.data() + tile.dst[size_t(e)] * 2 * F0 + F0;
            const T* gr = g_cur + e * F0;
            for (index_t f = 0; f < F0; ++f) {
              dP[f] += gr[f];
              dQ[f] += gr[f];
            }
          }
        }
    }
  });
  for (index_t l = 1; l < L; ++l) {
    const index_t Fo = widths[l], Fi = widths[l - 1];
    if (dW[l]) std::fill(dW[l], dW[l] + Fo * Fi, T(0));
    if (db[l]) std::fill(db[l], db[l] + Fo, T(0));
    for (index_t g = 0; g < groups; ++g) {
      const T* a = acc.data() + g * acc_size + acc_off[size_t(l)];
      if (dW[l])
        for (index_t i = 0; i < Fo * Fi; ++i) dW[l][i] += a[i];
      if (db[l])
        for (index_t f = 0; f < Fo; ++f) db[l][f] += a[Fo * Fi + f];
    }
  }
  // Layer 0 from dpq: dP = d(pre-activation) at x_i, dQ at x_j.
  if (db[0]) {
    std::fill(db[0], db[0] + F0, T(0));
    for (index_t r = 0; r < R; ++r)
      for (index_t f = 0; f < F0; ++f) db[0][f] += dpq[size_t(r * 2 * F0 + f)];
  }
  if (dW[0]) {
    std::vector<T> dwpq(size_t(2 * F0 * C), T(0));
    if (R > 0)
      gemm<T>(Trans::T, Trans::N, 2 * F0, C, R, T(1), dpq.data(), 2 * F0, x, C, T(0), dwpq.data(), C);
    // P = x (W_a - W_b)^T, Q = x W_b^T  =>  dW_a = dP^T x, dW_b = dQ^T x - dP^T x.
    for (index_t o = 0; o < F0; ++o)
      for (index_t c = 0; c < C; ++c) {
        const T dp = dwpq[size_t(o * C + c)], dq = dwpq[size_t((F0 + o) * C + c)];
        dW[0][o * 2 * C + c] = dp;
        dW[0][o * 2 * C + C + c] = dq - dp;
      }
  }
  if (dx && R > 0) gemm<T>(Trans::N, Trans::N, R, C, 2 * F0, T(1), dpq.data(), 2 * F0, wpq.data(), C, T(0), dx, C);
}

#define HEPNN_EDGECONV_INSTANTIATE(T)                                                              \
  template void edgeconv_forward<T>(index_t, index_t, index_t, index_t, index_t, const index_t*,   \
                                    const T*, const index_t*, const T* const*, const T* const*,    \
                                    Act, double, bool, T*, T*);                                    \
  template void edgeconv_backward<T>(index_t, index_t, index_t, index_t, index_t, const index_t*,  \
                                     const T*, const index_t*, const T* const*, const T* const*,   \
                                     Act, double, bool, const T*, const T*, T*, T* const*,         \
                                     T* const*);
HEPNN_EDGECONV_INSTANTIATE(float)
HEPNN_EDGECONV_INSTANTIATE(double)
#undef HEPNN_EDGECONV_INSTANTIATE

}  // namespace hepnn::cpu
