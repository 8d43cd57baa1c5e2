// DisCo loss on the CPU: the weighted squared distance correlation and its gradient with respect
// to x in O(B^2) time and O(B) memory, threaded over fixed row tiles (B = events).
// Pass 1 (row sums of a, b and a*b) gives the value; pass 2 (sign-weighted row sums) the gradient.
#include "ops/disco.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/threadpool.hpp"

namespace hepnn::cpu {
namespace {

constexpr const char* kOp = "disco";
// Rows per parallel task: fixed, so each row's sums run in one order whatever the thread count.
constexpr index_t kTileRows = 64;
// Rows sharing one sweep over the columns: their accumulators stay in registers and each loaded
// column value is used kGroup times.
constexpr int kGroup = 4;

template <typename T>
void check_inputs(index_t B, const T* x, const T* y, const T* w, double power) {
  if (B < 2) throw ValueError(op_message(kOp, "needs at least 2 events, got B=" + std::to_string(B)));
  if (!(std::isfinite(power) && power > 0.0))
    throw ValueError(op_message(kOp, "power must be finite and > 0, got " + std::to_string(power)));
  auto finite = [&](const T* v, const char* name) {
    for (index_t i = 0; i < B; ++i)
      if (!std::isfinite(static_cast<double>(v[i])))
        throw ValueError(op_message(kOp, std::string(name) + " has a non-finite value at index " + std::to_string(i)));
  };
  finite(x, "x");
  finite(y, "y");
  if (!w) return;
  finite(w, "weight");
  double sum = 0.0;
  for (index_t i = 0; i < B; ++i) {
    if (w[i] < T(0))
      throw ValueError(op_message(kOp, "weight has a negative value at index " + std::to_string(i)));
    sum += static_cast<double>(w[i]);
  }
  if (!(sum > 0.0)) throw ValueError(op_message(kOp, "event weights sum to zero"));
}

// Inputs in double (every sum accumulates in double whatever T is) plus the per-row results.
struct Work {
  std::vector<double> x, y, p;  // p = normalised weights
  std::vector<double> abar, bbar, rab;  // sum_j p_j a_ij, sum_j p_j b_ij, sum_j p_j a_ij b_ij
};

#if defined(__GNUC__)
// GCC/Clang vector types make the column lanes explicit: the compiler does not reorder a floating
// sum over j by itself. Lane l sums columns j = l (mod kLanes); lanes are added in a fixed order.
constexpr index_t kLanes = 2;
typedef double Vd __attribute__((vector_size(16)));
typedef long long Vi __attribute__((vector_size(16)));
inline Vd load(const double* p) {
  Vd v;
  __builtin_memcpy(&v, p, sizeof(Vd));
  return v;
}
inline Vd vabs(Vd v) { return (Vd)((Vi)v & (Vi){~(1LL << 63), ~(1LL << 63)}); }
// sign(d) * p (0 at d == 0) without branches: the signs of random pairs defeat a predictor.
inline Vd signed_by(Vd d, Vd p) { return (Vd)((Vi)p & (Vi)(d > 0.0)) - (Vd)((Vi)p & (Vi)(d < 0.0)); }
inline double lanes_sum(Vd v) { return v[0] + v[1]; }
#else
constexpr index_t kLanes = 1;
#endif

// Rows [i0, i0 + G): abar, bbar and rab in one sweep over the columns.
template <int G>
void row_sums(Work& k, index_t B, index_t i0) {
  const double* x = k.x.data();
  const double* y = k.y.data();
  const double* p = k.p.data();
  double xi[G], yi[G], sa[G], sb[G], sab[G];
  for (int r = 0; r < G; ++r) {
    xi[r] = x[i0 + r];
    yi[r] = y[i0 + r];
    sa[r] = sb[r] = sab[r] = 0.0;
  }
  index_t j = 0;
#if defined(__GNUC__)
  Vd va[G], vb[G], vab[G];
  for (int r = 0; r < G; ++r) va[r] = vb[r] = vab[r] = Vd{};
  for (; j + kLanes <= B; j += kLanes) {
    const Vd xj = load(x + j), yj = load(y + j), pj = load(p + j);
    for (int r = 0; r < G; ++r) {
      const Vd pa = pj * vabs(xi[r] - xj);
      const Vd bv = vabs(yi[r] - yj);
      va[r] += pa;
      vb[r] += pj * bv;
      vab[r] += pa * bv;
    }
  }
  for (int r = 0; r < G; ++r) {
    sa[r] = lanes_sum(va[r]);
    sb[r] = lanes_sum(vb[r]);
    sab[r] = lanes_sum(vab[r]);
  }
#endif
  for (; j < B; ++j) {
    const double xj = x[j], yj = y[j], pj = p[j];
    for (int r = 0; r < G; ++r) {
      const double pa = pj * std::fabs(xi[r] - xj);
      const double bv = std::fabs(yi[r] - yj);
      sa[r] += pa;
      sb[r] += pj * bv;
      sab[r] += pa * bv;
    }
  }
  for (int r = 0; r < G; ++r) {
    k.abar[i0 + r] = sa[r];
    k.bbar[i0 + r] = sb[r];
    k.rab[i0 + r] = sab[r];
  }
}

// The scalars of the value and of the gradient's per-row formula.
struct Totals {
  double xm, am, bm;   // weighted means of x, abar, bbar
  double sab, saa;     // dCov^2(x, y), dCov^2(x, x)
  double scale;        // d loss / d R / sqrt(dCov^2(x, x) dCov^2(y, y)), 0 when undefined
  double loss;
};

Totals finish(const Work& k, index_t B, double power) {
  double xm = 0, ym = 0, am = 0, bm = 0;
  for (index_t i = 0; i < B; ++i) {
    xm += k.p[i] * k.x[i];
    ym += k.p[i] * k.y[i];
    am += k.p[i] * k.abar[i];
    bm += k.p[i] * k.bbar[i];
  }
  double vx = 0, vy = 0, s_ab = 0, s_aa = 0, s_bb = 0;
  for (index_t i = 0; i < B; ++i) {
    const double p = k.p[i], dx = k.x[i] - xm, dy = k.y[i] - ym, a = k.abar[i], b = k.bbar[i];
    vx += p * dx * dx;
    vy += p * dy * dy;
    s_ab += p * (k.rab[i] - 2.0 * a * b);
    s_aa += p * a * a;
    s_bb += p * b * b;
  }
  // sum_ij p_i p_j A_ij B_ij = sum_ij p_i p_j a_ij b_ij - 2 sum_i p_i abar_i bbar_i + abar bbar
  // (A is centred under p, so B's centring terms vanish), and sum_ij p_i p_j a_ij^2 = 2 var_p(x).
  Totals t{xm, am, bm, s_ab + am * bm, 2.0 * vx - 2.0 * s_aa + am * am, 0.0, 0.0};
  const double cyy = 2.0 * vy - 2.0 * s_bb + bm * bm;
  if (!(t.saa > 0.0 && cyy > 0.0)) return t;  // zero spread: dCorr undefined, loss 0
  const double d = std::sqrt(t.saa * cyy);
  const double r = t.sab / d;
  if (!(r > 0.0)) return t;
  t.loss = power == 1.0 ? r : std::pow(r, power);
  t.scale = (power == 1.0 ? 1.0 : power * std::pow(r, power - 1.0)) / d;
  return t;
}

// d loss / d x_k = scale * 2 p_k (G_ab - q G_aa), q = sab / saa, with s_kj = sign(x_k - x_j) and
//   G_ab = sum_j p_j B_kj s_kj = sum_j s_kj p_j b_kj - (bbar_k - bm) c1 - sum_j s_kj p_j bbar_j,
//   G_aa = sum_j p_j A_kj s_kj = (x_k - xm) - (abar_k - am) c1 - sum_j s_kj p_j abar_j,
// c1 = sum_j s_kj p_j (sum_j p_j a_kj s_kj = x_k - xm needs no sum). Since q is known after pass 1,
// the three remaining sums fold into one: cz = sum_j s_kj (p_j b_kj + e_j), e_j = p_j (q abar_j - bbar_j).
// NOTE: s_kj = 0 at ties (and on the diagonal): the subgradient of |.| at 0 chosen here.
template <int G, typename T>
void row_grads(const Work& k, const std::vector<double>& e, const Totals& t, index_t B, index_t i0, T* dx) {
  const double* x = k.x.data();
  const double* y = k.y.data();
  const double* p = k.p.data();
  const double* ej = e.data();
  double xi[G], yi[G], c1[G], cz[G];
  for (int r = 0; r < G; ++r) {
    xi[r] = x[i0 + r];
    yi[r] = y[i0 + r];
    c1[r] = cz[r] = 0.0;
  }
  index_t j = 0;
#if defined(__GNUC__)
  Vd v1[G], vz[G];
  for (int r = 0; r < G; ++r) v1[r] = vz[r] = Vd{};
  for (; j + kLanes <= B; j += kLanes) {
    const Vd xj = load(x + j), yj = load(y + j), pj = load(p + j), ezj = load(ej + j);
    for (int r = 0; r < G; ++r) {
      const Vd d = xi[r] - xj;
      v1[r] += signed_by(d, pj);
      vz[r] += signed_by(d, pj * vabs(yi[r] - yj) + ezj);
    }
  }
  for (int r = 0; r < G; ++r) {
    c1[r] = lanes_sum(v1[r]);
    cz[r] = lanes_sum(vz[r]);
  }
#endif
  for (; j < B; ++j) {
    const double xj = x[j], yj = y[j], pj = p[j], ezj = ej[j];
    for (int r = 0; r < G; ++r) {
      const double d = xi[r] - xj;
      const double s = double(d > 0.0) - double(d < 0.0);  // branch-free: the signs are random
      c1[r] += s * pj;
      cz[r] += s * (pj * std::fabs(yi[r] - yj) + ezj);
    }
  }
  const double q = t.sab / t.saa;
  for (int r = 0; r < G; ++r) {
    const index_t i = i0 + r;
    const double g = cz[r] - ((k.bbar[i] - t.bm) - q * (k.abar[i] - t.am)) * c1[r] - q * (xi[r] - t.xm);
    dx[i] = static_cast<T>(t.scale * 2.0 * p[i] * g);
  }
}

// full(i) for each group of kGroup rows starting at i, one(i) for a tile's leftover rows; tiles
// in parallel.
template <typename Full, typename One>
void for_row_groups(index_t B, Full full, One one) {
  const index_t tiles = (B + kTileRows - 1) / kTileRows;
  parallel_for(tiles, 1, [&](index_t t0, index_t t1) {
    for (index_t t = t0; t < t1; ++t) {
      const index_t r1 = std::min(B, (t + 1) * kTileRows);
      index_t i = t * kTileRows;
      for (; i + kGroup <= r1; i += kGroup) full(i);
      for (; i < r1; ++i) one(i);
    }
  });
}

}  // namespace

template <typename T>
void disco_loss(index_t B, const T* x, const T* y, const T* w, double power, T* loss, T* dx) {
  check_inputs(B, x, y, w, power);
  const auto n = static_cast<size_t>(B);
  Work k{std::vector<double>(x, x + n), std::vector<double>(y, y + n), std::vector<double>(n),
         std::vector<double>(n), std::vector<double>(n), std::vector<double>(n)};
  double wsum = 0.0;
  for (size_t i = 0; i < n; ++i) wsum += w ? static_cast<double>(w[i]) : 1.0;
  for (size_t i = 0; i < n; ++i) k.p[i] = (w ? static_cast<double>(w[i]) : 1.0) / wsum;

  for_row_groups(B, [&](index_t i) { row_sums<kGroup>(k, B, i); }, [&](index_t i) { row_sums<1>(k, B, i); });
  const Totals t = finish(k, B, power);
  if (loss) *loss = static_cast<T>(t.loss);
  if (!dx) return;
  if (t.scale == 0.0) {
    std::fill(dx, dx + n, T(0));
    return;
  }
  const double q = t.sab / t.saa;
  std::vector<double> e(n);
  for (size_t j = 0; j < n; ++j) e[j] = k.p[j] * (q * k.abar[j] - k.bbar[j]);
  for_row_groups(B, [&](index_t i) { row_grads<kGroup>(k, e, t, B, i, dx); },
                 [&](index_t i) { row_grads<1>(k, e, t, B, i, dx); });
}

template void disco_loss<float>(index_t, const float*, const float*, const float*, double, float*, float*);
template void disco_loss<double>(index_t, const double*, const double*, const double*, double, double*, double*);

}  // namespace hepnn::cpu
