// A Session runs one Model from one thread: it owns the per-shape plan (shapes of every value,
// kernel parameters, a liveness-based memory plan) and the scratch arena. After the first call for
// a set of input shapes, run() performs no heap allocation.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/graph.hpp"

namespace hepnn::rt {

// Per-step kernel parameters for the current input shapes.
struct StepPlan {
  int64_t n = 0;                     // output elements
  int64_t M = 0, N = 0, K = 0, batch = 1, stride_a = 0, stride_b = 0;  // gemm, matmul, linear
  int64_t c_rows = 0, c_cols = 0;    // gemm: C's broadcast extents (0: no C)
  int rank = 0;                      // binary; matmul: batch rank
  bool general = false;              // matmul: batch broadcasting needs one product per matrix
  int64_t dims[8] = {}, sa[8] = {}, sb[8] = {};
  int64_t outer = 0, dim = 0, inner = 0;  // softmax
};

class Session {
 public:
  Session(std::shared_ptr<const Model> model, int threads);

  const Model& model() const { return *model_; }
  int threads() const { return threads_; }

  // Plans for these input shapes (model input order) unless they equal the last plan's.
  void prepare(const int64_t* const* shapes, const int32_t* ndims);
  // Runs with inputs of the prepared shapes; outputs[i] may be null to skip output i.
  void run(const float* const* inputs, float* const* outputs);
  const std::vector<int64_t>& output_shape(size_t i) const { return shapes_[model_->outputs[i]]; }
  int64_t output_numel(size_t i) const;
  // Scratch floats of the current plan (buffer reuse makes this far less than the sum of values).
  size_t arena_floats() const { return arena_.size(); }

 private:
  void plan();
  void plan_step(size_t k);
  void plan_memory();

  std::shared_ptr<const Model> model_;
  int threads_;
  bool planned_ = false;
  std::vector<std::vector<int64_t>> shapes_;   // per value
  std::vector<StepPlan> plans_;                // per step
  std::vector<int64_t> offset_;                // per value: arena offset, -1 if not in the arena
  std::vector<float> arena_;
  std::vector<float*> ptr_;                    // per value, for the current run
};

}  // namespace hepnn::rt
