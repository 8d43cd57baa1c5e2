// Shared by every binding file: array checks at the boundary (dtype, device, shape, contiguity),
// dispatch helpers, and the registration hook that lets each op family bind itself.
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/types.hpp"

namespace hepnn::py {

namespace nb = nanobind;

// Any array: NumPy, CuPy, PyTorch, anything with __dlpack__. Read-only arrays are accepted;
// outputs are allocated by the Python layer, so they are writable.
using Array = nb::ndarray<nb::ro>;
using OptArray = std::optional<Array>;

// ---- registration: each binding file adds one function, the module runs them all ----
using BindFn = void (*)(nb::module_&);
std::vector<std::pair<const char*, BindFn>>& registry();
struct Registrar {
  Registrar(const char* name, BindFn fn) { registry().emplace_back(name, fn); }
};
#define HEPNN_BINDING(name)                                                       \
  static void hepnn_bind_##name(::nanobind::module_& m);                          \
  static ::hepnn::py::Registrar hepnn_registrar_##name(#name, &hepnn_bind_##name); \
  static void hepnn_bind_##name(::nanobind::module_& m)

// ---- facts about an array ----
inline bool is_cuda(const Array& a) { return a.device_type() == nb::device::cuda::value; }
inline bool is_cpu(const Array& a) { return a.device_type() == nb::device::cpu::value; }
std::string shape_str(const Array& a);
std::string dtype_name(const Array& a);

// The floating dtype of a (f32 or f64), else TypeError "[op] name has dtype int32, expected ...".
DType float_dtype(const Array& a, const char* op, const char* name);
// Same dtype as `ref` (TypeError otherwise).
void require_dtype(const Array& a, DType dt, const char* op, const char* name);
// int64 labels and similar.
void require_int64(const Array& a, const char* op, const char* name);
// C-contiguous or empty (ValueError naming the op otherwise).
void require_contiguous(const Array& a, const char* op, const char* name);
// ndim equal to `nd` (ValueError).
void require_ndim(const Array& a, size_t nd, const char* op, const char* name);
// exact shape (ValueError with both shapes in the message).
void require_shape(const Array& a, const std::vector<int64_t>& shape, const char* op,
                   const char* name);
// Same device type and id as `ref` (TypeError).
void require_same_device(const Array& a, const Array& ref, const char* op, const char* name);
// CPU or (when built with CUDA) CUDA; TypeError for anything else.
void require_supported_device(const Array& a, const char* op, const char* name);
// Raises RuntimeError when a CUDA array reaches a module built without CUDA.
void require_cuda_built(const char* op);

// An operand and its name for the checks that take several (the array may be null: an absent
// optional operand).
using Named = std::pair<const Array*, const char*>;
// ValueError "[op] <out> shares memory with <other>" when an output overlaps an input or another
// output: the kernels write outputs while still reading their inputs.
void require_disjoint(const char* op, std::initializer_list<Named> outs, std::initializer_list<Named> ins);

inline std::vector<int64_t> shape_of(const Array& a) {
  std::vector<int64_t> s(a.ndim());
  for (size_t i = 0; i < a.ndim(); ++i) s[i] = a.shape(i);
  return s;
}

// Total elements.
inline int64_t numel(const Array& a) {
  int64_t n = 1;
  for (size_t i = 0; i < a.ndim(); ++i) n *= a.shape(i);
  return n;
}

template <typename T>
inline T* ptr(const Array& a) {
  return static_cast<T*>(const_cast<void*>(a.data()));
}
template <typename T>
inline T* ptr_or_null(const OptArray& a) {
  return a ? ptr<T>(*a) : nullptr;
}

// Stream from Python: an integer (cupy.cuda.get_current_stream().ptr), 0 = the default stream.
inline Stream to_stream(std::uintptr_t s) { return reinterpret_cast<Stream>(s); }

}  // namespace hepnn::py
