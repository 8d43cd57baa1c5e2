// Batch normalisation forward (training: batch statistics + running-stat update; eval: running
// statistics) and backward over (N, C, S), with an optional (N, S) point mask. The pool splits the
// channels; each task walks blocks of channels sample by sample, so memory is read in order both
// for S == 1 (BatchNorm1d on (N, C): the loops run across the channels of a row) and for S > 1
// (runs of S points per channel). Sums are double for both dtypes; each channel is reduced in a
// fixed order by one thread, so results do not depend on the thread count.
#include "ops/batchnorm.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include <type_traits>

#include "core/cpu_features.hpp"
#include "core/error.hpp"
#include "core/threadpool.hpp"
#if defined(HEPNN_HAVE_AVX2_KERNELS)
#include "ops/batchnorm_avx2.hpp"
#endif

namespace hepnn::cpu {
namespace {

constexpr const char* kOp = "batch_norm";
constexpr index_t kGrainElems = 32768;  // elements per parallel task below which one thread works
constexpr index_t kMaxBlock = 64;       // channels of one block (stack accumulators)
constexpr index_t kRowElems = 512;      // target elements of one sample's row within a block

// ---- one run of S points of one channel (m: the sample's mask row, or null) ----
// Float32 runs use the AVX2 sums when the CPU has them (same double accumulation; only
// the order of the additions differs, so results stay deterministic per machine).
// Eight partial sums: independent chains the compiler can vectorise and pipeline.
template <typename T>
double run_sum(index_t S, const T* x, const std::uint8_t* m) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>)
    if (avx2_f32()) return avx2::bn_sum_f32(S, x, m);
#endif
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  index_t s = 0;
  if (m) {
    for (; s + 8 <= S; s += 8)
      for (int k = 0; k < 8; ++k) a[k] += m[s + k] ? double(x[s + k]) : 0.0;
  } else {
    for (; s + 8 <= S; s += 8)
      for (int k = 0; k < 8; ++k) a[k] += double(x[s + k]);
  }
  for (; s < S; ++s) a[0] += (!m || m[s]) ? double(x[s]) : 0.0;
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// sum (x - mean) and sum (x - mean)^2 over the valid points.
template <typename T>
void run_dev(index_t S, const T* x, const std::uint8_t* m, double mean, double& sd, double& sq) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>)
    if (avx2_f32()) return avx2::bn_dev_f32(S, x, m, mean, sd, sq);
#endif
  double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
  index_t s = 0;
  for (; s + 4 <= S; s += 4)
    for (int k = 0; k < 4; ++k) {
      const double d = (!m || m[s + k]) ? double(x[s + k]) - mean : 0.0;
      a[k] += d;
      b[k] += d * d;
    }
  for (; s < S; ++s) {
    const double d = (!m || m[s]) ? double(x[s]) - mean : 0.0;
    a[0] += d;
    b[0] += d * d;
  }
  sd += (a[0] + a[1]) + (a[2] + a[3]);
  sq += (b[0] + b[1]) + (b[2] + b[3]);
}

// sum dy, sum dy * (x - mean) and sum (x - mean) over the valid points.
template <typename T>
void run_grad_sums(index_t S, const T* x, const T* dy, const std::uint8_t* m, double mean,
                   double& sg, double& sgx, double& sd) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>)
    if (avx2_f32()) return avx2::bn_grad_sums_f32(S, x, dy, m, mean, sg, sgx, sd);
#endif
  double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0}, c[4] = {0, 0, 0, 0};
  index_t s = 0;
  for (; s + 4 <= S; s += 4)
    for (int k = 0; k < 4; ++k) {
      const bool ok = !m || m[s + k];
      const double g = ok ? double(dy[s + k]) : 0.0, d = ok ? double(x[s + k]) - mean : 0.0;
      a[k] += g;
      b[k] += g * d;
      c[k] += d;
    }
  for (; s < S; ++s) {
    const bool ok = !m || m[s];
    const double g = ok ? double(dy[s]) : 0.0, d = ok ? double(x[s]) - mean : 0.0;
    a[0] += g;
    b[0] += g * d;
    c[0] += d;
  }
  sg += (a[0] + a[1]) + (a[2] + a[3]);
  sgx += (b[0] + b[1]) + (b[2] + b[3]);
  sd += (c[0] + c[1]) + (c[2] + c[3]);
}

// v where the mask byte is nonzero, else +0 (also for NaN v: padding may hold anything): a bit
// mask instead of a select, because GCC will not if-convert the select and the loop stays scalar.
template <typename T>
T keep_if(std::uint8_t keep, T v) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  U u;
  std::memcpy(&u, &v, sizeof u);
  u &= U(0) - U(keep != 0);
  std::memcpy(&v, &u, sizeof u);
  return v;
}

// NOTE: y = ((x - hi) - lo) * scale + shift with mean = hi + lo split into two T values, not
// x * scale + (shift - mean * scale): with a large common offset the latter cancels two values of
// size |mean| * scale and loses the digits of the (small) result. x - hi is exact for x near the
// mean, so the only rounding left is that of the result, even where scale is large (var << eps).
template <typename T>
void run_normalise(index_t S, const T* x, const std::uint8_t* m, T hi, T lo, T scale, T shift,
                   T* y) {
  if (m)
    for (index_t s = 0; s < S; ++s) {
      const T v = ((x[s] - hi) - lo) * scale + shift;
      y[s] = keep_if(m[s], v);
    }
  else
    for (index_t s = 0; s < S; ++s) y[s] = ((x[s] - hi) - lo) * scale + shift;
}

// dx = k * (dy - a - ((x - hi) - lo) * b): a = b = 0 in eval mode.
template <typename T>
void run_dx(index_t S, const T* x, const T* dy, const std::uint8_t* m, T hi, T lo, T k, T a, T b,
            T* dx) {
  if (m)
    for (index_t s = 0; s < S; ++s) {
      const T v = k * (dy[s] - a - ((x[s] - hi) - lo) * b);
      dx[s] = keep_if(m[s], v);
    }
  else
    for (index_t s = 0; s < S; ++s) dx[s] = k * (dy[s] - a - ((x[s] - hi) - lo) * b);
}

// The shape and the mask, shared by every pass over a block of channels [c0, c0 + w).
struct Geometry {
  index_t N, C, S;
  const std::uint8_t* mask;
  bool valid(index_t n) const { return !mask || mask[n]; }  // S == 1 only
};

// f(j, offset, mask_row) for every sample n and channel c0 + j, samples outer. For S == 1 callers
// use their own loops (vectorised across the block's channels) instead.
template <typename F>
void for_runs(const Geometry& g, index_t c0, index_t w, F&& f) {
  for (index_t n = 0; n < g.N; ++n) {
    const std::uint8_t* m = g.mask ? g.mask + n * g.S : nullptr;
    for (index_t j = 0; j < w; ++j) f(j, (n * g.C + c0 + j) * g.S, m);
  }
}

// Per-channel mean and biased variance of the block (two passes, see NOTE below).
template <typename T>
void block_stats(const Geometry& g, index_t c0, index_t w, const T* x, double count, double* mean,
                 double* var) {
  double sd[kMaxBlock], sq[kMaxBlock];
  for (index_t j = 0; j < w; ++j) mean[j] = sd[j] = sq[j] = 0.0;
  if (g.S == 1) {
    for (index_t n = 0; n < g.N; ++n) {
      if (!g.valid(n)) continue;
      const T* xr = x + n * g.C + c0;
      for (index_t j = 0; j < w; ++j) mean[j] += double(xr[j]);
    }
  } else {
    for_runs(g, c0, w, [&](index_t j, index_t off, const std::uint8_t* m) {
      mean[j] += run_sum(g.S, x + off, m);
    });
  }
  for (index_t j = 0; j < w; ++j) mean[j] /= count;
  if (g.S == 1) {
    for (index_t n = 0; n < g.N; ++n) {
      if (!g.valid(n)) continue;
      const T* xr = x + n * g.C + c0;
      for (index_t j = 0; j < w; ++j) {
        const double d = double(xr[j]) - mean[j];
        sd[j] += d;
        sq[j] += d * d;
      }
    }
  } else {
    for_runs(g, c0, w, [&](index_t j, index_t off, const std::uint8_t* m) {
      run_dev(g.S, x + off, m, mean[j], sd[j], sq[j]);
    });
  }
  // NOTE: the second pass sums squared deviations from the first pass's mean (no cancellation
  // of E[x^2] - E[x]^2); subtracting sd^2 / count corrects that mean's own rounding error.
  for (index_t j = 0; j < w; ++j) var[j] = std::max(0.0, (sq[j] - sd[j] * sd[j] / count) / count);
}

template <typename T>
void block_normalise(const Geometry& g, index_t c0, index_t w, const T* x, const T* hi,
                     const T* lo, const T* scale, const T* shift, T* y) {
  if (g.S == 1) {
    for (index_t n = 0; n < g.N; ++n) {
      const T* xr = x + n * g.C + c0;
      T* yr = y + n * g.C + c0;
      if (!g.valid(n))
        for (index_t j = 0; j < w; ++j) yr[j] = T(0);
      else
        for (index_t j = 0; j < w; ++j) yr[j] = ((xr[j] - hi[j]) - lo[j]) * scale[j] + shift[j];
    }
    return;
  }
  for_runs(g, c0, w, [&](index_t j, index_t off, const std::uint8_t* m) {
    run_normalise(g.S, x + off, m, hi[j], lo[j], scale[j], shift[j], y + off);
  });
}

// Valid points per channel (the same for every channel).
index_t valid_count(index_t N, index_t S, const std::uint8_t* mask) {
  if (!mask) return N * S;
  index_t count = 0;
  for (index_t i = 0; i < N * S; ++i) count += mask[i] != 0;
  return count;
}

// Runs block(c0, w) over the channels, split over the pool in blocks of at most kMaxBlock.
template <typename F>
void for_channel_blocks(index_t N, index_t C, index_t S, F&& block) {
  const index_t bw = std::max<index_t>(1, std::min<index_t>(kMaxBlock, kRowElems / std::max<index_t>(S, 1)));
  const index_t grain = std::max<index_t>(1, kGrainElems / std::max<index_t>(1, N * S));
  parallel_for(C, grain, [&](index_t cb, index_t ce) {
    for (index_t c0 = cb; c0 < ce; c0 += bw) block(c0, std::min(bw, ce - c0));
  });
}

}  // namespace

template <typename T>
void batchnorm_forward(index_t N, index_t C, index_t S, const T* x, const std::uint8_t* mask,
                       const T* weight, const T* bias, T* running_mean, T* running_var,
                       bool training, double momentum, double eps, T* y, T* save_mean,
                       T* save_invstd) {
  HEPNN_CHECK_VALUE(N >= 0 && C >= 0 && S >= 0, kOp, "negative size");
  if (C == 0) return;
  const index_t count = training ? valid_count(N, S, mask) : 0;
  if (training && count < 2)
    throw ValueError(op_message(kOp, "expected more than 1 valid value per channel when "
                                     "training, got " + std::to_string(count)));
  HEPNN_CHECK_VALUE(training || (running_mean && running_var), kOp,
              "eval mode needs running_mean and running_var");
  const Geometry g{N, C, S, mask};
  for_channel_blocks(N, C, S, [&](index_t c0, index_t w) {
    double mean[kMaxBlock], var[kMaxBlock];
    if (training) {
      block_stats(g, c0, w, x, double(count), mean, var);
    } else {
      for (index_t j = 0; j < w; ++j) {
        mean[j] = double(running_mean[c0 + j]);
        var[j] = double(running_var[c0 + j]);
      }
    }
    T hi[kMaxBlock], lo[kMaxBlock], scale[kMaxBlock], shift[kMaxBlock];
    for (index_t j = 0; j < w; ++j) {
      const index_t c = c0 + j;
      const double invstd = 1.0 / std::sqrt(var[j] + eps);
      hi[j] = T(mean[j]);
      lo[j] = T(mean[j] - double(hi[j]));
      scale[j] = T(invstd * (weight ? double(weight[c]) : 1.0));
      shift[j] = bias ? bias[c] : T(0);
      if (save_mean) save_mean[c] = hi[j];
      if (save_invstd) save_invstd[c] = T(invstd);
      if (training && running_mean)
        running_mean[c] = T((1.0 - momentum) * double(running_mean[c]) + momentum * mean[j]);
      if (training && running_var) {
        const double unbiased = var[j] * double(count) / double(count - 1);
        running_var[c] = T((1.0 - momentum) * double(running_var[c]) + momentum * unbiased);
      }
    }
    block_normalise(g, c0, w, x, hi, lo, scale, shift, y);
  });
}

template <typename T>
void batchnorm_backward(index_t N, index_t C, index_t S, const T* x, const std::uint8_t* mask,
                        const T* weight, const T* save_mean, const T* save_invstd, const T* dy,
                        bool training, T* dx, T* dweight, T* dbias) {
  HEPNN_CHECK_VALUE(N >= 0 && C >= 0 && S >= 0, kOp, "negative size");
  if (C == 0) return;
  const index_t count = valid_count(N, S, mask);
  const bool sums = dweight || dbias || (dx && training);
  const Geometry g{N, C, S, mask};
  for_channel_blocks(N, C, S, [&](index_t c0, index_t w) {
    double sg[kMaxBlock], sgx[kMaxBlock], sd[kMaxBlock];
    for (index_t j = 0; j < w; ++j) sg[j] = sgx[j] = sd[j] = 0.0;
    if (sums && S == 1) {
      for (index_t n = 0; n < N; ++n) {
        if (!g.valid(n)) continue;
        const T* xr = x + n * C + c0;
        const T* gr = dy + n * C + c0;
        for (index_t j = 0; j < w; ++j) {
          const double d = double(xr[j]) - double(save_mean[c0 + j]);
          sg[j] += double(gr[j]);
          sgx[j] += double(gr[j]) * d;
          sd[j] += d;
        }
      }
    } else if (sums) {
      for_runs(g, c0, w, [&](index_t j, index_t off, const std::uint8_t* m) {
        run_grad_sums(S, x + off, dy + off, m, double(save_mean[c0 + j]), sg[j], sgx[j], sd[j]);
      });
    }
    T hi[kMaxBlock], lo[kMaxBlock], k[kMaxBlock], a[kMaxBlock], b[kMaxBlock];
    for (index_t j = 0; j < w; ++j) {
      const index_t c = c0 + j;
      const double invstd = double(save_invstd[c]);
      const bool full = training && count > 0;
      // NOTE: save_mean is the batch mean rounded to T. In training the rounding is recovered
      // from the data (lo = mean of x - hi, in double) so x_hat matches the forward's; without
      // it, channels with var << eps (large 1/std) lose digits in float32.
      const double dmean = full ? sd[j] / double(count) : 0.0;
      const double sxh = sgx[j] - dmean * sg[j];  // sum dy * (x - mean)
      hi[j] = save_mean[c];
      lo[j] = T(dmean);
      if (dbias) dbias[c] = T(sg[j]);
      if (dweight) dweight[c] = T(sxh * invstd);
      k[j] = T(invstd * (weight ? double(weight[c]) : 1.0));
      // NOTE: in training the mean and variance depend on every valid x: the two projections
      // (onto the constant and onto x_hat) of dy are removed, each averaged over `count`.
      a[j] = full ? T(sg[j] / double(count)) : T(0);
      b[j] = full ? T(sxh * invstd * invstd / double(count)) : T(0);
    }
    if (!dx) return;
    if (S == 1) {
      for (index_t n = 0; n < N; ++n) {
        const T* xr = x + n * C + c0;
        const T* gr = dy + n * C + c0;
        T* dr = dx + n * C + c0;
        if (!g.valid(n))
          for (index_t j = 0; j < w; ++j) dr[j] = T(0);
        else
          for (index_t j = 0; j < w; ++j) dr[j] = k[j] * (gr[j] - a[j] - ((xr[j] - hi[j]) - lo[j]) * b[j]);
      }
      return;
    }
    for_runs(g, c0, w, [&](index_t j, index_t off, const std::uint8_t* m) {
      run_dx(S, x + off, dy + off, m, hi[j], lo[j], k[j], a[j], b[j], dx + off);
    });
  });
}

template void batchnorm_forward<float>(index_t, index_t, index_t, const float*, const std::uint8_t*,
                                       const float*, const float*, float*, float*, bool, double,
                                       double, float*, float*, float*);
template void batchnorm_forward<double>(index_t, index_t, index_t, const double*,
                                        const std::uint8_t*, const double*, const double*, double*,
                                        double*, bool, double, double, double*, double*, double*);
template void batchnorm_backward<float>(index_t, index_t, index_t, const float*,
                                        const std::uint8_t*, const float*, const float*,
                                        const float*, const float*, bool, float*, float*, float*);
template void batchnorm_backward<double>(index_t, index_t, index_t, const double*,
                                         const std::uint8_t*, const double*, const double*,
                                         const double*, const double*, bool, double*, double*,
                                         double*);

}  // namespace hepnn::cpu
