// Typed access to a node's attributes; finish() refuses any attribute the op did not read, so an
// unsupported attribute is an error at load time rather than a silent wrong answer.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "runtime/onnx_model.hpp"

namespace hepnn::rt {

class NodeAttrs {
 public:
  explicit NodeAttrs(const OnnxNode& n) : n_(n) {}

  int64_t get_int(const char* name, int64_t def) {
    const OnnxAttribute* a = find(name, kAttrInt);
    return a ? a->i : def;
  }
  float get_float(const char* name, float def) {
    const OnnxAttribute* a = find(name, kAttrFloat);
    return a ? a->f : def;
  }
  std::string get_string(const char* name, const std::string& def) {
    const OnnxAttribute* a = find(name, kAttrString);
    return a ? a->s : def;
  }
  std::vector<int64_t> get_ints(const char* name, const std::vector<int64_t>& def) {
    const OnnxAttribute* a = find(name, kAttrInts);
    return a ? a->ints : def;
  }
  std::vector<float> get_floats(const char* name, const std::vector<float>& def) {
    const OnnxAttribute* a = find(name, kAttrFloats);
    return a ? a->floats : def;
  }
  std::vector<std::string> get_strings(const char* name, const std::vector<std::string>& def) {
    const OnnxAttribute* a = find(name, kAttrStrings);
    return a ? a->strings : def;
  }
  bool has(const char* name) const {
    for (const OnnxAttribute& a : n_.attributes)
      if (a.name == name) return true;
    return false;
  }
  // The tensor attribute `name`, or null.
  const OnnxTensor* get_tensor(const char* name) {
    const OnnxAttribute* a = find(name, kAttrTensor);
    return a && a->t.size() == 1 ? &a->t[0] : nullptr;
  }
  void finish() const {
    for (const OnnxAttribute& a : n_.attributes)
      if (!read_.count(a.name)) throw Error("[runtime] " + n_.op_type + ": unsupported attribute '" + a.name + "'");
  }

 private:
  const OnnxAttribute* find(const char* name, int type) {
    read_.insert(name);
    for (const OnnxAttribute& a : n_.attributes)
      if (a.name == name) {
        if (a.type != type)
          throw Error("[runtime] " + n_.op_type + ": attribute '" + a.name + "' has type " + std::to_string(a.type) +
                      ", expected " + std::to_string(type));
        return &a;
      }
    return nullptr;
  }
  const OnnxNode& n_;
  std::set<std::string> read_;
};

}  // namespace hepnn::rt
