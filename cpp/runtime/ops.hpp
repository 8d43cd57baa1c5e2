// The runtime's operator layer: for each step kind, shape inference (infer_step, at plan time or,
// for constant inputs, at load) and the kernel (run_step). The Session and load-time constant
// folding both go through these two functions, so a folded value is computed by the same code
// that runs it. Kernels live in ops_*.cpp by group; dispatch is the one switch in ops.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/graph.hpp"

namespace hepnn::rt {

using Shape = std::vector<int64_t>;

// Per-step kernel parameters for the current input shapes. Built at plan time only; run_step
// reads it and never allocates.
struct StepPlan {
  int64_t n = 0, n2 = 0;             // output elements (n2: TopK's indices, equal to n)
  int64_t M = 0, N = 0, K = 0, batch = 1, stride_a = 0, stride_b = 0;  // gemm, matmul, linear
  int64_t c_rows = 0, c_cols = 0;    // gemm: C's broadcast extents (0: no C)
  int rank = 0;                      // broadcasting and strided ops: output rank
  bool general = false;              // matmul: batch broadcasting needs one product per matrix
  int64_t dims[8] = {}, sa[8] = {}, sb[8] = {}, sc[8] = {};  // output dims, per-input strides
  int64_t outer = 0, dim = 0, inner = 0;  // softmax, gather, reduce over one axis, argmax, topk
  int64_t k = 0;                     // topk: k; gather: size of the gathered axis
  int64_t offset = 0;                // slice: first element
  size_t scratch = 0;                // bytes of per-step scratch the kernel needs (topk)
  bool folded = false;               // computed at plan time: run() skips the step
  Elem e0 = Elem::f32, e1 = Elem::f32;  // element types of inputs 0 and 1 (kernel selection)
  std::vector<int64_t> v;            // concat: per-input (rows of inner) sizes
};

// What infer_step sees of each input: its shape, and its data when known before running
// (a constant, or a value folded at plan time), else null.
struct InferIn {
  const Shape* shape = nullptr;      // null for an absent optional input
  const void* known = nullptr;
  Elem elem = Elem::f32;
};

// Output shape(s) and plan of step `s`; throws ValueError("[runtime] <op>: ...") when the shapes
// are inconsistent or a shape-defining input is not known before running.
void infer_step(const Step& s, const std::vector<InferIn>& in, Shape& out, Shape& out2, StepPlan& p);

// Runs step `s` on its inputs (null for absent ones). `scratch` holds p.scratch bytes. out3 (LSTM's
// Y_c) has out2's shape.
void run_step(const Step& s, const StepPlan& p, const void* const* in, void* out, void* out2, void* scratch,
              void* out3 = nullptr);

// Steps whose output is their input's data under another shape (Reshape, Flatten, Squeeze,
// Unsqueeze, Identity, inference Dropout): a session runs them as views of the input's storage.
inline bool is_view(StepKind k) {
  return k == StepKind::copy || k == StepKind::flatten || k == StepKind::reshape || k == StepKind::squeeze ||
         k == StepKind::unsqueeze;
}

// Largest value that constant folding materialises (elements); larger ones run as ordinary steps.
constexpr int64_t kMaxFoldElements = int64_t(1) << 24;

// Largest output of the ops that expand a small input into a large one (Range, ConstantOfShape,
// Tile, Expand): a few bytes of a hostile file must not make the plan allocate gigabytes.
// NOTE: 2^25 elements (128 MiB of float32) covers B x N x F masks of large batches.
constexpr int64_t kMaxExpandElements = int64_t(1) << 25;

// ---- per-group entry points (ops_*.cpp) ----
void infer_linear(const Step&, const std::vector<InferIn>&, Shape&, StepPlan&);
void run_linear(const Step&, const StepPlan&, const void* const*, void*);
void infer_elementwise(const Step&, const std::vector<InferIn>&, Shape&, StepPlan&);
void run_elementwise(const Step&, const StepPlan&, const void* const*, void*);
void infer_shape_op(const Step&, const std::vector<InferIn>&, Shape&, StepPlan&);
void run_shape_op(const Step&, const StepPlan&, const void* const*, void*);
void infer_index(const Step&, const std::vector<InferIn>&, Shape&, Shape&, StepPlan&);
void run_index(const Step&, const StepPlan&, const void* const*, void*, void*, void*);
void infer_reduce(const Step&, const std::vector<InferIn>&, Shape&, StepPlan&);
void run_reduce(const Step&, const StepPlan&, const void* const*, void*);
void infer_rnn(const Step&, const std::vector<InferIn>&, Shape&, Shape&, StepPlan&);
void run_rnn(const Step&, const StepPlan&, const void* const*, void*, void*, void*, void*);

// ---- helpers shared by the op files ----
[[noreturn]] void op_fail(const Step& s, const std::string& what);
std::string shape_str(const Shape& s);
int64_t checked_numel(const Shape& s, const std::string& what);
int64_t prod(const Shape& s, size_t b, size_t e);
// numpy broadcasting of up to three shapes into p.rank/p.dims and strides sa, sb, sc (0 where a
// dimension is broadcast); returns the output shape.
Shape broadcast_plan(const Step& s, const Shape& a, const Shape& b, const Shape* c, StepPlan& p);
// Normalises an axis against rank r (negative counts from the end); refuses out-of-range axes.
int64_t norm_axis(const Step& s, int64_t axis, int64_t r, const char* what);
// Refuses an expanding op's output beyond kMaxExpandElements (ops_shape.cpp).
void check_expansion(const Step& s, const StepPlan& p);
// The int64 values of a shape-defining input, which must be known before running.
std::vector<int64_t> known_ints(const Step& s, const InferIn& in, const char* what);

}  // namespace hepnn::rt
