// The hepnn._core extension: maps hepnn errors to Python exceptions and runs every op family's
// registration (each binding file adds itself with HEPNN_BINDING).
#include "common.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <sstream>

namespace hepnn::py {

std::vector<std::pair<const char*, BindFn>>& registry() {
  static std::vector<std::pair<const char*, BindFn>> fns;
  return fns;
}

std::string shape_str(const Array& a) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  if (a.ndim() == 1) s << ",";
  s << ")";
  return s.str();
}

std::string dtype_name(const Array& a) {
  const auto dt = a.dtype();
  const char* kind = "unknown";
  switch (dt.code) {
    case (uint8_t)nb::dlpack::dtype_code::Int: kind = "int"; break;
    case (uint8_t)nb::dlpack::dtype_code::UInt: kind = "uint"; break;
    case (uint8_t)nb::dlpack::dtype_code::Float: kind = "float"; break;
    case (uint8_t)nb::dlpack::dtype_code::Bfloat: kind = "bfloat"; break;
    case (uint8_t)nb::dlpack::dtype_code::Complex: kind = "complex"; break;
    case (uint8_t)nb::dlpack::dtype_code::Bool: return "bool";
  }
  return std::string(kind) + std::to_string(dt.bits);
}

DType float_dtype(const Array& a, const char* op, const char* name) {
  if (a.dtype() == nb::dtype<float>()) return DType::f32;
  if (a.dtype() == nb::dtype<double>()) return DType::f64;
  throw TypeError(op_message(op, std::string(name) + " has dtype " + dtype_name(a) +
                                     ", expected float32 or float64"));
}

void require_dtype(const Array& a, DType dt, const char* op, const char* name) {
  const bool ok = dt == DType::f32 ? a.dtype() == nb::dtype<float>() : a.dtype() == nb::dtype<double>();
  if (!ok)
    throw TypeError(op_message(op, std::string(name) + " has dtype " + dtype_name(a) + ", expected " +
                                       (dt == DType::f32 ? "float32" : "float64") + " like the other operands"));
}

void require_int64(const Array& a, const char* op, const char* name) {
  if (a.dtype() != nb::dtype<int64_t>())
    throw TypeError(op_message(op, std::string(name) + " has dtype " + dtype_name(a) + ", expected int64"));
}

void require_contiguous(const Array& a, const char* op, const char* name) {
  for (size_t i = 0; i < a.ndim(); ++i)
    if (a.shape(i) == 0) return;  // empty arrays carry arbitrary (often zero) strides
  int64_t expected = 1;
  for (size_t i = a.ndim(); i-- > 0;) {
    if (a.shape(i) != 1 && a.stride(i) != expected)
      throw ValueError(op_message(op, std::string(name) + " is not C-contiguous; call np.ascontiguousarray first"));
    expected *= a.shape(i);
  }
}

void require_ndim(const Array& a, size_t nd, const char* op, const char* name) {
  if (a.ndim() != nd)
    throw ValueError(op_message(op, std::string(name) + " has shape " + shape_str(a) + ", expected " +
                                        std::to_string(nd) + " dimensions"));
}

void require_shape(const Array& a, const std::vector<int64_t>& shape, const char* op, const char* name) {
  bool ok = a.ndim() == shape.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) {
    std::ostringstream s;
    s << "(";
    for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    if (shape.size() == 1) s << ",";
    s << ")";
    throw ValueError(op_message(op, std::string(name) + " has shape " + shape_str(a) + ", expected " + s.str()));
  }
}

void require_same_device(const Array& a, const Array& ref, const char* op, const char* name) {
  if (a.device_type() != ref.device_type() || a.device_id() != ref.device_id())
    throw TypeError(op_message(op, std::string(name) + " is on a different device than the other operands"));
}

namespace {
bool overlaps(const Array& a, const Array& b) {
  const auto* pa = static_cast<const char*>(a.data());
  const auto* pb = static_cast<const char*>(b.data());
  const int64_t na = numel(a) * (a.dtype().bits / 8), nbytes = numel(b) * (b.dtype().bits / 8);
  return na > 0 && nbytes > 0 && pa < pb + nbytes && pb < pa + na;
}
}  // namespace

void require_disjoint(const char* op, std::initializer_list<Named> outs, std::initializer_list<Named> ins) {
  for (auto o = outs.begin(); o != outs.end(); ++o) {
    if (!o->first) continue;
    for (const auto& [a, name] : ins)
      if (a && overlaps(*o->first, *a))
        throw ValueError(op_message(op, std::string(o->second) + " shares memory with " + name));
    for (auto p = std::next(o); p != outs.end(); ++p)
      if (p->first && overlaps(*o->first, *p->first))
        throw ValueError(op_message(op, std::string(o->second) + " shares memory with " + p->second));
  }
}

void require_cuda_built(const char* op) {
#if !defined(HEPNN_WITH_CUDA)
  throw Error(op_message(op, "got a CUDA array, but this hepnn was built without the CUDA backend"));
#endif
}

void require_supported_device(const Array& a, const char* op, const char* name) {
  if (is_cpu(a)) return;
  if (is_cuda(a)) {
    require_cuda_built(op);
    return;
  }
  throw TypeError(op_message(op, std::string(name) + " lives on an unsupported device (only CPU and CUDA arrays)"));
}

}  // namespace hepnn::py

NB_MODULE(_core, m) {
  using namespace hepnn;
  m.doc() = "hepnn compiled kernels (private: use the hepnn package)";
  nanobind::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });
  auto& fns = py::registry();
  std::sort(fns.begin(), fns.end(), [](const auto& a, const auto& b) { return std::strcmp(a.first, b.first) < 0; });
  for (auto& [name, fn] : fns) fn(m);
}
