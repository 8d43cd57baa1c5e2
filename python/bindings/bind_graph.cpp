// Python entry points of the graph family: gather_forward/backward, scatter_forward/backward,
// segment_forward/backward (op "sum" | "mean" | "max"), knn, edgeconv_forward/backward.
// Every operand is checked here (dtype, device, shape, contiguity; int64 indices, and on the CPU
// their range) so a bad index is a ValueError naming the op, never a wild read.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <string>
#include <vector>

#include "act_names.hpp"
#include "common.hpp"
#include "ops/edgeconv.hpp"
#include "ops/knn.hpp"
#include "ops/segment.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/edgeconv.hpp"
#include "cuda/knn.hpp"
#include "cuda/segment.hpp"
#endif

namespace nb = nanobind;

namespace hepnn::py {
namespace {

using cpu::SegReduce;

SegReduce parse_reduce(const std::string& name, const char* op) {
  if (name == "sum") return SegReduce::sum;
  if (name == "mean") return SegReduce::mean;
  if (name == "max") return SegReduce::max;
  throw ValueError(op_message(op, "reduce must be 'sum', 'mean' or 'max', got '" + name + "'"));
}

// A float operand: supported device, contiguous, ndim checked; returns its dtype.
DType floats(const Array& a, const char* op, const char* name, size_t nd) {
  const DType dt = float_dtype(a, op, name);
  require_supported_device(a, op, name);
  require_ndim(a, nd, op, name);
  require_contiguous(a, op, name);
  return dt;
}

// An operand like `ref`: same device and dtype, exact shape, contiguous.
void like(const Array& a, const Array& ref, DType dt, const std::vector<int64_t>& shape, const char* op,
          const char* name) {
  require_same_device(a, ref, op, name);
  require_dtype(a, dt, op, name);
  require_shape(a, shape, op, name);
  require_contiguous(a, op, name);
}

void ints(const Array& a, const Array& ref, const std::vector<int64_t>& shape, const char* op,
          const char* name) {
  require_same_device(a, ref, op, name);
  require_int64(a, op, name);
  require_shape(a, shape, op, name);
  require_contiguous(a, op, name);
}

// ---- gather ----
void gather_forward(const Array& x, const Array& idx, const Array& y, std::uintptr_t stream) {
  const char* op = "gather";
  const DType dt = floats(x, op, "x", 2);
  require_ndim(idx, 1, op, "index");
  ints(idx, x, {idx.shape(0)}, op, "index");
  const int64_t R = x.shape(0), F = x.shape(1), M = idx.shape(0);
  like(y, x, dt, {M, F}, op, "y");
  nb::gil_scoped_release release;
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    if (dt == DType::f32)
      cuda::gather_rows_forward(R, F, M, ptr<float>(x), ptr<int64_t>(idx), ptr<float>(y), to_stream(stream));
    else
      cuda::gather_rows_forward(R, F, M, ptr<double>(x), ptr<int64_t>(idx), ptr<double>(y), to_stream(stream));
#endif
  } else if (dt == DType::f32) {
    cpu::gather_rows_forward(R, F, M, ptr<float>(x), ptr<int64_t>(idx), ptr<float>(y));
  } else {
    cpu::gather_rows_forward(R, F, M, ptr<double>(x), ptr<int64_t>(idx), ptr<double>(y));
  }
}

void gather_backward(const Array& idx, const Array& dy, const Array& dx, std::uintptr_t stream) {
  const char* op = "gather_backward";
  const DType dt = floats(dy, op, "dy", 2);
  require_ndim(idx, 1, op, "index");
  ints(idx, dy, {dy.shape(0)}, op, "index");
  require_ndim(dx, 2, op, "dx");
  const int64_t R = dx.shape(0), F = dy.shape(1), M = dy.shape(0);
  like(dx, dy, dt, {R, F}, op, "dx");
  nb::gil_scoped_release release;
  if (is_cuda(dy)) {
#if defined(HEPNN_WITH_CUDA)
    if (dt == DType::f32)
      cuda::gather_rows_backward(R, F, M, ptr<int64_t>(idx), ptr<float>(dy), ptr<float>(dx), to_stream(stream));
    else
      cuda::gather_rows_backward(R, F, M, ptr<int64_t>(idx), ptr<double>(dy), ptr<double>(dx), to_stream(stream));
#endif
  } else if (dt == DType::f32) {
    cpu::gather_rows_backward(R, F, M, ptr<int64_t>(idx), ptr<float>(dy), ptr<float>(dx));
  } else {
    cpu::gather_rows_backward(R, F, M, ptr<int64_t>(idx), ptr<double>(dy), ptr<double>(dx));
  }
}

// ---- scatter (index) and segment (CSR offsets) reductions ----
// `keys` is the index (M,) for scatter or the offsets (S + 1,) for segment.
void reduce_forward(bool segment, const Array& x, const Array& keys, const Array& y, const OptArray& arg,
                    const std::string& reduce, std::uintptr_t stream) {
  const char* op = segment ? "segment_reduce" : "scatter_reduce";
  const SegReduce r = parse_reduce(reduce, op);
  const DType dt = floats(x, op, "x", 2);
  require_ndim(y, 2, op, "y");
  const int64_t M = x.shape(0), F = x.shape(1), S = y.shape(0);
  like(y, x, dt, {S, F}, op, "y");
  require_ndim(keys, 1, op, segment ? "offsets" : "index");
  ints(keys, x, {segment ? S + 1 : M}, op, segment ? "offsets" : "index");
  if (r == SegReduce::max && !arg) throw ValueError(op_message(op, "max needs an arg output (S, F) int64"));
  if (arg) ints(*arg, x, {S, F}, op, "arg");
  int64_t* a = arg ? ptr<int64_t>(*arg) : nullptr;
  nb::gil_scoped_release release;
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    const Stream s = to_stream(stream);
    if (segment) {
      if (dt == DType::f32) cuda::segment_reduce_forward(M, F, S, ptr<int64_t>(keys), ptr<float>(x), r, ptr<float>(y), a, s);
      else cuda::segment_reduce_forward(M, F, S, ptr<int64_t>(keys), ptr<double>(x), r, ptr<double>(y), a, s);
    } else {
      if (dt == DType::f32) cuda::scatter_reduce_forward(M, F, S, ptr<float>(x), ptr<int64_t>(keys), r, ptr<float>(y), a, s);
      else cuda::scatter_reduce_forward(M, F, S, ptr<double>(x), ptr<int64_t>(keys), r, ptr<double>(y), a, s);
    }
#endif
  } else if (segment) {
    if (dt == DType::f32) cpu::segment_reduce_forward(M, F, S, ptr<int64_t>(keys), ptr<float>(x), r, ptr<float>(y), a);
    else cpu::segment_reduce_forward(M, F, S, ptr<int64_t>(keys), ptr<double>(x), r, ptr<double>(y), a);
  } else {
    if (dt == DType::f32) cpu::scatter_reduce_forward(M, F, S, ptr<float>(x), ptr<int64_t>(keys), r, ptr<float>(y), a);
    else cpu::scatter_reduce_forward(M, F, S, ptr<double>(x), ptr<int64_t>(keys), r, ptr<double>(y), a);
  }
}

void reduce_backward(bool segment, const Array& keys, const Array& dy, const OptArray& arg, const Array& dx,
                     const std::string& reduce, std::uintptr_t stream) {
  const char* op = segment ? "segment_reduce_backward" : "scatter_reduce_backward";
  const SegReduce r = parse_reduce(reduce, op);
  const DType dt = floats(dy, op, "dy", 2);
  require_ndim(dx, 2, op, "dx");
  const int64_t S = dy.shape(0), F = dy.shape(1), M = dx.shape(0);
  like(dx, dy, dt, {M, F}, op, "dx");
  require_ndim(keys, 1, op, segment ? "offsets" : "index");
  ints(keys, dy, {segment ? S + 1 : M}, op, segment ? "offsets" : "index");
  if (r == SegReduce::max && !arg) throw ValueError(op_message(op, "max needs the forward's arg"));
  if (arg) ints(*arg, dy, {S, F}, op, "arg");
  const int64_t* a = arg ? ptr<int64_t>(*arg) : nullptr;
  nb::gil_scoped_release release;
  if (is_cuda(dy)) {
#if defined(HEPNN_WITH_CUDA)
    const Stream s = to_stream(stream);
    if (segment) {
      if (dt == DType::f32) cuda::segment_reduce_backward(M, F, S, ptr<int64_t>(keys), r, ptr<float>(dy), a, ptr<float>(dx), s);
      else cuda::segment_reduce_backward(M, F, S, ptr<int64_t>(keys), r, ptr<double>(dy), a, ptr<double>(dx), s);
    } else {
      if (dt == DType::f32) cuda::scatter_reduce_backward(M, F, S, ptr<int64_t>(keys), r, ptr<float>(dy), a, ptr<float>(dx), s);
      else cuda::scatter_reduce_backward(M, F, S, ptr<int64_t>(keys), r, ptr<double>(dy), a, ptr<double>(dx), s);
    }
#endif
  } else if (segment) {
    if (dt == DType::f32) cpu::segment_reduce_backward(M, F, S, ptr<int64_t>(keys), r, ptr<float>(dy), a, ptr<float>(dx));
    else cpu::segment_reduce_backward(M, F, S, ptr<int64_t>(keys), r, ptr<double>(dy), a, ptr<double>(dx));
  } else {
    if (dt == DType::f32) cpu::scatter_reduce_backward(M, F, S, ptr<int64_t>(keys), r, ptr<float>(dy), a, ptr<float>(dx));
    else cpu::scatter_reduce_backward(M, F, S, ptr<int64_t>(keys), r, ptr<double>(dy), a, ptr<double>(dx));
  }
}

// ---- knn ----
void knn(const Array& coords, const OptArray& mask, const Array& idx, std::uintptr_t stream) {
  const char* op = "knn";
  const DType dt = floats(coords, op, "coords", 3);
  const int64_t B = coords.shape(0), N = coords.shape(1), D = coords.shape(2);
  require_ndim(idx, 3, op, "idx");
  const int64_t K = idx.shape(2);
  ints(idx, coords, {B, N, K}, op, "idx");
  if (K < 1) throw ValueError(op_message(op, "k must be >= 1"));
  const std::uint8_t* m = nullptr;
  if (mask) {
    const bool boolish = mask->dtype() == nb::dtype<bool>() || mask->dtype() == nb::dtype<std::uint8_t>();
    if (!boolish) throw TypeError(op_message(op, "mask has dtype " + dtype_name(*mask) + ", expected bool"));
    require_same_device(*mask, coords, op, "mask");
    require_shape(*mask, {B, N}, op, "mask");
    require_contiguous(*mask, op, "mask");
    m = static_cast<const std::uint8_t*>(mask->data());
  }
  nb::gil_scoped_release release;
  if (is_cuda(coords)) {
#if defined(HEPNN_WITH_CUDA)
    if (dt == DType::f32) cuda::knn_forward(B, N, D, K, ptr<float>(coords), m, ptr<int64_t>(idx), to_stream(stream));
    else cuda::knn_forward(B, N, D, K, ptr<double>(coords), m, ptr<int64_t>(idx), to_stream(stream));
#endif
  } else if (dt == DType::f32) {
    cpu::knn_forward(B, N, D, K, ptr<float>(coords), m, ptr<int64_t>(idx));
  } else {
    cpu::knn_forward(B, N, D, K, ptr<double>(coords), m, ptr<int64_t>(idx));
  }
}

// ---- edgeconv ----
struct EdgeArgs {
  int64_t B, N, C, K, L;
  DType dt;
  std::vector<int64_t> widths;
  bool max_agg;
  Act act;
};

EdgeArgs check_edgeconv(const char* op, const Array& x, const Array& idx, const std::vector<Array>& W,
                        const std::vector<OptArray>& b, const std::string& act, const std::string& agg) {
  EdgeArgs e{};
  e.dt = floats(x, op, "x", 3);
  e.B = x.shape(0);
  e.N = x.shape(1);
  e.C = x.shape(2);
  require_ndim(idx, 3, op, "idx");
  e.K = idx.shape(2);
  ints(idx, x, {e.B, e.N, e.K}, op, "idx");
  if (e.K < 1) throw ValueError(op_message(op, "idx needs k >= 1 neighbours"));
  e.L = static_cast<int64_t>(W.size());
  if (e.L < 1) throw ValueError(op_message(op, "needs at least one edge-MLP layer"));
  if (b.size() != W.size())
    throw ValueError(op_message(op, "got " + std::to_string(W.size()) + " weights but " +
                                        std::to_string(b.size()) + " biases (use None for no bias)"));
  int64_t fin = 2 * e.C;
  for (int64_t l = 0; l < e.L; ++l) {
    const std::string wn = "weight[" + std::to_string(l) + "]", bn = "bias[" + std::to_string(l) + "]";
    require_ndim(W[l], 2, op, wn.c_str());
    like(W[l], x, e.dt, {W[l].shape(0), fin}, op, wn.c_str());
    e.widths.push_back(W[l].shape(0));
    if (b[l]) like(*b[l], x, e.dt, {W[l].shape(0)}, op, bn.c_str());
    fin = W[l].shape(0);
  }
  if (agg != "mean" && agg != "max")
    throw ValueError(op_message(op, "aggregation must be 'mean' or 'max', got '" + agg + "'"));
  e.max_agg = agg == "max";
  e.act = parse_act(act, op);
  return e;
}

template <typename T>
std::vector<T*> ptrs(const std::vector<Array>& a) {
  std::vector<T*> out;
  for (const auto& x : a) out.push_back(ptr<T>(x));
  return out;
}
template <typename T>
std::vector<T*> ptrs(const std::vector<OptArray>& a) {
  std::vector<T*> out;
  for (const auto& x : a) out.push_back(ptr_or_null<T>(x));
  return out;
}

template <typename T>
void edgeconv_forward_t(const EdgeArgs& e, const Array& x, const Array& idx, const std::vector<Array>& W,
                        const std::vector<OptArray>& b, double alpha, const Array& y, const OptArray& pq,
                        std::uintptr_t stream) {
  const auto w = ptrs<T>(W);
  const auto bb = ptrs<T>(b);
  const T* const* wp = w.data();
  const T* const* bp = bb.data();
  nb::gil_scoped_release release;
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    cuda::edgeconv_forward<T>(e.B, e.N, e.C, e.K, e.L, e.widths.data(), ptr<T>(x), ptr<int64_t>(idx), wp, bp,
                              e.act, alpha, e.max_agg, ptr<T>(y), ptr_or_null<T>(pq), to_stream(stream));
#endif
  } else {
    cpu::edgeconv_forward<T>(e.B, e.N, e.C, e.K, e.L, e.widths.data(), ptr<T>(x), ptr<int64_t>(idx), wp, bp,
                             e.act, alpha, e.max_agg, ptr<T>(y), ptr_or_null<T>(pq));
  }
}

void edgeconv_forward(const Array& x, const Array& idx, const std::vector<Array>& W,
                      const std::vector<OptArray>& b, const Array& y, const OptArray& pq,
                      const std::string& act, double alpha, const std::string& aggregation,
                      std::uintptr_t stream) {
  const char* op = "edgeconv";
  const EdgeArgs e = check_edgeconv(op, x, idx, W, b, act, aggregation);
  like(y, x, e.dt, {e.B, e.N, e.widths.back()}, op, "y");
  if (pq) like(*pq, x, e.dt, {e.B * e.N, 2 * e.widths[0]}, op, "pq");
  if (e.dt == DType::f32) edgeconv_forward_t<float>(e, x, idx, W, b, alpha, y, pq, stream);
  else edgeconv_forward_t<double>(e, x, idx, W, b, alpha, y, pq, stream);
}

template <typename T>
void edgeconv_backward_t(const EdgeArgs& e, const Array& x, const Array& idx, const std::vector<Array>& W,
                         const std::vector<OptArray>& b, const OptArray& pq, const Array& dy,
                         const OptArray& dx, const std::vector<Array>& dW, const std::vector<OptArray>& db,
                         double alpha, std::uintptr_t stream) {
  const auto w = ptrs<T>(W);
  const auto bb = ptrs<T>(b);
  const auto dw = ptrs<T>(dW);
  const auto dbb = ptrs<T>(db);
  const T* const* wp = w.data();
  const T* const* bp = bb.data();
  nb::gil_scoped_release release;
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    cuda::edgeconv_backward<T>(e.B, e.N, e.C, e.K, e.L, e.widths.data(), ptr<T>(x), ptr<int64_t>(idx), wp, bp,
                               e.act, alpha, e.max_agg, ptr_or_null<T>(pq), ptr<T>(dy), ptr_or_null<T>(dx),
                               dw.data(), dbb.data(), to_stream(stream));
#endif
  } else {
    cpu::edgeconv_backward<T>(e.B, e.N, e.C, e.K, e.L, e.widths.data(), ptr<T>(x), ptr<int64_t>(idx), wp, bp,
                              e.act, alpha, e.max_agg, ptr_or_null<T>(pq), ptr<T>(dy), ptr_or_null<T>(dx),
                              dw.data(), dbb.data());
  }
}

void edgeconv_backward(const Array& x, const Array& idx, const std::vector<Array>& W,
                       const std::vector<OptArray>& b, const OptArray& pq, const Array& dy, const OptArray& dx,
                       const std::vector<Array>& dW, const std::vector<OptArray>& db, const std::string& act,
                       double alpha, const std::string& aggregation, std::uintptr_t stream) {
  const char* op = "edgeconv_backward";
  const EdgeArgs e = check_edgeconv(op, x, idx, W, b, act, aggregation);
  like(dy, x, e.dt, {e.B, e.N, e.widths.back()}, op, "dy");
  if (pq) like(*pq, x, e.dt, {e.B * e.N, 2 * e.widths[0]}, op, "pq");
  if (dx) like(*dx, x, e.dt, {e.B, e.N, e.C}, op, "dx");
  if (dW.size() != W.size() || db.size() != W.size())
    throw ValueError(op_message(op, "dweights/dbiases need one entry per layer"));
  for (size_t l = 0; l < W.size(); ++l) {
    const std::string wn = "dweight[" + std::to_string(l) + "]", bn = "dbias[" + std::to_string(l) + "]";
    like(dW[l], x, e.dt, shape_of(W[l]), op, wn.c_str());
    if (db[l]) like(*db[l], x, e.dt, {e.widths[l]}, op, bn.c_str());
  }
  if (e.dt == DType::f32) edgeconv_backward_t<float>(e, x, idx, W, b, pq, dy, dx, dW, db, alpha, stream);
  else edgeconv_backward_t<double>(e, x, idx, W, b, pq, dy, dx, dW, db, alpha, stream);
}

}  // namespace
}  // namespace hepnn::py

HEPNN_BINDING(graph) {
  using namespace hepnn::py;
  m.def("gather_forward", &gather_forward, nb::arg("x"), nb::arg("index"), nb::arg("y"), nb::arg("stream") = 0,
        "y[m] = x[index[m]] (index -1 gives a zero row).");
  m.def("gather_backward", &gather_backward, nb::arg("index"), nb::arg("dy"), nb::arg("dx"),
        nb::arg("stream") = 0, "dx[r] = sum of dy[m] with index[m] == r (deterministic).");
  m.def(
      "scatter_forward",
      [](const Array& x, const Array& index, const Array& y, const OptArray& arg, const std::string& reduce,
         std::uintptr_t stream) { reduce_forward(false, x, index, y, arg, reduce, stream); },
      nb::arg("x"), nb::arg("index"), nb::arg("y"), nb::arg("arg").none(), nb::arg("reduce"),
      nb::arg("stream") = 0, "y[s] = reduce of x[m] over index[m] == s.");
  m.def(
      "scatter_backward",
      [](const Array& index, const Array& dy, const OptArray& arg, const Array& dx, const std::string& reduce,
         std::uintptr_t stream) { reduce_backward(false, index, dy, arg, dx, reduce, stream); },
      nb::arg("index"), nb::arg("dy"), nb::arg("arg").none(), nb::arg("dx"), nb::arg("reduce"),
      nb::arg("stream") = 0, "dx of scatter_forward.");
  m.def(
      "segment_forward",
      [](const Array& x, const Array& offsets, const Array& y, const OptArray& arg, const std::string& reduce,
         std::uintptr_t stream) { reduce_forward(true, x, offsets, y, arg, reduce, stream); },
      nb::arg("x"), nb::arg("offsets"), nb::arg("y"), nb::arg("arg").none(), nb::arg("reduce"),
      nb::arg("stream") = 0, "y[s] = reduce of x[offsets[s]:offsets[s+1]].");
  m.def(
      "segment_backward",
      [](const Array& offsets, const Array& dy, const OptArray& arg, const Array& dx, const std::string& reduce,
         std::uintptr_t stream) { reduce_backward(true, offsets, dy, arg, dx, reduce, stream); },
      nb::arg("offsets"), nb::arg("dy"), nb::arg("arg").none(), nb::arg("dx"), nb::arg("reduce"),
      nb::arg("stream") = 0, "dx of segment_forward.");
  m.def("knn", &knn, nb::arg("coords"), nb::arg("mask").none(), nb::arg("idx"), nb::arg("stream") = 0,
        "idx (B, N, k) = the k nearest valid neighbours of each valid point (-1 where none).");
  m.def("edgeconv_forward", &edgeconv_forward, nb::arg("x"), nb::arg("idx"), nb::arg("weights"),
        nb::arg("biases"), nb::arg("y"), nb::arg("pq").none(), nb::arg("act"), nb::arg("alpha"),
        nb::arg("aggregation"), nb::arg("stream") = 0, "Fused EdgeConv forward.");
  m.def("edgeconv_backward", &edgeconv_backward, nb::arg("x"), nb::arg("idx"), nb::arg("weights"),
        nb::arg("biases"), nb::arg("pq").none(), nb::arg("dy"), nb::arg("dx").none(), nb::arg("dweights"),
        nb::arg("dbiases"), nb::arg("act"), nb::arg("alpha"), nb::arg("aggregation"), nb::arg("stream") = 0,
        "Fused EdgeConv backward (recomputes edge tiles).");
}
