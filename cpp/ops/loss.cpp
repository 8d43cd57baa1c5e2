// Fused losses on the CPU: mse, binary cross-entropy on logits, softmax cross-entropy with int64
// labels. Each computes the per-sample value and d loss / d pred in one pass over the data.
// B = samples, F = features per sample (mse, bce), C = classes (cross-entropy).
#include "ops/loss.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <type_traits>

#include "core/cpu_features.hpp"
#include "core/error.hpp"
#include "core/threadpool.hpp"
#if defined(HEPNN_HAVE_AVX2_KERNELS)
#include "ops/activation_avx2.hpp"
#endif

namespace hepnn::cpu {
namespace {

// Rows are cut into blocks of a size that depends only on the row length, never on the thread
// count, and block sums are added in block order: the loss is bit-identical for any
// set_num_threads.
constexpr index_t kBlockElems = 16384;

index_t rows_per_block(index_t row_len) { return std::max<index_t>(1, kBlockElems / std::max<index_t>(1, row_len)); }

// Sums f(begin, end) -> double over fixed blocks of rows, in parallel, combined in block order.
template <typename Fn>
double blocked_sum(index_t B, index_t row_len, Fn&& f) {
  const index_t rpb = rows_per_block(row_len);
  const index_t nblocks = (B + rpb - 1) / rpb;
  std::vector<double> partial(static_cast<size_t>(nblocks), 0.0);
  parallel_for(nblocks, 1, [&](index_t b0, index_t b1) {
    for (index_t b = b0; b < b1; ++b) {
      const index_t r0 = b * rpb;
      partial[static_cast<size_t>(b)] = f(r0, std::min(B, r0 + rpb));
    }
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

// The factor c such that loss = c * sum_i w_i sum_f l_if and grad_if = c * w_i * dl_if:
// 1 for sum and none, 1 / (F * sum_i w_i) for mean (sum_i w_i = B when unweighted).
template <typename T>
double reduction_scale(const char* op, index_t B, index_t F, const T* w, Reduction red) {
  if (red != Reduction::mean) return 1.0;
  double wsum = static_cast<double>(B);
  if (w) {
    wsum = blocked_sum(B, 1, [&](index_t r0, index_t r1) {
      double s = 0.0;
      for (index_t i = r0; i < r1; ++i) s += static_cast<double>(w[i]);
      return s;
    });
    check_value(wsum != 0.0, op, "event weights sum to zero");
  }
  return 1.0 / (static_cast<double>(F) * wsum);
}

template <typename T>
void write_loss(T* loss, Reduction red, double c, double total) {
  if (loss) *loss = red == Reduction::none ? T(0) : static_cast<T>(c * total);
}

void check_sizes(const char* op, index_t B, index_t F) {
  if (B < 0 || F < 1)
    throw ValueError(op_message(op, "needs at least one feature per sample, got B=" + std::to_string(B) +
                                        ", F=" + std::to_string(F)));
}

// Elementwise losses share everything but the per-element value/derivative `elem(x, t, &dl)`.
template <typename T, typename Elem>
void elementwise_loss(const char* op, index_t B, index_t F, const T* x, const T* t, const T* w,
                      Reduction red, T* out, T* grad, T* loss, Elem elem) {
  check_sizes(op, B, F);
  const double c = reduction_scale(op, B, F, w, red);
  const bool write_out = red == Reduction::none && out;
  const double total = blocked_sum(B, F, [&](index_t r0, index_t r1) {
    double acc = 0.0;
    for (index_t i = r0; i < r1; ++i) {
      const T wi = w ? w[i] : T(1);
      const T gs = static_cast<T>(c * static_cast<double>(wi));
      const T* xi = x + i * F;
      const T* ti = t + i * F;
      T* gi = grad ? grad + i * F : nullptr;
      T* oi = write_out ? out + i * F : nullptr;
      double row = 0.0;
      for (index_t f = 0; f < F; ++f) {
        T dl;
        const T l = elem(xi[f], ti[f], dl);
        row += static_cast<double>(l);
        if (gi) gi[f] = gs * dl;
        if (oi) oi[f] = wi * l;
      }
      acc += static_cast<double>(wi) * row;
    }
    return acc;
  });
  write_loss(loss, red, c, total);
}

#if defined(HEPNN_HAVE_AVX2_KERNELS)
// float32 BCE with the vector transcendental functions: l = softplus(x) - x t (the same stable
// form, as softplus(x) = max(x, 0) + log1p(e^-|x|)) and dl = sigmoid(x) - t, each a vectorised
// pass over a block, then one fused pass for the sums. Blocks and their order are those of
// blocked_sum, so the result still does not depend on the thread count.
void bce_with_logits_f32_vector(index_t B, index_t F, const float* x, const float* t, const float* w,
                                Reduction red, float* out, float* grad, float* loss) {
  const char* op = "bce_with_logits_loss";
  check_sizes(op, B, F);
  const double c = reduction_scale(op, B, F, w, red);
  const bool write_out = red == Reduction::none && out;
  const double total = blocked_sum(B, F, [&](index_t r0, index_t r1) {
    thread_local std::vector<float> softplus;
    const index_t n = (r1 - r0) * F;
    if (static_cast<index_t>(softplus.size()) < n) softplus.resize(static_cast<size_t>(n));
    const float* xs = x + r0 * F;
    const float* ts = t + r0 * F;
    float* sp = softplus.data();
    avx2::act_forward_f32(Act::softplus, n, xs, sp, 0.0f);
    float* g = grad ? grad + r0 * F : nullptr;
    if (g) avx2::act_forward_f32(Act::sigmoid, n, xs, g, 0.0f);
    float* o = write_out ? out + r0 * F : nullptr;
    double acc = 0.0;
    for (index_t i = 0; i < r1 - r0; ++i) {
      const float wi = w ? w[r0 + i] : 1.0f;
      const float gs = static_cast<float>(c * static_cast<double>(wi));
      double row = 0.0;
      for (index_t f = i * F; f < (i + 1) * F; ++f) {
        const float l = sp[f] - xs[f] * ts[f];
        row += static_cast<double>(l);
        if (g) g[f] = gs * (g[f] - ts[f]);
        if (o) o[f] = wi * l;
      }
      acc += static_cast<double>(wi) * row;
    }
    return acc;
  });
  write_loss(loss, red, c, total);
}

// float32 cross-entropy with the vector exp: per block, the rows' max-shifted logits are written
// (into grad when it is wanted) and exponentiated in one vector pass; sums, logs and the scaling
// follow per row. Returns sum_i w_i l_i; blocks as in blocked_sum (thread-count independent).
// NOTE: a NaN logit is skipped by the max scan but x - m is NaN, and the vector exp keeps NaN.
double cross_entropy_f32_vector(index_t B, index_t C, const float* logits, const std::int64_t* labels,
                                const float* w, double c, float* out, float* grad) {
  return blocked_sum(B, C, [&](index_t r0, index_t r1) {
    thread_local std::vector<float> scratch;
    thread_local std::vector<float> row_max;
    const index_t rows = r1 - r0, n = rows * C;
    if (static_cast<index_t>(row_max.size()) < rows) row_max.resize(static_cast<size_t>(rows));
    float* e = grad ? grad + r0 * C : nullptr;
    if (!e) {
      if (static_cast<index_t>(scratch.size()) < n) scratch.resize(static_cast<size_t>(n));
      e = scratch.data();
    }
    const float* x = logits + r0 * C;
    for (index_t i = 0; i < rows; ++i) {
      const float* xi = x + i * C;
      float m = xi[0];
      for (index_t k = 1; k < C; ++k) m = xi[k] > m ? xi[k] : m;
      row_max[static_cast<size_t>(i)] = m;
      for (index_t k = 0; k < C; ++k) e[i * C + k] = xi[k] - m;
    }
    avx2::exp_nonpos_f32(n, e, e);
    double acc = 0.0;
    for (index_t i = 0; i < rows; ++i) {
      float* ei = e + i * C;
      double s = 0.0;
      for (index_t k = 0; k < C; ++k) s += static_cast<double>(ei[k]);
      const std::int64_t y = labels[r0 + i];
      const float wi = w ? w[r0 + i] : 1.0f;
      const double li = static_cast<double>(row_max[static_cast<size_t>(i)]) + std::log(s) -
                        static_cast<double>(x[i * C + y]);
      if (grad) {
        const float scale = static_cast<float>(c * static_cast<double>(wi) / s);
        for (index_t k = 0; k < C; ++k) ei[k] *= scale;
        ei[y] -= static_cast<float>(c * static_cast<double>(wi));
      }
      if (out) out[r0 + i] = static_cast<float>(static_cast<double>(wi) * li);
      acc += static_cast<double>(wi) * li;
    }
    return acc;
  });
}
#endif

}  // namespace

template <typename T>
void mse_loss(index_t B, index_t F, const T* pred, const T* target, const T* w, Reduction red,
              T* out, T* grad, T* loss) {
  elementwise_loss("mse_loss", B, F, pred, target, w, red, out, grad, loss, [](T p, T t, T& dl) {
    const T d = p - t;
    dl = T(2) * d;
    return d * d;
  });
}

template <typename T>
void bce_with_logits_loss(index_t B, index_t F, const T* logits, const T* target, const T* w,
                          Reduction red, T* out, T* grad, T* loss) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>) {
    if (use_avx2_fma()) {
      bce_with_logits_f32_vector(B, F, logits, target, w, red, out, grad, loss);
      return;
    }
  }
#endif
  elementwise_loss("bce_with_logits_loss", B, F, logits, target, w, red, out, grad, loss, [](T x, T t, T& dl) {
    // NOTE: max(x,0) - x t + log1p(e^-|x|) never exponentiates a positive number, so logits of
    // +-100 in float32 give finite values; the sigmoid reuses e = e^-|x| for its stable branch.
    // std::max(NaN, 0) returns its first argument, so a NaN logit reaches the loss.
    const T e = std::exp(-std::fabs(x));
    const T u = T(1) + e;
    const T inv = T(1) / u;
    const T sig = x >= T(0) ? inv : e * inv;
    dl = sig - t;
    // log1p(e) as log(u) * e / (u - 1) (Goldberg): a few ulps, and about half the time of glibc's
    // log1pf; u == 1 when e is below half an ulp of 1, where log1p(e) = e.
    const T lp = u == T(1) ? e : std::log(u) * (e / (u - T(1)));
    return std::max(x, T(0)) - x * t + lp;
  });
}

template <typename T>
void cross_entropy_loss(index_t B, index_t C, const T* logits, const std::int64_t* labels, const T* w,
                        Reduction red, T* out, T* grad, T* loss) {
  const char* op = "cross_entropy_loss";
  if (B < 0 || C < 1) throw ValueError(op_message(op, "needs at least one class, got C=" + std::to_string(C)));
  // Labels are checked before any output is written so a bad batch leaves the buffers alone and
  // the message names the first bad row whatever the thread count.
  for (index_t i = 0; i < B; ++i)
    if (labels[i] < 0 || labels[i] >= C)
      throw ValueError(op_message(op, "label " + std::to_string(labels[i]) + " in row " + std::to_string(i) +
                                          " is outside [0, " + std::to_string(C) + ")"));
  // For CE the per-sample loss is the sample's value (no feature average): F = 1 in the scale.
  const double c = reduction_scale(op, B, index_t(1), w, red);
  const bool write_out = red == Reduction::none && out;
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>) {
    if (use_avx2_fma()) {
      write_loss(loss, red, c, cross_entropy_f32_vector(B, C, logits, labels, w, c, write_out ? out : nullptr, grad));
      return;
    }
  }
#endif
  const double total = blocked_sum(B, C, [&](index_t r0, index_t r1) {
    double acc = 0.0;
    for (index_t i = r0; i < r1; ++i) {
      const T* xi = logits + i * C;
      const T wi = w ? w[i] : T(1);
      // A NaN logit must reach the loss: NaN > m is false, so the max scan alone would skip it;
      // it comes back through exp(NaN - m) in the sum below.
      T m = xi[0];
      for (index_t k = 1; k < C; ++k) m = xi[k] > m ? xi[k] : m;
      double s = 0.0;
      T* gi = grad ? grad + i * C : nullptr;
      if (gi) {
        for (index_t k = 0; k < C; ++k) {
          gi[k] = std::exp(xi[k] - m);
          s += static_cast<double>(gi[k]);
        }
      } else {
        for (index_t k = 0; k < C; ++k) s += static_cast<double>(std::exp(xi[k] - m));
      }
      const std::int64_t y = labels[i];
      const double li = static_cast<double>(m) + std::log(s) - static_cast<double>(xi[y]);
      if (gi) {
        const T scale = static_cast<T>(c * static_cast<double>(wi) / s);
        const T gs = static_cast<T>(c * static_cast<double>(wi));
        for (index_t k = 0; k < C; ++k) gi[k] *= scale;
        gi[y] -= gs;
      }
      if (write_out) out[i] = static_cast<T>(static_cast<double>(wi) * li);
      acc += static_cast<double>(wi) * li;
    }
    return acc;
  });
  write_loss(loss, red, c, total);
}

#define HEPNN_INSTANTIATE_LOSS(T)                                                                   \
  template void mse_loss<T>(index_t, index_t, const T*, const T*, const T*, Reduction, T*, T*, T*); \
  template void bce_with_logits_loss<T>(index_t, index_t, const T*, const T*, const T*, Reduction,  \
                                        T*, T*, T*);                                                \
  template void cross_entropy_loss<T>(index_t, index_t, const T*, const std::int64_t*, const T*,    \
                                      Reduction, T*, T*, T*);
HEPNN_INSTANTIATE_LOSS(float)
HEPNN_INSTANTIATE_LOSS(double)
#undef HEPNN_INSTANTIATE_LOSS

}  // namespace hepnn::cpu
