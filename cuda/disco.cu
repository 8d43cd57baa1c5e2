// CUDA DisCo loss: weighted squared distance correlation and d/dx in O(B^2) time, O(B) memory.
// Kernels: prepare (one block: weight sum, means, variances, normalised weights), row sums (one
// thread per row, columns streamed through shared-memory tiles), finish (one block: the value and
// the gradient's scalars), row gradients (tiled like the row sums). No atomics, no host sync.
#include <cuda_runtime.h>

#include <cmath>
#include <string>

#include "core/error.hpp"
#include "cuda/device.hpp"
#include "cuda/disco.hpp"
#include "cuda/dmath.cuh"
#include "cuda/launch.cuh"
#include "cuda/reduce_util.cuh"

namespace hepnn::cuda {
namespace {

constexpr const char* kOp = "disco";
constexpr int kRows = 128;  // rows per block in the pairwise kernels = columns per shared tile

// Scalars passed between kernels in device memory (double whatever T is).
enum Stat { kXm, kYm, kVx, kVy, kAm, kBm, kQ, kScale, kNumStats };

// One block: p_j = w_j / sum w (NaN for a negative weight or a non-positive sum, so the result is
// NaN rather than silently wrong), weighted means and variances of x and y.
template <typename T>
__global__ void prepare_kernel(index_t B, const T* __restrict__ x, const T* __restrict__ y,
                               const T* __restrict__ w, double* __restrict__ p, double* __restrict__ st) {
  __shared__ double smem[32];
  double sw = 0.0, neg = 0.0;
  if (w) {
    for (index_t j = threadIdx.x; j < B; j += blockDim.x) {
      sw += double(w[j]);
      neg += w[j] < T(0) ? 1.0 : 0.0;
    }
    sw = block_sum(sw, smem);
    neg = block_sum(neg, smem);
  } else {
    sw = double(B);
  }
  const double inv = (neg == 0.0 && sw > 0.0) ? 1.0 / sw : dm::quiet_nan<double>();
  double sx = 0.0, sy = 0.0;
  for (index_t j = threadIdx.x; j < B; j += blockDim.x) {
    const double pj = (w ? double(w[j]) : 1.0) * inv;
    p[j] = pj;
    sx += pj * double(x[j]);
    sy += pj * double(y[j]);
  }
  const double xm = block_sum(sx, smem);
  const double ym = block_sum(sy, smem);
  double vx = 0.0, vy = 0.0;
  for (index_t j = threadIdx.x; j < B; j += blockDim.x) {
    const double dx = double(x[j]) - xm, dy = double(y[j]) - ym;
    vx += p[j] * dx * dx;
    vy += p[j] * dy * dy;
  }
  vx = block_sum(vx, smem);
  vy = block_sum(vy, smem);
  if (threadIdx.x == 0) {
    st[kXm] = xm;
    st[kYm] = ym;
    st[kVx] = vx;
    st[kVy] = vy;
  }
}

// Thread i: abar_i = sum_j p_j |x_i - x_j|, bbar_i = sum_j p_j |y_i - y_j|, rab_i = sum_j p_j a_ij b_ij.
// Columns past B load p = 0 (and x = y = 0), so they add exact zeros.
template <typename T>
__global__ void row_sums_kernel(index_t B, const T* __restrict__ x, const T* __restrict__ y,
                                const double* __restrict__ p, double* __restrict__ abar,
                                double* __restrict__ bbar, double* __restrict__ rab) {
  __shared__ double xs[kRows], ys[kRows], ps[kRows];
  const index_t i = index_t(blockIdx.x) * kRows + threadIdx.x;
  const double xi = i < B ? double(x[i]) : 0.0, yi = i < B ? double(y[i]) : 0.0;
  double sa = 0.0, sb = 0.0, sab = 0.0;
  for (index_t j0 = 0; j0 < B; j0 += kRows) {
    const index_t j = j0 + threadIdx.x;
    xs[threadIdx.x] = j < B ? double(x[j]) : 0.0;
    ys[threadIdx.x] = j < B ? double(y[j]) : 0.0;
    ps[threadIdx.x] = j < B ? p[j] : 0.0;
    __syncthreads();
#pragma unroll 8
    for (int c = 0; c < kRows; ++c) {
      const double pa = ps[c] * fabs(xi - xs[c]);
      const double b = fabs(yi - ys[c]);
      sa += pa;
      sb += ps[c] * b;
      sab += pa * b;
    }
    __syncthreads();
  }
  if (i < B) {
    abar[i] = sa;
    bbar[i] = sb;
    rab[i] = sab;
  }
}

// One block: the dCov^2 sums (see cpp/ops/disco.cpp for the identities), the loss, and the
// scalars of the gradient. NaN inputs give a NaN loss (they must not look like zero spread).
template <typename T>
__global__ void finish_kernel(index_t B, double power, const double* __restrict__ p,
                              const double* __restrict__ abar, const double* __restrict__ bbar,
                              const double* __restrict__ rab, double* __restrict__ st, T* loss) {
  __shared__ double smem[32];
  double am = 0.0, bm = 0.0;
  for (index_t i = threadIdx.x; i < B; i += blockDim.x) {
    am += p[i] * abar[i];
    bm += p[i] * bbar[i];
  }
  am = block_sum(am, smem);
  bm = block_sum(bm, smem);
  double s_ab = 0.0, s_aa = 0.0, s_bb = 0.0;
  for (index_t i = threadIdx.x; i < B; i += blockDim.x) {
    s_ab += p[i] * (rab[i] - 2.0 * abar[i] * bbar[i]);
    s_aa += p[i] * abar[i] * abar[i];
    s_bb += p[i] * bbar[i] * bbar[i];
  }
  s_ab = block_sum(s_ab, smem);
  s_aa = block_sum(s_aa, smem);
  s_bb = block_sum(s_bb, smem);
  if (threadIdx.x != 0) return;
  const double cxy = s_ab + am * bm;
  const double cxx = 2.0 * st[kVx] - 2.0 * s_aa + am * am;
  const double cyy = 2.0 * st[kVy] - 2.0 * s_bb + bm * bm;
  double value = 0.0, q = 0.0, scale = 0.0;
  if (dm::isnan(cxy) || dm::isnan(cxx) || dm::isnan(cyy)) {
    value = q = scale = dm::quiet_nan<double>();
  } else if (cxx > 0.0 && cyy > 0.0) {
    const double d = sqrt(cxx * cyy);
    const double r = cxy / d;
    if (r > 0.0) {
      value = power == 1.0 ? r : pow(r, power);
      scale = (power == 1.0 ? 1.0 : power * pow(r, power - 1.0)) / d;
      q = cxy / cxx;
    }
  }
  st[kAm] = am;
  st[kBm] = bm;
  st[kQ] = q;
  st[kScale] = scale;
  if (loss) *loss = T(value);
}

// Thread k: c1 = sum_j s_kj p_j and cz = sum_j s_kj (p_j b_kj + e_j), e_j = p_j (q abar_j - bbar_j),
// s_kj = sign(x_k - x_j) (0 at ties); then dx_k as in cpp/ops/disco.cpp.
template <typename T>
__global__ void row_grads_kernel(index_t B, const T* __restrict__ x, const T* __restrict__ y,
                                 const double* __restrict__ p, const double* __restrict__ abar,
                                 const double* __restrict__ bbar, const double* __restrict__ st,
                                 T* __restrict__ dx) {
  __shared__ double xs[kRows], ys[kRows], ps[kRows], es[kRows];
  const double q = st[kQ];
  const index_t i = index_t(blockIdx.x) * kRows + threadIdx.x;
  const double xi = i < B ? double(x[i]) : 0.0, yi = i < B ? double(y[i]) : 0.0;
  double c1 = 0.0, cz = 0.0;
  for (index_t j0 = 0; j0 < B; j0 += kRows) {
    const index_t j = j0 + threadIdx.x;
    xs[threadIdx.x] = j < B ? double(x[j]) : 0.0;
    ys[threadIdx.x] = j < B ? double(y[j]) : 0.0;
    ps[threadIdx.x] = j < B ? p[j] : 0.0;
    es[threadIdx.x] = j < B ? p[j] * (q * abar[j] - bbar[j]) : 0.0;
    __syncthreads();
#pragma unroll 8
    for (int c = 0; c < kRows; ++c) {
      const double d = xi - xs[c];
      const double s = double(d > 0.0) - double(d < 0.0);
      c1 += s * ps[c];
      cz += s * (ps[c] * fabs(yi - ys[c]) + es[c]);
    }
    __syncthreads();
  }
  if (i < B) {
    const double g = cz - ((bbar[i] - st[kBm]) - q * (abar[i] - st[kAm])) * c1 - q * (xi - st[kXm]);
    dx[i] = T(st[kScale] * 2.0 * p[i] * g);
  }
}

}  // namespace

template <typename T>
void disco_loss(index_t B, const T* x, const T* y, const T* w, double power, T* loss, T* dx,
                Stream stream) {
  if (B < 2) throw ValueError(op_message(kOp, "needs at least 2 events, got B=" + std::to_string(B)));
  if (!(std::isfinite(power) && power > 0.0))
    throw ValueError(op_message(kOp, "power must be finite and > 0, got " + std::to_string(power)));
  const cudaStream_t s = as_cuda(stream);
  const auto n = static_cast<std::size_t>(B);
  // p, abar, bbar, rab (B each) and the scalars, in one stream-ordered allocation.
  Scratch<double> buf(4 * n + kNumStats, s, kOp);
  double* p = buf.get();
  double* abar = p + n;
  double* bbar = abar + n;
  double* rab = bbar + n;
  double* st = rab + n;
  const unsigned rows = static_cast<unsigned>((B + kRows - 1) / kRows);
  prepare_kernel<T><<<1, kBlock, 0, s>>>(B, x, y, w, p, st);
  row_sums_kernel<T><<<rows, kRows, 0, s>>>(B, x, y, p, abar, bbar, rab);
  finish_kernel<T><<<1, kBlock, 0, s>>>(B, power, p, abar, bbar, rab, st, loss);
  if (dx) row_grads_kernel<T><<<rows, kRows, 0, s>>>(B, x, y, p, abar, bbar, st, dx);
  check_launch(kOp);
}

template void disco_loss<float>(index_t, const float*, const float*, const float*, double, float*, float*, Stream);
template void disco_loss<double>(index_t, const double*, const double*, const double*, double, double*, double*,
                                 Stream);

}  // namespace hepnn::cuda
