// The loaded, validated, immutable model: values (each with one element type, checked at load),
// constants, and the steps of the graph in topological order after constant folding and fusion.
// Shared read-only by every Session (any thread).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/types.hpp"

namespace hepnn::rt {

// Element types the runtime computes in: float32 activations, int64 shapes and indices, bool masks.
// The values are ONNX's TensorProto codes, so the C API reports them unchanged.
enum class Elem : int { f32 = 1, i64 = 7, b8 = 9 };
inline size_t elem_size(Elem e) { return e == Elem::f32 ? 4 : e == Elem::i64 ? 8 : 1; }
const char* elem_name(Elem e);

enum class StepKind {
  linear, gemm, matmul, binary, compare, where, act, unary, clip, cast, softmax, copy, flatten, reshape,
  squeeze, unsqueeze, transpose, concat, slice, gather, gather_elements, expand, tile, shape,
  constant_of_shape, range, reduce, argmax, topk,
  gru, lstm
};
enum class BinOp { add, sub, mul, div, pow, equal, less, greater, logical_and, mod };
enum class UnOp { erf, exp, log, sqrt, neg, abs, logical_not };
enum class RedOp { sum, mean, max, min };

struct Value {
  std::string name;
  Elem elem = Elem::f32;
  bool is_const = false;
  std::vector<int64_t> shape;      // constants only; activations get theirs from the Session
  std::vector<float> data;         // f32 constants
  std::vector<int64_t> ints;       // i64 constants
  std::vector<uint8_t> bools;      // b8 constants (0 or 1)
  // Never null, even when empty: a null pointer means "not known" to the planner.
  const void* raw() const {
    static const int64_t empty = 0;
    const size_t n = elem == Elem::f32 ? data.size() : elem == Elem::i64 ? ints.size() : bools.size();
    if (n == 0) return &empty;
    return elem == Elem::f32 ? static_cast<const void*>(data.data())
         : elem == Elem::i64 ? static_cast<const void*>(ints.data()) : static_cast<const void*>(bools.data());
  }
};

struct Step {
  StepKind kind;
  std::string op;                 // "Gemm", "MatMul+Add+Relu" ... for messages
  std::vector<int> in;            // value ids; -1 for an absent optional input
  int out = -1;
  int out2 = -1;                  // TopK: the indices output
  Elem elem = Elem::f32;          // element type of the (first) output
  Act act = Act::none;            // linear, act
  double alpha = 0;               // act parameter
  float scale = 1;                // act: y = scale * act(x) (Selu with non-standard gamma)
  BinOp bin = BinOp::add;
  UnOp un = UnOp::erf;
  RedOp red = RedOp::sum;
  int64_t axis = -1;              // softmax, flatten, concat, gather, argmax, topk
  bool log = false;               // softmax
  bool trans_a = false, trans_b = false;  // gemm
  float g_alpha = 1, g_beta = 1;  // gemm
  bool allowzero = false;         // reshape
  bool keepdims = true;           // reduce, argmax
  bool flag = false;              // reduce: noop_with_empty_axes; argmax: select_last_index; topk: largest
  bool has_axes = false;          // reduce/squeeze: axes given (attribute or input)
  std::vector<int64_t> ints;      // transpose: perm; reduce/squeeze/unsqueeze: axes from an attribute
  int64_t lo = 0, hi = 0;         // shape: start, end (hi = INT64_MAX for the default)
  // constant_of_shape: the fill value as 8 bytes of the output's element type
  int64_t fill_i = 0;
  float fill_f = 0;
  bool rank2_input = false;       // linear from Gemm: ONNX Gemm takes 2-D input only
  // gru, lstm (ops_rnn.cpp): outputs Y (out), Y_h (out2), Y_c (out3, LSTM; Y_h's shape)
  int out3 = -1;
  int64_t hidden = 0;             // hidden_size; 0 when the attribute is absent (R's shape gives it)
  int directions = 1;             // 2: bidirectional
  bool reverse = false;           // direction 'reverse' (one direction, t = T-1 .. 0)
  bool batch_major = false;       // layout 1: X (B, T, I), Y (B, T, D, H), states (B, D, H)
  bool linear_before_reset = false;  // GRU
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
