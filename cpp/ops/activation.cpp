// Elementwise activations on the CPU: one scalar formula per activation (shared with the fused
// linear kernel through act_apply/act_derivative) and bulk loops that inline it, split over the
// thread pool. Float32 exp/erf/tanh-based activations take activation_avx2.cpp when enabled.
#include "ops/activation.hpp"

#include <cmath>
#include <type_traits>

#include "core/cpu_features.hpp"
#include "core/threadpool.hpp"
#if defined(HEPNN_HAVE_AVX2_KERNELS)
#include "ops/activation_avx2.hpp"
#endif

namespace hepnn::cpu {
namespace {

// Below this many elements the pool's wake-up costs more than the loop.
constexpr index_t kGrain = 32768;

// Compile-time activation tag: the switch runs once per call, the loop body inlines.
template <Act A>
using ActTag = std::integral_constant<Act, A>;

// Constants of selu (torch's, from the self-normalising networks paper) and the two gelu forms.
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kInvSqrt2 = 0.70710678118654752440084436210485;
constexpr double kInvSqrt2Pi = 0.39894228040143267793994605993438;
constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;
constexpr double kGeluCubic = 0.044715;
// softplus with torch's default beta = 1, threshold = 20: above it the result is x itself.
constexpr double kSoftplusThreshold = 20.0;

// NOTE: branches that return a constant (relu's 0, leaky_relu's slope) would swallow a NaN input;
// this keeps it so that NaN propagates through forward and backward alike.
template <typename T>
inline T keep_nan(T x, T v) {
  return x != x ? x : v;
}
// Two flat selects, no nested branch, so that the compiler turns them into vector blends.
template <typename T>
inline T step(T x, T neg) {
  const T v = x > T(0) ? T(1) : neg;
  return keep_nan(x, v);
}

// exp of a non-positive argument only, so large |x| neither overflows nor loses the small tail.
template <typename T>
inline T sigmoid(T x) {
  const T e = std::exp(-std::fabs(x));
  const T r = T(1) / (T(1) + e);
  return x >= T(0) ? r : e * r;
}

// gelu_tanh = 0.5 x (1 + tanh(u)) = x sigmoid(2u): the sigmoid form keeps the tail for x << 0.
template <typename T>
inline T gelu_tanh_u(T x) {
  return T(kSqrt2OverPi) * (x + T(kGeluCubic) * x * x * x);
}

template <Act A, typename T>
inline T act_scalar(T x, T alpha) {
  if constexpr (A == Act::none) {
    return x;
  } else if constexpr (A == Act::relu) {
    const T v = x > T(0) ? x : T(0);
    return keep_nan(x, v);
  } else if constexpr (A == Act::leaky_relu) {
    // Split into the two halves, each a plain select: GCC keeps `x > 0 ? x : x * alpha` as a
    // branch (mispredicted half the time on random signs) but vectorises this form.
    const T pos = x > T(0) ? x : T(0);
    const T neg = x > T(0) ? T(0) : x;
    return pos + alpha * neg;
  } else if constexpr (A == Act::elu) {
    return x > T(0) ? x : alpha * std::expm1(x);
  } else if constexpr (A == Act::selu) {
    return T(kSeluScale) * (x > T(0) ? x : T(kSeluAlpha) * std::expm1(x));
  } else if constexpr (A == Act::gelu_erf) {
    // erfc(-z) rather than 1 + erf(z): no cancellation for large negative x.
    return T(0.5) * x * std::erfc(-x * T(kInvSqrt2));
  } else if constexpr (A == Act::gelu_tanh) {
    return x * sigmoid(T(2) * gelu_tanh_u(x));
  } else if constexpr (A == Act::sigmoid) {
    return sigmoid(x);
  } else if constexpr (A == Act::tanh) {
    return std::tanh(x);
  } else {
    static_assert(A == Act::softplus);
    return x > T(kSoftplusThreshold) ? x : std::log1p(std::exp(x));
  }
}

// d act / dx at x (y = act(x)). NOTE: at the kinks the conventions are torch's: relu'(0) = 0,
// leaky_relu'(0) = slope, elu'(0) = alpha.
template <Act A, typename T>
inline T act_grad_scalar(T x, T y, T alpha) {
  if constexpr (A == Act::none) {
    return T(1);
  } else if constexpr (A == Act::relu) {
    return step(x, T(0));
  } else if constexpr (A == Act::leaky_relu) {
    return step(x, alpha);
  } else if constexpr (A == Act::elu) {
    return x > T(0) ? T(1) : alpha * std::exp(x);
  } else if constexpr (A == Act::selu) {
    return T(kSeluScale) * (x > T(0) ? T(1) : T(kSeluAlpha) * std::exp(x));
  } else if constexpr (A == Act::gelu_erf) {
    // Past |x| = 40 the density term is 0 in double; the guard keeps x = +-inf from giving inf*0.
    if (std::fabs(x) > T(40)) return x > T(0) ? T(1) : T(0);
    return T(0.5) * std::erfc(-x * T(kInvSqrt2)) + x * T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
  } else if constexpr (A == Act::gelu_tanh) {
    if (std::fabs(x) > T(40)) return x > T(0) ? T(1) : T(0);
    const T s = sigmoid(T(2) * gelu_tanh_u(x));
    const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x * x);
    return s + T(2) * x * s * (T(1) - s) * du;
  } else if constexpr (A == Act::sigmoid) {
    return y * (T(1) - y);
  } else if constexpr (A == Act::tanh) {
    return T(1) - y * y;
  } else {
    static_assert(A == Act::softplus);
    return x > T(kSoftplusThreshold) ? T(1) : sigmoid(x);
  }
}

template <typename F>
void dispatch(Act act, F&& f) {
  switch (act) {
    case Act::none: return f(ActTag<Act::none>{});
    case Act::relu: return f(ActTag<Act::relu>{});
    case Act::leaky_relu: return f(ActTag<Act::leaky_relu>{});
    case Act::elu: return f(ActTag<Act::elu>{});
    case Act::selu: return f(ActTag<Act::selu>{});
    case Act::gelu_erf: return f(ActTag<Act::gelu_erf>{});
    case Act::gelu_tanh: return f(ActTag<Act::gelu_tanh>{});
    case Act::sigmoid: return f(ActTag<Act::sigmoid>{});
    case Act::tanh: return f(ActTag<Act::tanh>{});
    case Act::softplus: return f(ActTag<Act::softplus>{});
  }
}

}  // namespace

template <typename T>
T act_apply(Act act, T x, double alpha) {
  T out{};
  dispatch(act, [&](auto tag) { out = act_scalar<decltype(tag)::value>(x, static_cast<T>(alpha)); });
  return out;
}

template <typename T>
T act_derivative(Act act, T x, T y, double alpha) {
  T out{};
  dispatch(act, [&](auto tag) { out = act_grad_scalar<decltype(tag)::value>(x, y, static_cast<T>(alpha)); });
  return out;
}

namespace {

// The loops take every operand by value: a captured reference to alpha could alias the output
// as far as the compiler knows, which stops it from vectorising.
template <Act A, typename T>
void forward_loop(index_t n, const T* x, T* y, T a) {
  for (index_t i = 0; i < n; ++i) y[i] = act_scalar<A>(x[i], a);
}

template <Act A, typename T>
void backward_loop(index_t n, const T* x, const T* y, const T* dy, T* dx, T a) {
  for (index_t i = 0; i < n; ++i) dx[i] = dy[i] * act_grad_scalar<A>(x[i], y[i], a);
}

// The AVX2 float32 versions of the exp/erf/tanh-based activations (libm is scalar); they report
// false for the activations they leave to the portable loops.
template <typename T>
bool forward_avx2(Act act, index_t n, const T* x, T* y, T a) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>) {
    static const bool enabled = use_avx2_fma();
    return enabled && avx2::act_forward_f32(act, n, x, y, a);
  }
#endif
  return false;
}

template <typename T>
bool backward_avx2(Act act, index_t n, const T* x, const T* dy, T* dx, T a) {
#if defined(HEPNN_HAVE_AVX2_KERNELS)
  if constexpr (std::is_same_v<T, float>) {
    static const bool enabled = use_avx2_fma();
    return enabled && avx2::act_backward_f32(act, n, x, dy, dx, a);
  }
#endif
  return false;
}

}  // namespace

template <typename T>
void act_forward(Act act, index_t n, const T* x, T* y, double alpha) {
  const T a = static_cast<T>(alpha);
  dispatch(act, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    parallel_for(n, kGrain, [&](index_t b, index_t e) {
      if (!forward_avx2(A, e - b, x + b, y + b, a)) forward_loop<A>(e - b, x + b, y + b, a);
    });
  });
}

template <typename T>
void act_backward(Act act, index_t n, const T* x, const T* y, const T* dy, T* dx, double alpha) {
  const T a = static_cast<T>(alpha);
  dispatch(act, [&](auto tag) {
    constexpr Act A = decltype(tag)::value;
    parallel_for(n, kGrain, [&](index_t b, index_t e) {
      if (!backward_avx2(A, e - b, x + b, dy + b, dx + b, a))
        backward_loop<A>(e - b, x + b, y + b, dy + b, dx + b, a);
    });
  });
}

template float act_apply<float>(Act, float, double);
template double act_apply<double>(Act, double, double);
template float act_derivative<float>(Act, float, float, double);
template double act_derivative<double>(Act, double, double, double);
template void act_forward<float>(Act, index_t, const float*, float*, double);
template void act_forward<double>(Act, index_t, const double*, double*, double);
template void act_backward<float>(Act, index_t, const float*, const float*, const float*, float*, double);
template void act_backward<double>(Act, index_t, const double*, const double*, const double*, double*,
                                   double);

}  // namespace hepnn::cpu
