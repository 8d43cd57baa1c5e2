// Fused scaled dot-product attention on the CPU: argument checks, the thread-pool split and the
// float32 AVX2 / portable dispatch around the tile loops of attention_tile.hpp.
// Forward: tasks over (b, h, 32-query tile), keys in tiles of 128 with an online softmax.
// Backward: tasks over (b, h) (or b when a head-shared bias needs its gradient), probabilities
// recomputed tile by tile from the saved log-sum-exp; no Lq x Lk matrix is ever held.
// NOTE (CPU, L = 128): tile-local was kept over materialising P. With 128-key tiles a jet's keys
// are one tile, so a task already holds its whole 64 x 128 score block (32 KB, cache resident)
// and no arithmetic would be saved; a materialised (B,H,L,L) P would add 4 B H L^2 bytes (33 MB
// at the benchmark's shape) of memory traffic per pass. Padded keys are dropped before the GEMMs.
#include "ops/attention.hpp"

#include <cmath>
#include <string>
#include <type_traits>

#include "core/cpu_features.hpp"
#include "core/error.hpp"
#include "core/threadpool.hpp"
#include "ops/attention_tile.hpp"

namespace hepnn::cpu {
namespace {

struct VecPortable {
  template <typename T>
  T max(index_t n, const T* x) const {
    T m = x[0];
    for (index_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
  }
  template <typename T>
  double exp_sum(index_t n, const T* x, T shift, T* y) const {
    double s = 0.0;
    for (index_t i = 0; i < n; ++i) s += (y[i] = std::exp(x[i] - shift));
    return s;
  }
  template <typename T>
  void exp_nonpos(index_t n, const T* x, T* y) const {
    for (index_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
  }
};

template <typename T>
attn::Problem<T> problem(const char* op, index_t B, index_t H, index_t Lq, index_t Lk, index_t D,
                         const T* q, const T* k, const T* v, const std::uint8_t* key_mask,
                         const T* bias, index_t bias_heads, double scale) {
  check_value(B >= 0 && H >= 1 && Lq >= 0 && Lk >= 0 && D >= 1, op,
              "needs B, Lq, Lk >= 0 and H, D >= 1");
  check_value(!bias || bias_heads == 1 || bias_heads == H, op,
              "bias_heads must be 1 or H = " + std::to_string(H) + ", got " +
                  std::to_string(bias_heads));
  check_value(std::isfinite(scale), op, "scale must be finite");
  return {B, H, Lq, Lk, D, q, k, v, key_mask, bias, bias_heads, static_cast<T>(scale)};
}

}  // namespace

template <typename T>
void attention_forward(index_t B, index_t H, index_t Lq, index_t Lk, index_t D, const T* q,
                       const T* k, const T* v, const std::uint8_t* key_mask, const T* bias,
                       index_t bias_heads, double scale, T* out, T* lse) {
  const auto P = problem("attention_forward", B, H, Lq, Lk, D, q, k, v, key_mask, bias, bias_heads, scale);
  const index_t tasks = B * H * ((Lq + attn::kQTile - 1) / attn::kQTile);
  parallel_for(tasks, 1, [&](index_t t0, index_t t1) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
    if constexpr (std::is_same_v<T, float>)
      if (avx2_f32()) return attn::forward_f32_avx2(P, t0, t1, out, lse);
#endif
    run_forward(P, t0, t1, out, lse, VecPortable{});
  });
}

template <typename T>
void attention_backward(index_t B, index_t H, index_t Lq, index_t Lk, index_t D, const T* q,
                        const T* k, const T* v, const std::uint8_t* key_mask, const T* bias,
                        index_t bias_heads, double scale, const T* out, const T* lse,
                        const T* dout, T* dq, T* dk, T* dv, T* dbias) {
  const auto P = problem("attention_backward", B, H, Lq, Lk, D, q, k, v, key_mask, bias, bias_heads, scale);
  check_value(!dbias || bias, "attention_backward", "dbias needs the bias of the forward");
  const bool per_batch = dbias && bias_heads == 1 && H > 1;
  const index_t tasks = per_batch ? B : B * H;
  parallel_for(tasks, 1, [&](index_t t0, index_t t1) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
    if constexpr (std::is_same_v<T, float>)
      if (avx2_f32())
        return attn::backward_f32_avx2(P, t0, t1, per_batch, out, lse, dout, dq, dk, dv, dbias);
#endif
    run_backward(P, t0, t1, per_batch, out, lse, dout, dq, dk, dv, dbias, VecPortable{});
  });
}

#define HEPNN_ATTN_INSTANTIATE(T)                                                                 \
  template void attention_forward<T>(index_t, index_t, index_t, index_t, index_t, const T*,       \
                                     const T*, const T*, const std::uint8_t*, const T*, index_t,  \
                                     double, T*, T*);                                             \
  template void attention_backward<T>(index_t, index_t, index_t, index_t, index_t, const T*,      \
                                      const T*, const T*, const std::uint8_t*, const T*, index_t, \
                                      double, const T*, const T*, const T*, T*, T*, T*, T*);
HEPNN_ATTN_INSTANTIATE(float)
HEPNN_ATTN_INSTANTIATE(double)
#undef HEPNN_ATTN_INSTANTIATE

}  // namespace hepnn::cpu
