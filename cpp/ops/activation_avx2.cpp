// AVX2+FMA float32 activations, 8 lanes at a time: vector exp (non-positive arguments), expm1,
// log1p on [0, 1] and erfc, each accurate to a few float32 ulps, then the activations and their
// derivatives on top. Compiled with -mavx2 -mfma; activation.cpp calls it when use_avx2_fma().
#include "ops/activation_avx2.hpp"

#include <immintrin.h>

namespace hepnn::cpu::avx2 {
namespace {

using V = __m256;

inline V set1(float v) { return _mm256_set1_ps(v); }
inline V sign_bit() { return set1(-0.0f); }
inline V abs(V x) { return _mm256_andnot_ps(sign_bit(), x); }
inline V neg_abs(V x) { return _mm256_or_ps(sign_bit(), x); }
// where(c, a, b): a where the mask c is set, else b.
inline V where(V c, V a, V b) { return _mm256_blendv_ps(b, a, c); }
inline V gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
inline V lt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
inline V is_nan(V a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V add(V a, V b) { return _mm256_add_ps(a, b); }
inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }

// exp(x), meant for x <= 0 (every caller's argument is): n = round(x / ln 2), r = x - n ln 2 with
// ln 2 split in two so r is exact, exp(r) by its Taylor series to r^7 (|r| <= 0.35: 5e-9
// relative), times 2^n built in the exponent bits. Below -87.34 (the smallest normal float) the
// result is 0. NOTE: MAXPS returns its second operand when one is NaN, so NaN passes the clamp.
inline V exp_neg(V x) {
  const V lo = set1(-87.336544f);
  const V xc = _mm256_max_ps(lo, x);
  const V n = _mm256_round_ps(mul(xc, set1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  V r = _mm256_fnmadd_ps(n, set1(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, set1(-2.12194440e-4f), r);
  V p = set1(1.0f / 5040);
  p = fma(p, r, set1(1.0f / 720));
  p = fma(p, r, set1(1.0f / 120));
  p = fma(p, r, set1(1.0f / 24));
  p = fma(p, r, set1(1.0f / 6));
  p = fma(p, r, set1(0.5f));
  p = fma(p, r, set1(1.0f));
  p = fma(p, r, set1(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const V e = mul(p, _mm256_castsi256_ps(bits));
  return where(lt(x, lo), _mm256_setzero_ps(), e);
}

// expm1(x) for x <= 0: the series x (1 + x/2 + ... + x^8/9!) near 0 (relative 1e-8 at |x| = 0.5),
// where exp(x) - 1 would lose the small result to cancellation; exp(x) - 1 further out.
inline V expm1_neg(V x) {
  V q = set1(1.0f / 362880);
  q = fma(q, x, set1(1.0f / 40320));
  q = fma(q, x, set1(1.0f / 5040));
  q = fma(q, x, set1(1.0f / 720));
  q = fma(q, x, set1(1.0f / 120));
  q = fma(q, x, set1(1.0f / 24));
  q = fma(q, x, set1(1.0f / 6));
  q = fma(q, x, set1(0.5f));
  q = fma(q, x, set1(1.0f));
  const V small = mul(x, q);
  const V large = sub(exp_neg(x), set1(1.0f));
  return where(lt(abs(x), set1(0.5f)), small, large);
}

// log1p(u) for u in [0, 1] as 2 atanh(s), s = u / (2 + u) <= 1/3: the odd series to s^15 is
// good to 3e-8 relative and, unlike log(1 + u), keeps tiny u exact.
inline V log1p_unit(V u) {
  const V s = _mm256_div_ps(u, add(set1(2.0f), u));
  const V s2 = mul(s, s);
  V p = set1(1.0f / 15);
  p = fma(p, s2, set1(1.0f / 13));
  p = fma(p, s2, set1(1.0f / 11));
  p = fma(p, s2, set1(1.0f / 9));
  p = fma(p, s2, set1(1.0f / 7));
  p = fma(p, s2, set1(1.0f / 5));
  p = fma(p, s2, set1(1.0f / 3));
  p = fma(p, s2, set1(1.0f));
  return mul(add(s, s), p);
}

// erfc(a) for a >= 0 as t exp(-a^2 + P(t)), t = 1 / (1 + a/2). P is our own least-squares fit of
// degree 9 (log(erfc(a) / t) + a^2 on Chebyshev nodes of t in (0, 1]): 1e-7 relative for all a.
inline V erfc_pos(V a) {
  const V t = _mm256_div_ps(set1(1.0f), fma(a, set1(0.5f), set1(1.0f)));
  V p = set1(0.1710550282220546f);
  p = fma(p, t, set1(-0.8230179712901575f));
  p = fma(p, t, set1(1.4902474785719089f));
  p = fma(p, t, set1(-1.1370980863611573f));
  p = fma(p, t, set1(0.2800993765041753f));
  p = fma(p, t, set1(-0.1867718564810964f));
  p = fma(p, t, set1(0.09689585876387119f));
  p = fma(p, t, set1(0.374077996282408f));
  p = fma(p, t, set1(1.0000244740234516f));
  p = fma(p, t, set1(-1.2655122383916995f));
  return mul(t, exp_neg(_mm256_fnmadd_ps(a, a, p)));
}

// erfc(z) for any z: erfc(-a) = 2 - erfc(a).
inline V erfc_any(V z) {
  const V c = erfc_pos(abs(z));
  return where(lt(z, _mm256_setzero_ps()), sub(set1(2.0f), c), c);
}

// exp of -|x| only, so large |x| neither overflows nor loses the small tail.
inline V sigmoid(V x) {
  const V e = exp_neg(neg_abs(x));
  const V r = _mm256_div_ps(set1(1.0f), add(set1(1.0f), e));
  return where(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ), r, mul(e, r));
}

// tanh(|x|) = -m / (2 + m) with m = expm1(-2|x|): accurate near 0 too; the sign is copied back.
inline V tanh(V x) {
  const V m = expm1_neg(mul(set1(-2.0f), abs(x)));
  const V t = _mm256_div_ps(sub(_mm256_setzero_ps(), m), add(set1(2.0f), m));
  return _mm256_or_ps(t, _mm256_and_ps(x, sign_bit()));
}

// Same constants as the portable formulas in activation.cpp.
constexpr float kSeluAlpha = 1.6732632423543772f;
constexpr float kSeluScale = 1.0507009873554805f;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kGeluCubic = 0.044715f;

inline V gelu_tanh_2u(V x) {
  const V x2 = mul(x, x);
  return mul(mul(set1(2.0f * kSqrt2OverPi), x), fma(set1(kGeluCubic), x2, set1(1.0f)));
}

// Past |x| = 40 the gelu derivatives are exactly 1 or 0 in float; the guard keeps +-inf from
// producing inf * 0.
inline V gelu_tail(V x, V d) {
  const V tail = where(gt(x, _mm256_setzero_ps()), set1(1.0f), _mm256_setzero_ps());
  return where(gt(abs(x), set1(40.0f)), tail, d);
}

// Applies f to 8 lanes at a time; the last partial vector goes through a zero-padded buffer.
template <typename F>
void map1(index_t n, const float* x, float* y, F f) {
  index_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {};
    for (index_t j = i; j < n; ++j) buf[j - i] = x[j];
    _mm256_store_ps(buf, f(_mm256_load_ps(buf)));
    for (index_t j = i; j < n; ++j) y[j] = buf[j - i];
  }
}

// dx = dy * f(x), same tail handling.
template <typename F>
void map_grad(index_t n, const float* x, const float* dy, float* dx, F f) {
  index_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dx + i, mul(_mm256_loadu_ps(dy + i), f(_mm256_loadu_ps(x + i))));
  if (i < n) {
    alignas(32) float bx[8] = {}, bg[8] = {};
    for (index_t j = i; j < n; ++j) {
      bx[j - i] = x[j];
      bg[j - i] = dy[j];
    }
    _mm256_store_ps(bx, mul(_mm256_load_ps(bg), f(_mm256_load_ps(bx))));
    for (index_t j = i; j < n; ++j) dx[j] = bx[j - i];
  }
}

}  // namespace

bool act_forward_f32(Act act, index_t n, const float* x, float* y, float alpha) {
  const V zero = _mm256_setzero_ps();
  switch (act) {
    case Act::elu:
      map1(n, x, y, [&](V v) { return where(gt(v, zero), v, mul(set1(alpha), expm1_neg(_mm256_min_ps(zero, v)))); });
      return true;
    case Act::selu:
      map1(n, x, y, [&](V v) {
        const V neg = mul(set1(kSeluAlpha), expm1_neg(_mm256_min_ps(zero, v)));
        return mul(set1(kSeluScale), where(gt(v, zero), v, neg));
      });
      return true;
    case Act::gelu_erf:
      map1(n, x, y, [&](V v) { return mul(mul(set1(0.5f), v), erfc_any(mul(v, set1(-kInvSqrt2)))); });
      return true;
    case Act::gelu_tanh:
      map1(n, x, y, [&](V v) { return mul(v, sigmoid(gelu_tanh_2u(v))); });
      return true;
    case Act::sigmoid:
      map1(n, x, y, [&](V v) { return sigmoid(v); });
      return true;
    case Act::tanh:
      map1(n, x, y, [&](V v) { return tanh(v); });
      return true;
    case Act::softplus:
      // max(x, 0) + log1p(exp(-|x|)); above the threshold 20, x itself like torch.
      map1(n, x, y, [&](V v) {
        const V sp = add(_mm256_max_ps(v, zero), log1p_unit(exp_neg(neg_abs(v))));
        return where(gt(v, set1(20.0f)), v, sp);
      });
      return true;
    default:
      return false;
  }
}

bool act_backward_f32(Act act, index_t n, const float* x, const float* dy, float* dx, float alpha) {
  const V zero = _mm256_setzero_ps();
  switch (act) {
    case Act::elu:
      map_grad(n, x, dy, dx, [&](V v) { return where(gt(v, zero), set1(1.0f), mul(set1(alpha), exp_neg(_mm256_min_ps(zero, v)))); });
      return true;
    case Act::selu:
      map_grad(n, x, dy, dx, [&](V v) {
        const V neg = mul(set1(kSeluAlpha), exp_neg(_mm256_min_ps(zero, v)));
        return mul(set1(kSeluScale), where(gt(v, zero), set1(1.0f), neg));
      });
      return true;
    case Act::gelu_erf:
      map_grad(n, x, dy, dx, [&](V v) {
        const V cdf = mul(set1(0.5f), erfc_any(mul(v, set1(-kInvSqrt2))));
        const V pdf = mul(set1(kInvSqrt2Pi), exp_neg(mul(set1(-0.5f), mul(v, v))));
        return gelu_tail(v, fma(v, pdf, cdf));
      });
      return true;
    case Act::gelu_tanh:
      map_grad(n, x, dy, dx, [&](V v) {
        const V s = sigmoid(gelu_tanh_2u(v));
        const V du = mul(set1(kSqrt2OverPi), fma(set1(3.0f * kGeluCubic), mul(v, v), set1(1.0f)));
        const V d = fma(mul(mul(set1(2.0f), v), mul(s, sub(set1(1.0f), s))), du, s);
        return gelu_tail(v, d);
      });
      return true;
    case Act::softplus:
      map_grad(n, x, dy, dx, [&](V v) { return where(gt(v, set1(20.0f)), set1(1.0f), sigmoid(v)); });
      return true;
    default:
      return false;
  }
}

double exp_shifted_sum_f32(index_t n, const float* x, float shift, float* y) {
  const V s = set1(shift);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  index_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const V e = exp_neg(sub(_mm256_loadu_ps(x + i), s));
    if (y) _mm256_storeu_ps(y + i, e);
    acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(acc0, acc1));
  double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  if (i < n) {
    alignas(32) float buf[8];
    for (index_t j = 0; j < 8; ++j) buf[j] = i + j < n ? x[i + j] - shift : -1.0e30f;  // pads give 0
    _mm256_store_ps(buf, exp_neg(_mm256_load_ps(buf)));
    for (index_t j = i; j < n; ++j) {
      if (y) y[j] = buf[j - i];
      sum += buf[j - i];
    }
  }
  return sum;
}

void exp_nonpos_f32(index_t n, const float* x, float* y) {
  map1(n, x, y, [](V v) { return exp_neg(v); });
}

float max_f32(index_t n, const float* x) {
  V m0 = set1(x[0]), m1 = m0;
  index_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_max_ps(m0, m1));
  float m = lanes[0];
  for (int j = 1; j < 8; ++j) m = lanes[j] > m ? lanes[j] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

}  // namespace hepnn::cpu::avx2
