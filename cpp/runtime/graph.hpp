// The loaded, validated, immutable model: values, constants, and the steps of the graph in
// topological order after fusion. Shared read-only by every Session (any thread).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace hepnn::rt {

enum class StepKind { linear, gemm, matmul, binary, act, erf, softmax, copy, flatten, reshape };
enum class BinOp { add, sub, mul, div };

struct Value {
  std::string name;
  bool is_const = false;
  bool is_int = false;             // int64 constants (Reshape shapes) never feed a float kernel
  std::vector<int64_t> shape;      // constants only; activations get theirs from the Session
  std::vector<float> data;
  std::vector<int64_t> ints;
};

struct Step {
  StepKind kind;
  std::string op;                 // "Gemm", "MatMul+Add+Relu" ... for messages
  std::vector<int> in;            // value ids; -1 for an absent optional input
  int out = -1;
  Act act = Act::none;            // linear, act
  double alpha = 0;               // act parameter
  float scale = 1;                // act: y = scale * act(x) (Selu with non-standard gamma)
  BinOp bin = BinOp::add;
  int64_t axis = -1;              // softmax, flatten
  bool log = false;               // softmax
  bool trans_a = false, trans_b = false;  // gemm
  float g_alpha = 1, g_beta = 1;  // gemm
  bool allowzero = false;         // reshape
  std::vector<int64_t> shape_spec;  // reshape
  bool rank2_input = false;       // linear from Gemm: ONNX Gemm takes 2-D input only
};

class Model {
 public:
  // Parses, validates and plans the shape-independent part. Throws hepnn::Error on any problem.
  static std::shared_ptr<const Model> load(const uint8_t* data, size_t size);
  static std::shared_ptr<const Model> load_file(const std::string& path);

  std::vector<Value> values;
  std::vector<Step> steps;
  std::vector<int> inputs, outputs;                 // value ids
  std::vector<std::vector<int64_t>> input_dims;     // -1 where symbolic or unknown
  std::vector<bool> input_has_shape;
  int64_t ir_version = 0, opset = 0;

  std::vector<std::string> input_names() const;
  std::vector<std::string> output_names() const;
};

}  // namespace hepnn::rt
