// Elementwise steps: broadcasting arithmetic (Add/Sub/Mul/Div/Pow/Mod on float32 and int64, the
// integer forms overflow-checked), comparisons and And (bool results), Where, activations
// (cpp/ops act_forward), unary math (Erf, Exp, Log, Sqrt, Neg, Abs, Not), Clip, Cast.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/error.hpp"
#include "ops/activation.hpp"
#include "runtime/ops.hpp"
#include "runtime/ops_iter.hpp"

namespace hepnn::rt {
namespace {

// y = f(a, b) with broadcasting; the four inner-stride cases are separate loops so each vectorises.
template <typename TA, typename TB, typename TY, typename F>
void binary(const StepPlan& p, const void* va, const void* vb, void* vy, F f) {
  const TA* a = static_cast<const TA*>(va);
  const TB* b = static_cast<const TB*>(vb);
  TY* y = static_cast<TY*>(vy);
  const bool fa = p.rank && p.sa[p.rank - 1], fb = p.rank && p.sb[p.rank - 1];
  rows(p, [&](int64_t o, int64_t oa, int64_t ob, int64_t, int64_t n) {
    const TA* x = a + oa;
    const TB* z = b + ob;
    TY* out = y + o;
    if (fa && fb) for (int64_t i = 0; i < n; ++i) out[i] = f(x[i], z[i]);
    else if (fa) { const TB bv = *z; for (int64_t i = 0; i < n; ++i) out[i] = f(x[i], bv); }
    else if (fb) { const TA av = *x; for (int64_t i = 0; i < n; ++i) out[i] = f(av, z[i]); }
    else { const TY v = f(*x, *z); for (int64_t i = 0; i < n; ++i) out[i] = v; }
  });
}

[[noreturn]] void int_fail(const Step& s, const char* what) { op_fail(s, std::string("int64 ") + what); }

// NOTE: Mod with fmod=0 gives the remainder the divisor's sign (NumPy's mod, including its
// results for infinite and zero divisors); fmod=1 is C's fmod, the dividend's sign.
inline float floor_mod(float u, float v) {
  float r = std::fmod(u, v);
  if (v == 0.0f) return r;
  if (r != 0.0f) {
    if ((v < 0.0f) != (r < 0.0f)) r += v;
  } else {
    r = std::copysign(0.0f, v);
  }
  return r;
}

void run_float_arith(const Step& s, const StepPlan& p, const void* a, const void* b, void* y) {
  switch (s.bin) {
    case BinOp::add: binary<float, float, float>(p, a, b, y, [](float u, float v) { return u + v; }); break;
    case BinOp::sub: binary<float, float, float>(p, a, b, y, [](float u, float v) { return u - v; }); break;
    case BinOp::mul: binary<float, float, float>(p, a, b, y, [](float u, float v) { return u * v; }); break;
    case BinOp::div: binary<float, float, float>(p, a, b, y, [](float u, float v) { return u / v; }); break;
    case BinOp::pow:
      if (p.e1 == Elem::f32) binary<float, float, float>(p, a, b, y, [](float u, float v) { return std::pow(u, v); });
      else binary<float, int64_t, float>(p, a, b, y, [](float u, int64_t v) { return float(std::pow(double(u), double(v))); });
      break;
    case BinOp::mod:
      if (s.flag) binary<float, float, float>(p, a, b, y, [](float u, float v) { return std::fmod(u, v); });
      else binary<float, float, float>(p, a, b, y, floor_mod);
      break;
    default: break;
  }
}

// NOTE: integer arithmetic is checked: shape arithmetic that overflows, divides by zero or
// computes INT64_MIN / -1 is an error, not undefined behaviour.
void run_int_arith(const Step& s, const StepPlan& p, const void* a, const void* b, void* y) {
  using I = int64_t;
  switch (s.bin) {
    case BinOp::add: binary<I, I, I>(p, a, b, y, [&](I u, I v) { I r; if (__builtin_add_overflow(u, v, &r)) int_fail(s, "overflow"); return r; }); break;
    case BinOp::sub: binary<I, I, I>(p, a, b, y, [&](I u, I v) { I r; if (__builtin_sub_overflow(u, v, &r)) int_fail(s, "overflow"); return r; }); break;
    case BinOp::mul: binary<I, I, I>(p, a, b, y, [&](I u, I v) { I r; if (__builtin_mul_overflow(u, v, &r)) int_fail(s, "overflow"); return r; }); break;
    case BinOp::div:
      binary<I, I, I>(p, a, b, y, [&](I u, I v) {
        if (v == 0) int_fail(s, "division by zero");
        if (v == -1 && u == std::numeric_limits<I>::min()) int_fail(s, "overflow");
        return u / v;
      });
      break;
    case BinOp::pow: {
      auto ipow = [&](double u, double v) {
        const double r = std::pow(u, v);
        if (!(r >= -9.2e18 && r <= 9.2e18)) int_fail(s, "overflow");
        return I(r);
      };
      if (p.e1 == Elem::i64) binary<I, I, I>(p, a, b, y, [&](I u, I v) { return ipow(double(u), double(v)); });
      else binary<I, float, I>(p, a, b, y, [&](I u, float v) { return ipow(double(u), double(v)); });
      break;
    }
    case BinOp::mod:
      binary<I, I, I>(p, a, b, y, [&](I u, I v) {
        if (v == 0) int_fail(s, "division by zero");
        if (v == -1) return I(0);  // NOTE: INT64_MIN % -1 is undefined in C++; the remainder is 0
        I r = u % v;
        if (!s.flag && r != 0 && ((r < 0) != (v < 0))) r += v;
        return r;
      });
      break;
    default: break;
  }
}

template <typename T>
void run_compare_t(const Step& s, const StepPlan& p, const void* a, const void* b, void* y) {
  using B = uint8_t;
  switch (s.bin) {
    case BinOp::equal: binary<T, T, B>(p, a, b, y, [](T u, T v) { return B(u == v); }); break;
    case BinOp::less: binary<T, T, B>(p, a, b, y, [](T u, T v) { return B(u < v); }); break;
    case BinOp::greater: binary<T, T, B>(p, a, b, y, [](T u, T v) { return B(u > v); }); break;
    case BinOp::logical_and: binary<T, T, B>(p, a, b, y, [](T u, T v) { return B(u && v); }); break;
    default: break;
  }
}

template <typename T>
void run_where(const StepPlan& p, const void* const* in, void* vy) {
  const uint8_t* c = static_cast<const uint8_t*>(in[0]);
  const T* a = static_cast<const T*>(in[1]);
  const T* b = static_cast<const T*>(in[2]);
  T* y = static_cast<T*>(vy);
  const int r = p.rank;
  const int64_t ic = r ? p.sa[r - 1] : 0, ia = r ? p.sb[r - 1] : 0, ib = r ? p.sc[r - 1] : 0;
  rows(p, [&](int64_t o, int64_t oc, int64_t oa, int64_t ob, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[o + i] = c[oc + i * ic] ? a[oa + i * ia] : b[ob + i * ib];
  });
}

template <typename T>
void run_clip(const StepPlan& p, const void* const* in, void* vy) {
  const T* x = static_cast<const T*>(in[0]);
  T* y = static_cast<T*>(vy);
  const T lo = in[1] ? *static_cast<const T*>(in[1]) : std::numeric_limits<T>::lowest();
  const T hi = in[2] ? *static_cast<const T*>(in[2]) : std::numeric_limits<T>::max();
  for (int64_t i = 0; i < p.n; ++i) {
    // NOTE: max first, then min: with min > max every element becomes max, as ONNX specifies.
    const T v = x[i] < lo ? lo : x[i];
    y[i] = v > hi ? hi : v;
  }
}

// NOTE: float -> int64 of NaN or out-of-range values is undefined in C++; such values become
// INT64_MIN, which is what x86 (and so NumPy there) produces.
inline int64_t to_int(float v) {
  return v >= -9.2233715e18f && v < 9.2233715e18f ? int64_t(v) : std::numeric_limits<int64_t>::min();
}

template <typename From>
void cast_from(Elem to, int64_t n, const From* x, void* vy) {
  if (to == Elem::f32) {
    float* y = static_cast<float*>(vy);
    for (int64_t i = 0; i < n; ++i) y[i] = float(x[i]);
  } else if (to == Elem::i64) {
    int64_t* y = static_cast<int64_t*>(vy);
    if constexpr (std::is_same_v<From, float>) for (int64_t i = 0; i < n; ++i) y[i] = to_int(x[i]);
    else for (int64_t i = 0; i < n; ++i) y[i] = int64_t(x[i]);
  } else {
    uint8_t* y = static_cast<uint8_t*>(vy);
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] != From(0);
  }
}

void run_unary(const Step& s, const StepPlan& p, const void* vx, void* vy) {
  const int64_t n = p.n;
  if (p.e0 == Elem::f32) {
    const float* x = static_cast<const float*>(vx);
    float* y = static_cast<float*>(vy);
    switch (s.un) {
      case UnOp::erf: for (int64_t i = 0; i < n; ++i) y[i] = std::erf(x[i]); break;
      case UnOp::exp: for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]); break;
      case UnOp::log: for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i]); break;
      case UnOp::sqrt: for (int64_t i = 0; i < n; ++i) y[i] = std::sqrt(x[i]); break;
      case UnOp::neg: for (int64_t i = 0; i < n; ++i) y[i] = -x[i]; break;
      case UnOp::abs: for (int64_t i = 0; i < n; ++i) y[i] = std::fabs(x[i]); break;
      default: break;
    }
  } else if (p.e0 == Elem::i64) {
    const int64_t* x = static_cast<const int64_t*>(vx);
    int64_t* y = static_cast<int64_t*>(vy);
    for (int64_t i = 0; i < n; ++i) {
      // NOTE: -INT64_MIN overflows; it is refused like other integer overflow.
      if (x[i] == std::numeric_limits<int64_t>::min()) int_fail(s, "overflow");
      y[i] = s.un == UnOp::neg ? -x[i] : x[i] < 0 ? -x[i] : x[i];
    }
  } else {
    const uint8_t* x = static_cast<const uint8_t*>(vx);
    uint8_t* y = static_cast<uint8_t*>(vy);
    for (int64_t i = 0; i < n; ++i) y[i] = !x[i];
  }
}

}  // namespace

void infer_elementwise(const Step& s, const std::vector<InferIn>& in, Shape& out, StepPlan& p) {
  switch (s.kind) {
    case StepKind::binary:
    case StepKind::compare: out = broadcast_plan(s, *in[0].shape, *in[1].shape, nullptr, p); break;
    case StepKind::where: out = broadcast_plan(s, *in[0].shape, *in[1].shape, in[2].shape, p); break;
    case StepKind::clip:
      for (size_t i = 1; i < in.size(); ++i)
        if (in[i].shape && prod(*in[i].shape, 0, in[i].shape->size()) != 1)
          op_fail(s, std::string(i == 1 ? "min" : "max") + " must be a scalar, got shape " + shape_str(*in[i].shape));
      out = *in[0].shape;
      break;
    default: out = *in[0].shape; break;
  }
}

void run_elementwise(const Step& s, const StepPlan& p, const void* const* in, void* y) {
  switch (s.kind) {
    case StepKind::binary:
      if (p.e0 == Elem::f32) run_float_arith(s, p, in[0], in[1], y);
      else run_int_arith(s, p, in[0], in[1], y);
      break;
    case StepKind::compare:
      if (p.e0 == Elem::f32) run_compare_t<float>(s, p, in[0], in[1], y);
      else if (p.e0 == Elem::i64) run_compare_t<int64_t>(s, p, in[0], in[1], y);
      else run_compare_t<uint8_t>(s, p, in[0], in[1], y);
      break;
    case StepKind::where:
      if (s.elem == Elem::f32) run_where<float>(p, in, y);
      else if (s.elem == Elem::i64) run_where<int64_t>(p, in, y);
      else run_where<uint8_t>(p, in, y);
      break;
    case StepKind::act: {
      float* out = static_cast<float*>(y);
      cpu::act_forward<float>(s.act, p.n, static_cast<const float*>(in[0]), out, s.alpha);
      if (s.scale != 1.0f)
        for (int64_t i = 0; i < p.n; ++i) out[i] *= s.scale;
      break;
    }
    case StepKind::unary: run_unary(s, p, in[0], y); break;
    case StepKind::clip:
      if (p.e0 == Elem::f32) run_clip<float>(p, in, y);
      else run_clip<int64_t>(p, in, y);
      break;
    case StepKind::cast:
      if (p.e0 == Elem::f32) cast_from(s.elem, p.n, static_cast<const float*>(in[0]), y);
      else if (p.e0 == Elem::i64) cast_from(s.elem, p.n, static_cast<const int64_t*>(in[0]), y);
      else cast_from(s.elem, p.n, static_cast<const uint8_t*>(in[0]), y);
      break;
    default: break;
  }
}

}  // namespace hepnn::rt
