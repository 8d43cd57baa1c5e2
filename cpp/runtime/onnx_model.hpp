// The subset of ONNX's ModelProto that the runtime reads, decoded by hand from the wire format.
// Tensors keep their values as float32 (FLOAT, DOUBLE) or int64 (INT64, INT32, BOOL) after decoding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hepnn::rt {

// ONNX TensorProto.DataType codes the reader understands.
enum OnnxType : int { kFloat = 1, kInt32 = 6, kInt64 = 7, kBool = 9, kDouble = 11 };

struct OnnxTensor {
  std::string name;
  std::vector<int64_t> dims;
  int data_type = 0;           // as in the file
  bool is_int = false;         // values in `ints`, else in `floats`
  std::vector<float> floats;
  std::vector<int64_t> ints;
};

enum AttrType : int {
  kAttrFloat = 1, kAttrInt = 2, kAttrString = 3, kAttrTensor = 4, kAttrFloats = 6, kAttrInts = 7, kAttrStrings = 8
};

struct OnnxAttribute {
  std::string name;
  int type = 0;  // 0 or an unsupported type: kept so that an op that reads it can refuse
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<OnnxTensor> t;  // 0 or 1 element
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

struct OnnxNode {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;
  std::vector<OnnxAttribute> attributes;
};

// A graph input or output: elem_type and dims; a dim is >= 0 (dim_value) or -1 (dim_param/unset).
struct OnnxValueInfo {
  std::string name;
  int elem_type = 0;
  bool has_shape = false;
  std::vector<int64_t> dims;
};

struct OnnxModel {
  int64_t ir_version = 0;
  int64_t opset = -1;  // the default domain's ("" or "ai.onnx"); -1 when absent
  std::vector<OnnxNode> nodes;
  std::vector<OnnxTensor> initializers;
  std::vector<OnnxValueInfo> inputs, outputs;
};

// Decodes `size` bytes. Throws hepnn::Error("[runtime] ...") on anything malformed, truncated,
// or sized beyond what the buffer can hold.
OnnxModel parse_onnx(const uint8_t* data, size_t size);

// Largest dimension and element count the runtime accepts (2^31): refuses absurd shapes early.
constexpr int64_t kMaxElements = int64_t(1) << 31;

}  // namespace hepnn::rt
