// Python binding of the GEMM: gemm(a, b, out, trans_a, trans_b, alpha, beta, stream), 2-D or
// batched (3-D, a 2-D operand broadcast over the batch), CPU or CUDA by where the arrays live.
#include <cmath>
#include <cstdint>
#include <string>

#include "common.hpp"
#include "ops/gemm.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/gemm.hpp"
#endif

namespace nb = nanobind;

namespace hepnn::py {
namespace {

constexpr const char* kOp = "gemm";

// Output must not share memory with an input: the kernel reads A/B after writing C blocks.
void require_disjoint(const Array& out, const Array& in, const char* op, const char* name) {
  const size_t item = out.dtype().bits / 8;
  const auto* o = static_cast<const char*>(out.data());
  const auto* i = static_cast<const char*>(in.data());
  const bool overlap = numel(out) > 0 && numel(in) > 0 && o < i + numel(in) * item &&
                       i < o + numel(out) * item;
  if (overlap) throw ValueError(op_message(op, std::string("out shares memory with ") + name));
}

struct GemmShape {
  int64_t batch = 0, M = 0, N = 0, K = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
};

GemmShape check_gemm(const Array& a, const Array& b, const Array& out, bool ta, bool tb) {
  for (auto [arr, name] : {std::pair{&a, "a"}, {&b, "b"}, {&out, "out"}}) {
    require_supported_device(*arr, kOp, name);
    if (arr->ndim() != 2 && arr->ndim() != 3)
      throw ValueError(op_message(kOp, std::string(name) + " has shape " + shape_str(*arr) +
                                           ", expected 2 or 3 dimensions"));
  }
  require_same_device(b, a, kOp, "b");
  require_same_device(out, a, kOp, "out");
  const DType dt = float_dtype(a, kOp, "a");
  require_dtype(b, dt, kOp, "b");
  require_dtype(out, dt, kOp, "out");
  // Empty arrays carry arbitrary strides and hold nothing to misread.
  for (auto [arr, name] : {std::pair{&a, "a"}, {&b, "b"}, {&out, "out"}})
    if (numel(*arr) > 0) require_contiguous(*arr, kOp, name);

  GemmShape s;
  const size_t da = a.ndim(), db = b.ndim();
  const int64_t a0 = a.shape(da - 2), a1 = a.shape(da - 1);
  const int64_t b0 = b.shape(db - 2), b1 = b.shape(db - 1);
  s.M = ta ? a1 : a0;
  s.K = ta ? a0 : a1;
  const int64_t kb = tb ? b1 : b0;
  s.N = tb ? b0 : b1;
  if (s.K != kb) {
    std::string what = "a has shape " + shape_str(a) + (ta ? " (trans_a)" : "") + " but b has shape " +
                       shape_str(b) + (tb ? " (trans_b)" : "") + ": inner dimensions " +
                       std::to_string(s.K) + " and " + std::to_string(kb) + " differ";
    throw ValueError(op_message(kOp, what));
  }
  s.lda = a1;
  s.ldb = b1;
  s.ldc = s.N;
  if (da == 2 && db == 2) {
    require_shape(out, {s.M, s.N}, kOp, "out");
    return s;
  }
  const int64_t ba = da == 3 ? a.shape(0) : -1, bb = db == 3 ? b.shape(0) : -1;
  if (ba >= 0 && bb >= 0 && ba != bb && ba != 1 && bb != 1)
    throw ValueError(op_message(kOp, "a has shape " + shape_str(a) + " but b has shape " + shape_str(b) +
                                         ": batch sizes " + std::to_string(ba) + " and " +
                                         std::to_string(bb) + " differ"));
  s.batch = std::max(ba, bb);
  // A batch of 1 (or a 2-D operand) is the same matrix for every product: stride 0.
  s.stride_a = ba > 1 ? a0 * a1 : 0;
  s.stride_b = bb > 1 ? b0 * b1 : 0;
  s.stride_c = s.M * s.N;
  require_shape(out, {s.batch, s.M, s.N}, kOp, "out");
  return s;
}

template <typename T>
void run_gemm(const GemmShape& s, const Array& a, const Array& b, const Array& out, bool ta,
              bool tb, double alpha, double beta, std::uintptr_t stream) {
  const Trans tA = ta ? Trans::T : Trans::N, tB = tb ? Trans::T : Trans::N;
  const T* A = ptr<T>(a);
  const T* B = ptr<T>(b);
  T* C = ptr<T>(out);
  const bool batched = s.batch > 0;
  if (is_cuda(a)) {
#if defined(HEPNN_WITH_CUDA)
    if (batched)
      hepnn::cuda::gemm_batched<T>(tA, tB, s.batch, s.M, s.N, s.K, T(alpha), A, s.lda, s.stride_a, B,
                                   s.ldb, s.stride_b, T(beta), C, s.ldc, s.stride_c, to_stream(stream));
    else
      hepnn::cuda::gemm<T>(tA, tB, s.M, s.N, s.K, T(alpha), A, s.lda, B, s.ldb, T(beta), C, s.ldc,
                           to_stream(stream));
#endif
  } else if (batched) {
    hepnn::cpu::gemm_batched<T>(tA, tB, s.batch, s.M, s.N, s.K, T(alpha), A, s.lda, s.stride_a, B,
                                s.ldb, s.stride_b, T(beta), C, s.ldc, s.stride_c);
  } else {
    hepnn::cpu::gemm<T>(tA, tB, s.M, s.N, s.K, T(alpha), A, s.lda, B, s.ldb, T(beta), C, s.ldc);
  }
}

}  // namespace
}  // namespace hepnn::py

HEPNN_BINDING(gemm) {
  using namespace hepnn::py;
  m.def(
      "gemm",
      [](Array a, Array b, Array out, bool trans_a, bool trans_b, double alpha, double beta,
         std::uintptr_t stream) {
        const GemmShape s = check_gemm(a, b, out, trans_a, trans_b);
        if (!std::isfinite(alpha) || !std::isfinite(beta))
          throw hepnn::ValueError(hepnn::op_message(kOp, "alpha and beta must be finite, got alpha=" +
                                                             std::to_string(alpha) + ", beta=" +
                                                             std::to_string(beta)));
        require_disjoint(out, a, kOp, "a");
        require_disjoint(out, b, kOp, "b");
        nb::gil_scoped_release release;
        if (a.dtype() == nb::dtype<float>())
          run_gemm<float>(s, a, b, out, trans_a, trans_b, alpha, beta, stream);
        else
          run_gemm<double>(s, a, b, out, trans_a, trans_b, alpha, beta, stream);
      },
      nb::arg("a"), nb::arg("b"), nb::arg("out"), nb::arg("trans_a") = false,
      nb::arg("trans_b") = false, nb::arg("alpha") = 1.0, nb::arg("beta") = 0.0,
      nb::arg("stream") = 0,
      "out = alpha * op(a) @ op(b) + beta * out; 2-D or batched (batch first, 2-D operands broadcast).");
}
