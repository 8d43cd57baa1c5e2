// CUDA fused EdgeConv, forward and backward, float and double; the CPU kernel's algorithm on the
// GPU. The first layer is factorised (two per-point GEMMs P = x (W_a - W_b)^T + b_0, Q = x W_b^T;
// each edge adds P_i + Q_j), the remaining layers run as GEMMs over chunks of ~kChunkEdges edge
// slots (whole events; -1 slots carry zeros and are skipped by the aggregation), so memory is one
// chunk of activations, and backward recomputes each chunk instead of storing every edge.
// dQ (the neighbour side) is a deterministic scatter-sum through segment.cu's CSR, not atomics.
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "cuda/act_math.cuh"
#include "cuda/device.hpp"
#include "cuda/edgeconv.hpp"
#include "cuda/gemm.hpp"
#include "cuda/launch.cuh"
#include "cuda/reduce.hpp"
#include "cuda/segment.hpp"

namespace hepnn::cuda {
namespace {

constexpr index_t kChunkEdges = index_t(1) << 16;

#define HEPNN_GRID_LOOP(t, n) \
  for (index_t t = blockIdx.x * index_t(blockDim.x) + threadIdx.x; t < (n); t += index_t(gridDim.x) * blockDim.x)

template <typename T>
__global__ void stack_weight_kernel(index_t F0, index_t C, const T* W0, T* wp, T* wq) {
  HEPNN_GRID_LOOP(t, F0 * C) {
    const index_t o = t / C, c = t % C;
    const T wa = W0[o * 2 * C + c], wb = W0[o * 2 * C + C + c];
    wp[t] = wa - wb;
    wq[t] = wb;
  }
}

template <typename T>
__global__ void add_bias_kernel(index_t R, index_t F, index_t ld, const T* b, T* y) {
  HEPNN_GRID_LOOP(t, R * F) { y[(t / F) * ld + t % F] += b[t % F]; }
}

// Slot e of the chunk: point p = e / K (chunk-local), neighbour slot s = e % K.
template <typename T>
__global__ void first_layer_kernel(index_t ev0, index_t E, index_t N, index_t K, index_t F0, const index_t* idx,
                                   const T* pq, Act act, T alpha, T* z, T* h) {
  HEPNN_GRID_LOOP(t, E * F0) {
    const index_t e = t / F0, f = t % F0, p = e / K;
    const index_t r = ev0 * N + p;
    const index_t j = idx[r * K + e % K];
    T v = T(0), a = T(0);
    if (j >= 0 && j < N) {
      const index_t q = (r / N) * N + j;
      v = pq[r * 2 * F0 + f] + pq[q * 2 * F0 + F0 + f];
      a = act_apply(act, v, alpha);
    }
    if (z) z[t] = v;
    h[t] = a;
  }
}

template <typename T>
__global__ void bias_act_kernel(index_t E, index_t F, const T* b, Act act, T alpha, T* z, T* h) {
  HEPNN_GRID_LOOP(t, E * F) {
    const T v = b ? h[t] + b[t % F] : h[t];
    if (z) z[t] = v;
    h[t] = act_apply(act, v, alpha);
  }
}

// One thread per (chunk point, feature).
template <typename T>
__global__ void aggregate_kernel(index_t ev0, index_t P, index_t N, index_t K, index_t F, const index_t* idx,
                                 const T* hL, bool max_agg, T* y) {
  HEPNN_GRID_LOOP(t, P * F) {
    const index_t p = t / F, f = t % F, r = ev0 * N + p;
    index_t cnt = 0;
    T acc = T(0);
    for (index_t s = 0; s < K; ++s) {
      const index_t j = idx[r * K + s];
      if (j < 0 || j >= N) continue;
      const T v = hL[(p * K + s) * F + f];
      acc = (max_agg && cnt > 0) ? (v > acc ? v : acc) : (max_agg ? v : acc + v);
      ++cnt;
    }
    y[r * F + f] = cnt == 0 ? T(0) : (max_agg ? acc : acc / T(cnt));
  }
}

// Upstream gradient of every slot's last-layer output (0 for -1 slots and non-maximal edges).
template <typename T>
__global__ void dlast_kernel(index_t ev0, index_t P, index_t N, index_t K, index_t F, const index_t* idx, const T* hL,
                             bool max_agg, const T* dy, T* g) {
  HEPNN_GRID_LOOP(t, P * F) {
    const index_t p = t / F, f = t % F, r = ev0 * N + p;
    index_t cnt = 0, best = -1;
    for (index_t s = 0; s < K; ++s) {
      const index_t j = idx[r * K + s];
      if (j < 0 || j >= N) continue;
      if (best < 0 || hL[(p * K + s) * F + f] > hL[(p * K + best) * F + f]) best = s;
      ++cnt;
    }
    const T d = dy[r * F + f];
    for (index_t s = 0; s < K; ++s) {
      const index_t j = idx[r * K + s];
      const bool valid = j >= 0 && j < N;
      T v = T(0);
      if (valid) v = max_agg ? (s == best ? d : T(0)) : d / T(cnt);
      g[(p * K + s) * F + f] = v;
    }
  }
}

template <typename T>
__global__ void act_grad_kernel(index_t n, const T* z, const T* h, Act act, T alpha, T* g) {
  HEPNN_GRID_LOOP(t, n) { g[t] = act_grad(act, z ? z[t] : h[t], h[t], g[t], alpha); }
}

template <typename T>
__global__ void add_kernel(index_t n, const T* a, T* y) {
  HEPNN_GRID_LOOP(t, n) { y[t] += a[t]; }
}

template <typename T>
__global__ void dp_kernel(index_t ev0, index_t P, index_t N, index_t K, index_t F0, const T* g0, T* dP) {
  HEPNN_GRID_LOOP(t, P * F0) {
    const index_t p = t / F0, f = t % F0;
    T acc = T(0);
    for (index_t s = 0; s < K; ++s) acc += g0[(p * K + s) * F0 + f];
    dP[(ev0 * N + p) * F0 + f] = acc;
  }
}

// Chunk-local receiver row of every slot's neighbour (the scatter index for dQ), -1 for none.
__global__ void target_kernel(index_t ev0, index_t E, index_t N, index_t K, const index_t* idx, index_t* tgt) {
  HEPNN_GRID_LOOP(e, E) {
    const index_t p = e / K, j = idx[(ev0 * N + p) * K + e % K];
    tgt[e] = (j >= 0 && j < N) ? (p / N) * N + j : -1;
  }
}

template <typename T>
__global__ void assemble_dw0_kernel(index_t F0, index_t C, const T* dwp, const T* dwq, T* dW0) {
  HEPNN_GRID_LOOP(t, F0 * C) {
    const index_t o = t / C, c = t % C;
    dW0[o * 2 * C + c] = dwp[t];
    dW0[o * 2 * C + C + c] = dwq[t] - dwp[t];
  }
}

#undef HEPNN_GRID_LOOP

template <typename T>
struct Setup {
  index_t B, N, C, K, L, F0, FL, R, nev, cap;
  bool need_z;
  std::vector<index_t> F;
};

template <typename T>
Setup<T> make_setup(const char* op, index_t B, index_t N, index_t C, index_t K, index_t L, const index_t* widths,
                    Act act) {
  check_value(B >= 0 && N >= 0 && C >= 1 && K >= 1 && L >= 1, op, "needs B, N >= 0 and C, K, L >= 1");
  Setup<T> s{B, N, C, K, L, widths[0], widths[L - 1], B * N, 1, 0, act_reads_input(act), {}};
  s.F.assign(widths, widths + L);
  for (index_t f : s.F) check_value(f >= 1, op, "layer widths must be >= 1");
  s.nev = std::max<index_t>(1, kChunkEdges / std::max<index_t>(1, N * K));
  s.nev = std::min(s.nev, std::max<index_t>(1, B));
  s.cap = s.nev * N * K;
  return s;
}

// The per-point products into pq (R x 2 F0: P then Q per row), from scratch stacked weights.
template <typename T>
void compute_pq(const Setup<T>& s, const T* x, const T* wp, const T* wq, const T* b0, T* pq, cudaStream_t st) {
  gemm<T>(Trans::N, Trans::T, s.R, s.F0, s.C, T(1), x, s.C, wp, s.C, T(0), pq, 2 * s.F0, st);
  gemm<T>(Trans::N, Trans::T, s.R, s.F0, s.C, T(1), x, s.C, wq, s.C, T(0), pq + s.F0, 2 * s.F0, st);
  if (b0) add_bias_kernel<T><<<grid_for(s.R * s.F0), kBlock, 0, st>>>(s.R, s.F0, 2 * s.F0, b0, pq);
}

// Every layer's h (and z) of the chunk starting at event ev0 with nev events.
template <typename T>
void chunk_forward(const Setup<T>& s, index_t ev0, index_t E, const index_t* idx, const T* pq, const T* const* W,
                   const T* const* b, Act act, T alpha, std::vector<T*>& h, std::vector<T*>& z, cudaStream_t st) {
  first_layer_kernel<T><<<grid_for(E * s.F0), kBlock, 0, st>>>(ev0, E, s.N, s.K, s.F0, idx, pq, act, alpha, z[0], h[0]);
  for (index_t l = 1; l < s.L; ++l) {
    gemm<T>(Trans::N, Trans::T, E, s.F[l], s.F[l - 1], T(1), h[l - 1], s.F[l - 1], W[l], s.F[l - 1], T(0), h[l],
            s.F[l], st);
    bias_act_kernel<T><<<grid_for(E * s.F[l]), kBlock, 0, st>>>(E, s.F[l], b[l], act, alpha, z[l], h[l]);
  }
}

template <typename T>
struct ChunkBuffers {
  std::vector<std::unique_ptr<Scratch<T>>> hs, zs;
  std::vector<T*> h, z;
  ChunkBuffers(const Setup<T>& s, cudaStream_t st, const char* op) {
    for (index_t l = 0; l < s.L; ++l) {
      hs.emplace_back(new Scratch<T>(size_t(s.cap * s.F[l]), st, op));
      h.push_back(hs.back()->get());
      if (s.need_z) {
        zs.emplace_back(new Scratch<T>(size_t(s.cap * s.F[l]), st, op));
        z.push_back(zs.back()->get());
      } else {
        z.push_back(nullptr);
      }
    }
  }
};

// db[f] += sum_e g[e, f] (g is E x F, contiguous). The reduction kernels' deterministic column
// sum spreads the E rows over many blocks; one thread per feature walking 65536 edge rows was the
// slowest step of the whole backward on an H200.
template <typename T>
void add_column_sums(index_t E, index_t F, const T* g, T* db, Stream stream, const char* op) {
  const cudaStream_t st = as_cuda(stream);
  Scratch<T> sums(size_t(F), st, op);
  reduce_forward<T>(ReduceOp::sum, 1, E, F, g, sums.get(), nullptr, stream);
  add_kernel<T><<<grid_for(F), kBlock, 0, st>>>(F, sums.get(), db);
}

}  // namespace

template <typename T>
void edgeconv_forward(index_t B, index_t N, index_t C, index_t K, index_t L, const index_t* widths, const T* x,
                      const index_t* idx, const T* const* W, const T* const* b, Act act, double alpha, bool max_agg,
                      T* y, T* pq, Stream stream) {
  const char* op = "edgeconv_forward";
  const Setup<T> s = make_setup<T>(op, B, N, C, K, L, widths, act);
  if (s.R == 0) return;
  const cudaStream_t st = as_cuda(stream);
  Scratch<T> wp(size_t(s.F0 * C), st, op), wq(size_t(s.F0 * C), st, op);
  stack_weight_kernel<T><<<grid_for(s.F0 * C), kBlock, 0, st>>>(s.F0, C, W[0], wp.get(), wq.get());
  Scratch<T> own(pq ? 0 : size_t(s.R * 2 * s.F0), st, op);
  if (!pq) pq = own.get();
  compute_pq(s, x, wp.get(), wq.get(), b[0], pq, st);
  ChunkBuffers<T> buf(s, st, op);
  for (index_t ev0 = 0; ev0 < B; ev0 += s.nev) {
    const index_t nev = std::min(s.nev, B - ev0), E = nev * N * K;
    chunk_forward(s, ev0, E, idx, pq, W, b, act, T(alpha), buf.h, buf.z, st);
    aggregate_kernel<T><<<grid_for(nev * N * s.FL), kBlock, 0, st>>>(ev0, nev * N, N, K, s.FL, idx, buf.h[L - 1],
                                                                      max_agg, y);
  }
  check_launch(op);
}

template <typename T>
void edgeconv_backward(index_t B, index_t N, index_t C, index_t K, index_t L, const index_t* widths, const T* x,
                       const index_t* idx, const T* const* W, const T* const* b, Act act, double alpha, bool max_agg,
                       const T* pq, const T* dy, T* dx, T* const* dW, T* const* db, Stream stream) {
  const char* op = "edgeconv_backward";
  const Setup<T> s = make_setup<T>(op, B, N, C, K, L, widths, act);
  const cudaStream_t st = as_cuda(stream);
  const index_t F0 = s.F0, R = s.R;
  Scratch<T> wp(size_t(F0 * C), st, op), wq(size_t(F0 * C), st, op);
  stack_weight_kernel<T><<<grid_for(F0 * C), kBlock, 0, st>>>(F0, C, W[0], wp.get(), wq.get());
  Scratch<T> own(pq || R == 0 ? 0 : size_t(R * 2 * F0), st, op);
  if (!pq && R > 0) {
    compute_pq(s, x, wp.get(), wq.get(), b[0], own.get(), st);
    pq = own.get();
  }
  // Weight-gradient accumulators for layers >= 1 (the caller's, or scratch where it passed null).
  std::vector<std::unique_ptr<Scratch<T>>> spare;
  std::vector<T*> dWl(size_t(L), nullptr);
  for (index_t l = 1; l < L; ++l) {
    dWl[size_t(l)] = dW[l];
    if (!dWl[size_t(l)]) {
      spare.emplace_back(new Scratch<T>(size_t(s.F[l] * s.F[l - 1]), st, op));
      dWl[size_t(l)] = spare.back()->get();
    }
    cudaMemsetAsync(dWl[size_t(l)], 0, size_t(s.F[l] * s.F[l - 1]) * sizeof(T), st);
    if (db[l]) cudaMemsetAsync(db[l], 0, size_t(s.F[l]) * sizeof(T), st);
  }
  Scratch<T> dP(size_t(R * F0), st, op), dQ(size_t(R * F0), st, op);
  if (R > 0) {
    index_t Fmax = 0;
    for (index_t f : s.F) Fmax = std::max(Fmax, f);
    ChunkBuffers<T> buf(s, st, op);
    Scratch<T> ga(size_t(s.cap * Fmax), st, op), gb(size_t(s.cap * Fmax), st, op);
    Scratch<index_t> tgt(size_t(s.cap), st, op);
    for (index_t ev0 = 0; ev0 < B; ev0 += s.nev) {
      const index_t nev = std::min(s.nev, B - ev0), P = nev * N, E = P * K;
      chunk_forward(s, ev0, E, idx, pq, W, b, act, T(alpha), buf.h, buf.z, st);
      T* g = ga.get();
      T* g2 = gb.get();
      dlast_kernel<T><<<grid_for(P * s.FL), kBlock, 0, st>>>(ev0, P, N, K, s.FL, idx, buf.h[L - 1], max_agg, dy, g);
      for (index_t l = L - 1; l >= 1; --l) {
        const index_t Fo = s.F[l], Fi = s.F[l - 1];
        act_grad_kernel<T><<<grid_for(E * Fo), kBlock, 0, st>>>(E * Fo, buf.z[l], buf.h[l], act, T(alpha), g);
        gemm<T>(Trans::T, Trans::N, Fo, Fi, E, T(1), g, Fo, buf.h[l - 1], Fi, T(1), dWl[size_t(l)], Fi, st);
        if (db[l]) add_column_sums<T>(E, Fo, g, db[l], stream, op);
        gemm<T>(Trans::N, Trans::N, E, Fi, Fo, T(1), g, Fo, W[l], Fi, T(0), g2, Fi, st);
        std::swap(g, g2);
      }
      act_grad_kernel<T><<<grid_for(E * F0), kBlock, 0, st>>>(E * F0, buf.z[0], buf.h[0], act, T(alpha), g);
      dp_kernel<T><<<grid_for(P * F0), kBlock, 0, st>>>(ev0, P, N, K, F0, g, dP.get());
      target_kernel<<<grid_for(E), kBlock, 0, st>>>(ev0, E, N, K, idx, tgt.get());
      scatter_reduce_forward<T>(E, F0, P, g, tgt.get(), SegReduce::sum, dQ.get() + ev0 * N * F0, nullptr, stream);
    }
  }
  if (db[0]) {
    cudaMemsetAsync(db[0], 0, size_t(F0) * sizeof(T), st);
    if (R > 0) add_column_sums<T>(R, F0, dP.get(), db[0], stream, op);
  }
  if (dW[0]) {
    Scratch<T> dwp(size_t(F0 * C), st, op), dwq(size_t(F0 * C), st, op);
    if (R > 0) {
      gemm<T>(Trans::T, Trans::N, F0, C, R, T(1), dP.get(), F0, x, C, T(0), dwp.get(), C, st);
      gemm<T>(Trans::T, Trans::N, F0, C, R, T(1), dQ.get(), F0, x, C, T(0), dwq.get(), C, st);
    } else {
      cudaMemsetAsync(dwp.get(), 0, size_t(F0 * C) * sizeof(T), st);
      cudaMemsetAsync(dwq.get(), 0, size_t(F0 * C) * sizeof(T), st);
    }
    assemble_dw0_kernel<T><<<grid_for(F0 * C), kBlock, 0, st>>>(F0, C, dwp.get(), dwq.get(), dW[0]);
  }
  if (dx && R > 0) {
    gemm<T>(Trans::N, Trans::N, R, C, F0, T(1), dP.get(), F0, wp.get(), C, T(0), dx, C, st);
    gemm<T>(Trans::N, Trans::N, R, C, F0, T(1), dQ.get(), F0, wq.get(), C, T(1), dx, C, st);
  }
  check_launch(op);
}

#define HEPNN_EDGECONV_INSTANTIATE(T)                                                                   \
  template void edgeconv_forward<T>(index_t, index_t, index_t, index_t, index_t, const index_t*, const T*, \
                                    const index_t*, const T* const*, const T* const*, Act, double, bool, T*, \
                                    T*, Stream);                                                        \
  template void edgeconv_backward<T>(index_t, index_t, index_t, index_t, index_t, const index_t*, const T*, \
                                     const index_t*, const T* const*, const T* const*, Act, double, bool,  \
                                     const T*, const T*, T*, T* const*, T* const*, Stream);
HEPNN_EDGECONV_INSTANTIATE(float)
HEPNN_EDGECONV_INSTANTIATE(double)
#undef HEPNN_EDGECONV_INSTANTIATE

}  // namespace hepnn::cuda
