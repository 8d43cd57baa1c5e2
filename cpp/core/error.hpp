// Typed errors of the ops library. Messages read "[op] what is wrong"; the Python bindings map
// ValueError/TypeError to their Python namesakes and everything else to RuntimeError.
#pragma once
#include <stdexcept>
#include <string>

namespace hepnn {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Bad shapes, sizes, hyper-parameters: the caller passed the wrong value.
struct ValueError : Error {
  using Error::Error;
};
// Wrong dtype or device: the caller passed the wrong kind of array.
struct TypeError : Error {
  using Error::Error;
};

inline std::string op_message(const char* op, const std::string& what) {
  return std::string("[") + op + "] " + what;
}

inline void check_value(bool ok, const char* op, const std::string& what) {
  if (!ok) throw ValueError(op_message(op, what));
}
inline void check_type(bool ok, const char* op, const std::string& what) {
  if (!ok) throw TypeError(op_message(op, what));
}

}  // namespace hepnn

// Checks whose message is built only on failure (check_value builds its string argument first,
// which costs on hot binding paths).
#define HEPNN_CHECK_VALUE(cond, op, msg) \
  do {                                    \
    if (!(cond)) throw ::hepnn::ValueError(::hepnn::op_message((op), (msg))); \
  } while (0)
#define HEPNN_CHECK_TYPE(cond, op, msg) \
  do {                                   \
    if (!(cond)) throw ::hepnn::TypeError(::hepnn::op_message((op), (msg))); \
  } while (0)
