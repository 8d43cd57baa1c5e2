// Boundary checks shared by the convolution and pooling bindings (bind_conv.cpp,
// bind_conv_pool.cpp): one dtype/device/contiguity pass over all operands, disjoint outputs,
// and (h, w) hyper-parameter pairs.
#pragma once
#include <initializer_list>
#include <string>
#include <utility>

#include "common.hpp"

namespace hepnn::py::conv {

using Pair = std::pair<int64_t, int64_t>;

inline const Array* opt(const OptArray& a) { return a ? &*a : nullptr; }

// Device, dtype and contiguity of every present float operand; returns the common dtype.
inline DType check_common(const char* op, std::initializer_list<Named> arrays) {
  const Array& ref = *arrays.begin()->first;
  const DType dt = float_dtype(ref, op, arrays.begin()->second);
  for (const auto& [a, name] : arrays) {
    if (!a) continue;
    require_supported_device(*a, op, name);
    require_same_device(*a, ref, op, name);
    require_dtype(*a, dt, op, name);
    require_contiguous(*a, op, name);
  }
  return dt;
}

// An int64 index array on the device of `ref`, contiguous.
inline void check_index(const char* op, const Array& idx, const Array& ref, const char* name) {
  require_supported_device(idx, op, name);
  require_same_device(idx, ref, op, name);
  require_int64(idx, op, name);
  require_contiguous(idx, op, name);
}

inline std::string pair_str(Pair p) {
  return "(" + std::to_string(p.first) + ", " + std::to_string(p.second) + ")";
}

// Both entries >= lo, else "[op] name must be >= lo, got (a, b)".
inline void require_at_least(Pair p, int64_t lo, const char* op, const char* name) {
  if (p.first < lo || p.second < lo)
    throw ValueError(op_message(op, std::string(name) + " must be >= " + std::to_string(lo) + ", got " + pair_str(p)));
}

}  // namespace hepnn::py::conv
