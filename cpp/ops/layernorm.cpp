// Layer normalisation over the last axis: one task per block of rows. Forward: a two-pass mean /
// variance per row accumulated in double (stable for float rows with a large offset). Backward:
// one pass per row for dx; dweight / dbias as per-chunk double partials reduced in chunk order.
#include "ops/layernorm.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/threadpool.hpp"

namespace hepnn::cpu {
namespace {

constexpr index_t kGrainElems = 16384;  // elements per parallel task
constexpr index_t kMaxChunks = 64;      // row chunks of the dweight / dbias partial sums

// NOTE: the variance is the mean of (x - mean)^2 (biased, like torch), summed in double after
// the mean is known: no cancellation of E[x^2] - E[x]^2 for rows far from zero.
template <typename T>
void forward_row(index_t C, const T* x, const T* w, const T* b, double eps, T* y, T* mean_out,
                 T* rstd_out) {
  double s = 0.0;
  for (index_t c = 0; c < C; ++c) s += x[c];
  const double mean = s / static_cast<double>(C);
  double ss = 0.0;
  for (index_t c = 0; c < C; ++c) {
    const double d = x[c] - mean;
    ss += d * d;
  }
  const double rstd = 1.0 / std::sqrt(ss / static_cast<double>(C) + eps);
  const T m = static_cast<T>(mean), r = static_cast<T>(rstd);
  if (w && b)
    for (index_t c = 0; c < C; ++c) y[c] = (x[c] - m) * r * w[c] + b[c];
  else if (w)
    for (index_t c = 0; c < C; ++c) y[c] = (x[c] - m) * r * w[c];
  else if (b)
    for (index_t c = 0; c < C; ++c) y[c] = (x[c] - m) * r + b[c];
  else
    for (index_t c = 0; c < C; ++c) y[c] = (x[c] - m) * r;
  if (mean_out) *mean_out = m;
  if (rstd_out) *rstd_out = r;
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w, xhat = (x - mean) * rstd.
template <typename T>
void backward_row(index_t C, const T* x, const T* w, T mean, T rstd, const T* dy, T* dx,
                  double* pw, double* pb) {
  double sg = 0.0, sgx = 0.0;
  for (index_t c = 0; c < C; ++c) {
    const T xh = (x[c] - mean) * rstd;
    const T g = w ? dy[c] * w[c] : dy[c];
    sg += g;
    sgx += static_cast<double>(g) * xh;
    if (pw) pw[c] += static_cast<double>(dy[c]) * xh;
    if (pb) pb[c] += dy[c];
  }
  const T mg = static_cast<T>(sg / static_cast<double>(C));
  const T mgx = static_cast<T>(sgx / static_cast<double>(C));
  if (!dx) return;
  for (index_t c = 0; c < C; ++c) {
    const T xh = (x[c] - mean) * rstd;
    const T g = w ? dy[c] * w[c] : dy[c];
    dx[c] = rstd * (g - mg - xh * mgx);
  }
}

}  // namespace

template <typename T>
void layer_norm_forward(index_t R, index_t C, const T* x, const T* weight, const T* bias, double eps,
                        T* y, T* mean, T* rstd) {
  HEPNN_CHECK_VALUE(R >= 0 && C >= 1, "layer_norm_forward", "needs rows >= 0 and a normalised size >= 1");
  HEPNN_CHECK_VALUE(eps >= 0.0, "layer_norm_forward", "eps must be >= 0");
  const index_t grain = std::max<index_t>(1, kGrainElems / C);
  parallel_for(R, grain, [&](index_t r0, index_t r1) {
    for (index_t r = r0; r < r1; ++r)
      forward_row(C, x + r * C, weight, bias, eps, y + r * C, mean ? mean + r : nullptr,
                  rstd ? rstd + r : nullptr);
  });
}

template <typename T>
void layer_norm_backward(index_t R, index_t C, const T* x, const T* weight, const T* mean,
                         const T* rstd, const T* dy, T* dx, T* dweight, T* dbias) {
  HEPNN_CHECK_VALUE(R >= 0 && C >= 1, "layer_norm_backward", "needs rows >= 0 and a normalised size >= 1");
  const bool params = dweight || dbias;
  // The chunking depends only on R, never on the thread count: the sums are reproducible.
  const index_t chunks = params ? std::max<index_t>(1, std::min(kMaxChunks, R)) : 1;
  const index_t per = R > 0 ? (R + chunks - 1) / chunks : 0;
  std::vector<double> pw(dweight ? chunks * C : 0, 0.0), pb(dbias ? chunks * C : 0, 0.0);
  auto run_rows = [&](index_t ch, index_t r0, index_t r1) {
    double* w_part = dweight ? pw.data() + ch * C : nullptr;
    double* b_part = dbias ? pb.data() + ch * C : nullptr;
    for (index_t r = r0; r < r1; ++r)
      backward_row(C, x + r * C, weight, mean[r], rstd[r], dy + r * C, dx ? dx + r * C : nullptr,
                   w_part, b_part);
  };
  if (params) {
    parallel_for(chunks, 1, [&](index_t c0, index_t c1) {
      for (index_t ch = c0; ch < c1; ++ch) run_rows(ch, ch * per, std::min(R, (ch + 1) * per));
    });
    for (index_t c = 0; c < C; ++c) {
      double sw = 0.0, sb = 0.0;
      for (index_t ch = 0; ch < chunks; ++ch) {
        if (dweight) sw += pw[ch * C + c];
        if (dbias) sb += pb[ch * C + c];
      }
      if (dweight) dweight[c] = static_cast<T>(sw);
      if (dbias) dbias[c] = static_cast<T>(sb);
    }
  } else {
    const index_t grain = std::max<index_t>(1, kGrainElems / C);
    parallel_for(R, grain, [&](index_t r0, index_t r1) { run_rows(0, r0, r1); });
  }
}

template void layer_norm_forward<float>(index_t, index_t, const float*, const float*, const float*,
                                        double, float*, float*, float*);
template void layer_norm_forward<double>(index_t, index_t, const double*, const double*,
                                         const double*, double, double*, double*, double*);
template void layer_norm_backward<float>(index_t, index_t, const float*, const float*, const float*,
                                         const float*, const float*, float*, float*, float*);
template void layer_norm_backward<double>(index_t, index_t, const double*, const double*,
                                          const double*, const double*, const double*, double*,
                                          double*, double*);

}  // namespace hepnn::cpu
