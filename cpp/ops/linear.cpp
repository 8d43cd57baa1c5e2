// Fused fully-connected layer on the CPU. Forward: one NT GEMM whose store epilogue adds the bias,
// keeps z and applies the activation on each register tile while it is still in L1. Backward:
// dz = dy * act'(.) into reusable thread-local scratch, db = column sums of dz,
// dW = dz^T x (TN GEMM), dx = dz W (NN GEMM). Shape letters: B batch, I inputs, O outputs.
#include "ops/linear.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "core/threadpool.hpp"
#include "ops/activation.hpp"
#include "ops/gemm.hpp"
#include "ops/gemm_ukernel.hpp"

namespace hepnn::cpu {

bool act_needs_preactivation(Act act) {
  switch (act) {
    case Act::none:
    case Act::relu:
    case Act::sigmoid:
    case Act::tanh:
      return false;
    default:
      return true;
  }
}

namespace {

// dz = dy where y > 0: branch-free and restrict-qualified so it vectorises (random signs would
// mispredict a branch on every other element).
template <typename T>
void relu_grad_row(index_t n, const T* __restrict dy, const T* __restrict y, T* __restrict dz) {
  for (index_t j = 0; j < n; ++j) {
    const T g = dy[j];  // loaded unconditionally, so the select needs no branch
    dz[j] = y[j] > T(0) ? g : T(0);
  }
}

template <typename T>
void add_row(index_t n, const T* __restrict x, T* __restrict acc) {
  for (index_t j = 0; j < n; ++j) acc[j] += x[j];
}

template <typename T>
struct ForwardCtx {
  const T* b;
  Act act;
  double alpha;
  T* z;
  index_t O;
};

// The tile holds x @ W^T; turn it into y in place. none/relu are inlined (a call per row would
// cost as much as the tile's arithmetic); the others go through act_forward, in place, whose
// vector versions of exp/erf/tanh beat calling libm per element.
template <typename T>
void forward_epilogue(const void* vctx, T* c, index_t ldc, index_t row0, index_t col0, index_t m,
                      index_t n) {
  const auto& ctx = *static_cast<const ForwardCtx<T>*>(vctx);
  const T* bias = ctx.b ? ctx.b + col0 : nullptr;
  for (index_t i = 0; i < m; ++i) {
    T* row = c + i * ldc;
    if (bias) add_row(n, bias, row);
    if (ctx.z) std::memcpy(ctx.z + (row0 + i) * ctx.O + col0, row, size_t(n) * sizeof(T));
    switch (ctx.act) {
      case Act::none: break;
      case Act::relu:
        for (index_t j = 0; j < n; ++j) row[j] = row[j] < T(0) ? T(0) : row[j];  // NaN stays NaN, as in torch
        break;
      default:
        act_forward<T>(ctx.act, n, row, row, ctx.alpha);
    }
  }
}

template <typename T>
T* scratch(size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

}  // namespace

template <typename T>
void linear_forward(index_t B, index_t I, index_t O, const T* x, const T* W, const T* b, Act act,
                    double alpha, T* y, T* z) {
  const ForwardCtx<T> ctx{b, act, alpha, z, O};
  const detail::Epilogue<T> epi{&forward_epilogue<T>, &ctx};
  detail::gemm_ex<T>(Trans::N, Trans::T, B, O, I, T(1), x, I, W, I, T(0), y, O, &epi, INT_MAX);
}

template <typename T>
void linear_backward(index_t B, index_t I, index_t O, const T* x, const T* W, const T* z,
                     const T* y, const T* dy, Act act, double alpha, T* dx, T* dW, T* db) {
  if (!z && act_needs_preactivation(act))
    throw ValueError(op_message("linear_backward", "this activation needs the pre-activation z, got none"));
  // dz: for act none it is dy itself, no copy.
  const T* dz = dy;
  if (act != Act::none && B > 0 && O > 0) {
    T* buf = scratch<T>(size_t(B) * size_t(O));
    if (act == Act::relu) {
      parallel_for(B, std::max<index_t>(1, 65536 / O), [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r) relu_grad_row(O, dy + r * O, y + r * O, buf + r * O);
      });
    } else if (z) {
      act_backward<T>(act, B * O, z, y, dy, buf, alpha);
    } else {
      // No z (sigmoid, tanh): act_derivative reads these from y; y stands in for z.
      parallel_for(B, std::max<index_t>(1, 4096 / O), [&](index_t r0, index_t r1) {
        for (index_t i = r0 * O; i < r1 * O; ++i) buf[i] = dy[i] * act_derivative<T>(act, y[i], y[i], alpha);
      });
    }
    dz = buf;
  }
  if (db) {
    std::fill(db, db + O, T(0));
    for (index_t r = 0; r < B; ++r) add_row(O, dz + r * O, db);
  }
  gemm<T>(Trans::T, Trans::N, O, I, B, T(1), dz, O, x, I, T(0), dW, I);
  if (dx) gemm<T>(Trans::N, Trans::N, B, I, O, T(1), dz, O, W, I, T(0), dx, I);
}

#define HEPNN_LINEAR_INSTANTIATE(T)                                                               \
  template void linear_forward<T>(index_t, index_t, index_t, const T*, const T*, const T*, Act,   \
                                  double, T*, T*);                                                \
  template void linear_backward<T>(index_t, index_t, index_t, const T*, const T*, const T*,       \
                                   const T*, const T*, Act, double, T*, T*, T*);
HEPNN_LINEAR_INSTANTIATE(float)
HEPNN_LINEAR_INSTANTIATE(double)
#undef HEPNN_LINEAR_INSTANTIATE

}  // namespace hepnn::cpu
