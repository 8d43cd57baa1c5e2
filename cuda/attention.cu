// CUDA fused attention (flash style, no Lq x Lk matrix in memory), forward and backward.
// Forward: one warp per query row; keys in chunks of 32 (one per lane) with an online softmax;
// the output row lives in registers, head dims lane, lane + 32, ... (D <= 256).
// Head dims 16 and 32 (HEP transformers' usual) take the thread-per-row kernels of
// attention_rows.cuh instead. Backward, without atomics: (1) delta = dout . out per row; (2) one warp per key for dk, dv
// (queries in chunks of 32); (3) one warp per query row for dq and dbias (all heads in order when
// the bias is shared by the heads, so its sum has a fixed order). Probabilities are recomputed
// from the saved log-sum-exp.
#include <cuda_runtime.h>

#include <string>

#include "cuda/attention.hpp"
#include "cuda/device.hpp"
#include "cuda/dmath.cuh"
#include "cuda/launch.cuh"
#include "cuda/reduce_util.cuh"

namespace hepnn::cuda {
namespace {

constexpr int kWarps = 4;      // warps per block
constexpr int kPerLane = 8;    // head dims per lane: D <= 32 * kPerLane
constexpr index_t kMaxD = 32 * kPerLane;

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const T u = __shfl_xor_sync(kFullMask, v, o);
    v = u > v ? u : v;
  }
  return v;
}

// a . b over D with a in shared memory.
template <typename T>
__device__ __forceinline__ T dot(const T* a, const T* __restrict__ b, index_t D) {
  T s = T(0);
  for (index_t d = 0; d < D; ++d) s += a[d] * b[d];
  return s;
}

// A row of D values copied to this warp's shared slot.
template <typename T>
__device__ __forceinline__ void load_row(T* dst, const T* __restrict__ src, index_t D, int lane) {
  for (index_t d = lane; d < D; d += 32) dst[d] = src[d];
  __syncwarp();
}

struct Shape {
  index_t B, H, Lq, Lk, D, bias_heads;
};

__device__ __forceinline__ index_t bias_off(const Shape& s, index_t b, index_t h, index_t i) {
  return ((b * s.bias_heads + (s.bias_heads == 1 ? 0 : h)) * s.Lq + i) * s.Lk;
}

template <typename T>
__global__ void fwd_rows(Shape sh, const T* __restrict__ q, const T* __restrict__ k,
                         const T* __restrict__ v, const std::uint8_t* __restrict__ km,
                         const T* __restrict__ bias, T scale, T* __restrict__ out,
                         T* __restrict__ lse) {
  extern __shared__ unsigned char smem_raw[];
  T* qs = reinterpret_cast<T*>(smem_raw) + (threadIdx.x >> 5) * sh.D;
  const int lane = threadIdx.x & 31;
  const index_t rows = sh.B * sh.H * sh.Lq, D = sh.D, Lk = sh.Lk;
  const T ninf = dm::neg_inf<T>();
  for (index_t r = index_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < rows;
       r += index_t(gridDim.x) * kWarps) {
    const index_t bh = r / sh.Lq, i = r % sh.Lq, b = bh / sh.H, h = bh % sh.H;
    __syncwarp();
    load_row(qs, q + r * D, D, lane);
    const T* kb = k + bh * Lk * D;
    const T* vb = v + bh * Lk * D;
    const T* brow = bias ? bias + bias_off(sh, b, h, i) : nullptr;
    T acc[kPerLane];
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) acc[t] = T(0);
    T m = ninf, l = T(0);
    for (index_t j0 = 0; j0 < Lk; j0 += 32) {
      const index_t j = j0 + lane;
      const bool real = j < Lk && (!km || km[b * Lk + j]);
      T s = ninf;
      if (real) s = scale * dot(qs, kb + j * D, D) + (brow ? brow[j] : T(0));
      const T mnew = warp_max(s > m ? s : m);
      if (mnew == ninf) continue;  // nothing but masked keys so far (warp-uniform)
      // NOTE: online softmax: earlier chunks are rescaled by exp(m_old - m_new).
      const T p = s == ninf ? T(0) : dm::exp(s - mnew);
      const T corr = dm::exp(m - mnew);
      l = l * corr + warp_sum(p);
#pragma unroll
      for (int t = 0; t < kPerLane; ++t) acc[t] *= corr;
      const index_t nj = Lk - j0 < 32 ? Lk - j0 : 32;
      for (index_t jj = 0; jj < nj; ++jj) {
        const T pj = __shfl_sync(kFullMask, p, int(jj));
        if (pj == T(0)) continue;
        const T* vr = vb + (j0 + jj) * D;
#pragma unroll
        for (int t = 0; t < kPerLane; ++t) {
          const index_t d = lane + 32 * t;
          if (d < D) acc[t] += pj * vr[d];
        }
      }
      m = mnew;
    }
    const T inv = l > T(0) ? T(1) / l : T(0);
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const index_t d = lane + 32 * t;
      if (d < D) out[r * D + d] = acc[t] * inv;
    }
    if (lane == 0) lse[r] = l > T(0) ? m + dm::log(l) : ninf;
  }
}

template <typename T>
__global__ void bwd_delta(index_t rows, index_t D, const T* __restrict__ out,
                          const T* __restrict__ dout, T* __restrict__ delta) {
  const int lane = threadIdx.x & 31;
  for (index_t r = index_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < rows;
       r += index_t(gridDim.x) * kWarps) {
    T s = T(0);
    for (index_t d = lane; d < D; d += 32) s += out[r * D + d] * dout[r * D + d];
    s = warp_sum(s);
    if (lane == 0) delta[r] = s;
  }
}

// One warp per key (b, h, j): dk_j = scale sum_i ds_ij q_i, dv_j = sum_i p_ij dout_i.
template <typename T>
__global__ void bwd_keys(Shape sh, const T* __restrict__ q, const T* __restrict__ k,
                         const T* __restrict__ v, const std::uint8_t* __restrict__ km,
                         const T* __restrict__ bias, T scale, const T* __restrict__ lse,
                         const T* __restrict__ dout, const T* __restrict__ delta,
                         T* __restrict__ dk, T* __restrict__ dv) {
  extern __shared__ unsigned char smem_raw[];
  T* ks = reinterpret_cast<T*>(smem_raw) + (threadIdx.x >> 5) * 2 * sh.D;
  T* vs = ks + sh.D;
  const int lane = threadIdx.x & 31;
  const index_t keys = sh.B * sh.H * sh.Lk, D = sh.D, Lq = sh.Lq, Lk = sh.Lk;
  const T ninf = dm::neg_inf<T>();
  for (index_t r = index_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < keys;
       r += index_t(gridDim.x) * kWarps) {
    const index_t bh = r / Lk, j = r % Lk, b = bh / sh.H, h = bh % sh.H;
    T gk[kPerLane], gv[kPerLane];
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) gk[t] = gv[t] = T(0);
    if (!km || km[b * Lk + j]) {
      __syncwarp();
      load_row(ks, k + r * D, D, lane);
      load_row(vs, v + r * D, D, lane);
      const T* qb = q + bh * Lq * D;
      const T* gb = dout + bh * Lq * D;
      for (index_t i0 = 0; i0 < Lq; i0 += 32) {
        const index_t i = i0 + lane;
        T p = T(0), ds = T(0);
        if (i < Lq && lse[bh * Lq + i] != ninf) {
          const T s = scale * dot(ks, qb + i * D, D) + (bias ? bias[bias_off(sh, b, h, i) + j] : T(0));
          const T e = s - lse[bh * Lq + i];
          p = dm::exp(e < T(0) ? e : T(0));
          ds = p * (dot(vs, gb + i * D, D) - delta[bh * Lq + i]);
        }
        const index_t ni = Lq - i0 < 32 ? Lq - i0 : 32;
        for (index_t ii = 0; ii < ni; ++ii) {
          const T pi = __shfl_sync(kFullMask, p, int(ii));
          const T dsi = __shfl_sync(kFullMask, ds, int(ii)) * scale;
          const T* qi = qb + (i0 + ii) * D;
          const T* gi = gb + (i0 + ii) * D;
#pragma unroll
          for (int t = 0; t < kPerLane; ++t) {
            const index_t d = lane + 32 * t;
            if (d < D) {
              gk[t] += dsi * qi[d];
              gv[t] += pi * gi[d];
            }
          }
        }
      }
    }
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const index_t d = lane + 32 * t;
      if (d < D) {
        dk[r * D + d] = gk[t];
        dv[r * D + d] = gv[t];
      }
    }
  }
}

// One warp per (b, head group, query i): dq_i = scale sum_j ds_ij k_j and the dbias row. With a
// bias shared by the heads (and its gradient wanted) the group is every head, in order.
template <typename T>
__global__ void bwd_queries(Shape sh, bool all_heads, const T* __restrict__ q,
                            const T* __restrict__ k, const T* __restrict__ v,
                            const std::uint8_t* __restrict__ km, const T* __restrict__ bias,
                            T scale, const T* __restrict__ lse, const T* __restrict__ dout,
                            const T* __restrict__ delta, T* __restrict__ dq, T* __restrict__ dbias) {
  extern __shared__ unsigned char smem_raw[];
  T* qs = reinterpret_cast<T*>(smem_raw) + (threadIdx.x >> 5) * 2 * sh.D;
  T* gs = qs + sh.D;
  const int lane = threadIdx.x & 31;
  const index_t G = all_heads ? 1 : sh.H, D = sh.D, Lq = sh.Lq, Lk = sh.Lk;
  const index_t items = sh.B * G * Lq;
  const T ninf = dm::neg_inf<T>();
  for (index_t r = index_t(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < items;
       r += index_t(gridDim.x) * kWarps) {
    const index_t i = r % Lq, g = (r / Lq) % G, b = r / (Lq * G);
    const index_t h0 = all_heads ? 0 : g, h1 = all_heads ? sh.H : g + 1;
    for (index_t h = h0; h < h1; ++h) {
      const index_t bh = b * sh.H + h, row = bh * Lq + i;
      const T li = lse[row], di = delta[row];
      __syncwarp();
      load_row(qs, q + row * D, D, lane);
      load_row(gs, dout + row * D, D, lane);
      const T* kb = k + bh * Lk * D;
      const T* vb = v + bh * Lk * D;
      const index_t bo = bias ? bias_off(sh, b, h, i) : 0;
      T acc[kPerLane];
#pragma unroll
      for (int t = 0; t < kPerLane; ++t) acc[t] = T(0);
      for (index_t j0 = 0; j0 < Lk; j0 += 32) {
        const index_t j = j0 + lane;
        T ds = T(0);
        if (j < Lk && li != ninf && (!km || km[b * Lk + j])) {
          const T s = scale * dot(qs, kb + j * D, D) + (bias ? bias[bo + j] : T(0));
          const T e = s - li;
          const T p = dm::exp(e < T(0) ? e : T(0));
          ds = p * (dot(gs, vb + j * D, D) - di);
        }
        // The same lane owns column j for every head: the sum over heads has a fixed order.
        if (dbias && j < Lk) dbias[bo + j] = (all_heads && h > 0) ? dbias[bo + j] + ds : ds;
        const index_t nj = Lk - j0 < 32 ? Lk - j0 : 32;
        for (index_t jj = 0; jj < nj; ++jj) {
          const T dsj = __shfl_sync(kFullMask, ds, int(jj)) * scale;
          if (dsj == T(0)) continue;
          const T* kr = kb + (j0 + jj) * D;
#pragma unroll
          for (int t = 0; t < kPerLane; ++t) {
            const index_t d = lane + 32 * t;
            if (d < D) acc[t] += dsj * kr[d];
          }
        }
      }
#pragma unroll
      for (int t = 0; t < kPerLane; ++t) {
        const index_t d = lane + 32 * t;
        if (d < D) dq[row * D + d] = acc[t];
      }
    }
  }
}

#include "cuda/attention_rows.cuh"

void check_problem(const char* op, index_t B, index_t H, index_t Lq, index_t Lk, index_t D,
                   const void* bias, index_t bias_heads, double scale) {
  check_value(B >= 0 && H >= 1 && Lq >= 0 && Lk >= 0 && D >= 1, op, "needs B, Lq, Lk >= 0 and H, D >= 1");
  check_value(D <= kMaxD, op, "the CUDA kernel supports head dims up to " + std::to_string(kMaxD) +
                                  ", got " + std::to_string(D));
  check_value(!bias || bias_heads == 1 || bias_heads == H, op, "bias_heads must be 1 or H");
  check_value(scale == scale && scale - scale == 0.0, op, "scale must be finite");
}

}  // namespace

template <typename T>
void attention_forward(index_t B, index_t H, index_t Lq, index_t Lk, index_t D, const T* q,
                       const T* k, const T* v, const std::uint8_t* key_mask, const T* bias,
                       index_t bias_heads, double scale, T* out, T* lse, Stream stream) {
  check_problem("attention_forward", B, H, Lq, Lk, D, bias, bias_heads, scale);
  const index_t rows = B * H * Lq;
  if (rows == 0) return;
  const Shape sh{B, H, Lq, Lk, D, bias ? bias_heads : 1};
  if (row_kernel_dim(D)) {
    if (D == 16) launch_rows_forward<T, 16>(sh, q, k, v, key_mask, bias, T(scale), out, lse, as_cuda(stream));
    else launch_rows_forward<T, 32>(sh, q, k, v, key_mask, bias, T(scale), out, lse, as_cuda(stream));
    check_launch("attention_forward");
    return;
  }
  const size_t smem = size_t(kWarps) * size_t(D) * sizeof(T);
  fwd_rows<T><<<grid_for(rows, kWarps, 65535), kWarps * 32, smem, as_cuda(stream)>>>(
      sh, q, k, v, key_mask, bias, T(scale), out, lse);
  check_launch("attention_forward");
}

template <typename T>
void attention_backward(index_t B, index_t H, index_t Lq, index_t Lk, index_t D, const T* q,
                        const T* k, const T* v, const std::uint8_t* key_mask, const T* bias,
                        index_t bias_heads, double scale, const T* out, const T* lse,
                        const T* dout, T* dq, T* dk, T* dv, T* dbias, Stream stream) {
  check_problem("attention_backward", B, H, Lq, Lk, D, bias, bias_heads, scale);
  check_value(!dbias || bias, "attention_backward", "dbias needs the bias of the forward");
  const cudaStream_t s = as_cuda(stream);
  const Shape sh{B, H, Lq, Lk, D, bias ? bias_heads : 1};
  const index_t rows = B * H * Lq, keys = B * H * Lk;
  const size_t smem2 = size_t(kWarps) * 2 * size_t(D) * sizeof(T);
  Scratch<T> delta(size_t(rows), s, "attention_backward");
  if (rows > 0) {
    bwd_delta<T><<<grid_for(rows, kWarps, 65535), kWarps * 32, 0, s>>>(rows, D, out, dout, delta.get());
    check_launch("attention_backward");
  }
  const bool all_heads = dbias && bias_heads == 1;
  if (row_kernel_dim(D)) {
    // The thread-per-row kernels do dk, dv and (unless the dbias sums over heads) dq.
    if (D == 16)
      launch_rows_backward<T, 16>(sh, !all_heads, q, k, v, key_mask, bias, T(scale), lse, dout, delta.get(), dq, dk,
                                  dv, dbias, s);
    else
      launch_rows_backward<T, 32>(sh, !all_heads, q, k, v, key_mask, bias, T(scale), lse, dout, delta.get(), dq, dk,
                                  dv, dbias, s);
    check_launch("attention_backward");
    if (!all_heads) return;
  } else if (keys > 0) {
    bwd_keys<T><<<grid_for(keys, kWarps, 65535), kWarps * 32, smem2, s>>>(
        sh, q, k, v, key_mask, bias, T(scale), lse, dout, delta.get(), dk, dv);
    check_launch("attention_backward");
  }
  const index_t items = B * (all_heads ? 1 : H) * Lq;
  if (items > 0) {
    bwd_queries<T><<<grid_for(items, kWarps, 65535), kWarps * 32, smem2, s>>>(
        sh, all_heads, q, k, v, key_mask, bias, T(scale), lse, dout, delta.get(), dq, dbias);
    check_launch("attention_backward");
  }
}

#define HEPNN_ATTN_INSTANTIATE(T)                                                                 \
  template void attention_forward<T>(index_t, index_t, index_t, index_t, index_t, const T*,       \
                                     const T*, const T*, const std::uint8_t*, const T*, index_t,  \
                                     double, T*, T*, Stream);                                     \
  template void attention_backward<T>(index_t, index_t, index_t, index_t, index_t, const T*,      \
                                      const T*, const T*, const std::uint8_t*, const T*, index_t, \
                                      double, const T*, const T*, const T*, T*, T*, T*, T*, Stream);
HEPNN_ATTN_INSTANTIATE(float)
HEPNN_ATTN_INSTANTIATE(double)
#undef HEPNN_ATTN_INSTANTIATE

}  // namespace hepnn::cuda
