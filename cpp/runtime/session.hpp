// A Session runs one Model from one thread: it owns the per-shape plan (shapes of every value,
// kernel parameters, values folded for these shapes, a liveness-based memory plan) and the
// scratch arena. After the first call for a set of input shapes, run() performs no heap allocation.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/graph.hpp"
#include "runtime/ops.hpp"

namespace hepnn::rt {

class Session {
 public:
  Session(std::shared_ptr<const Model> model, int threads);

  const Model& model() const { return *model_; }
  int threads() const { return threads_; }

  // Plans for these input shapes (model input order) unless they equal the last plan's.
  void prepare(const int64_t* const* shapes, const int32_t* ndims);
  // Shape inference and plan-time folding only (no memory plan): Model::load checks graphs
  // whose input shapes are all fixed this way.
  void check_shapes(const std::vector<Shape>& shapes);
  // Runs with inputs of the prepared shapes (each of its input's element type); outputs[i] may
  // be null to skip output i.
  void run(const void* const* inputs, void* const* outputs);
  const Shape& output_shape(size_t i) const { return shapes_[model_->outputs[i]]; }
  int64_t output_numel(size_t i) const;
  Elem output_elem(size_t i) const { return model_->values[model_->outputs[i]].elem; }
  // Scratch of the current plan in units of 4 bytes (buffer reuse makes this far less than the
  // sum of all values).
  size_t arena_floats() const { return arena_.size(); }
  // Steps that run() executes for the current plan (the others were folded at plan time).
  size_t live_steps() const;

 private:
  void set_input_shapes(const int64_t* const* shapes, const int32_t* ndims);
  void plan(bool memory);
  void plan_memory();

  std::shared_ptr<const Model> model_;
  int threads_;
  bool planned_ = false;
  std::vector<Shape> shapes_;                  // per value
  std::vector<const void*> known_;             // per value: data known before running, else null
  std::vector<std::vector<int64_t>> folded_;   // per value: storage of values folded at plan time
  std::vector<StepPlan> plans_;                // per step
  std::vector<float> arena_;
  std::vector<int64_t> scratch_;               // the largest per-step scratch of the plan
  std::vector<void*> ptr_;                     // per value, for the current run
  std::vector<const void*> in_ptrs_;           // per step call: input pointers (sized at plan time)
};

}  // namespace hepnn::rt
