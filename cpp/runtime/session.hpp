// A Session runs one Model from one thread: it owns per-shape plans (shapes of every value, kernel
// parameters, values folded for these shapes, a liveness-based memory plan, the scratch arena),
// the last kPlanCache of them kept in least-recently-used order, so that alternating input shapes
// (a partial last batch, two batch sizes) re-plan nothing. After the first call for a set of input
// shapes, run() performs no heap allocation while that plan stays cached.
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
  // Move-only: plans own their arenas (spelled out so that copyability traits say so).
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Session(Session&&) = default;
  Session& operator=(Session&&) = default;

  const Model& model() const { return *model_; }
  int threads() const { return threads_; }

  // Plans kept per session; a plan beyond this evicts the least recently used one.
  static constexpr size_t kPlanCache = 4;
  // Cached plans beyond the current one are dropped while all arenas together exceed this.
  static constexpr size_t kPlanCacheBytes = size_t(1) << 28;

  // Makes the plan for these input shapes (model input order) current: the cached one when
  // these shapes were planned before, else a new one.
  void prepare(const int64_t* const* shapes, const int32_t* ndims);
  // Shape inference and plan-time folding only (no memory plan): Model::load checks graphs
  // whose input shapes are all fixed this way.
  void check_shapes(const std::vector<Shape>& shapes);
  // Runs with inputs of the prepared shapes (each of its input's element type); outputs[i] may
  // be null to skip output i.
  void run(const void* const* inputs, void* const* outputs);
  const Shape& output_shape(size_t i) const { return cur_->shapes[model_->outputs[i]]; }
  int64_t output_numel(size_t i) const;
  Elem output_elem(size_t i) const { return model_->values[model_->outputs[i]].elem; }
  // Scratch of the current plan in units of 4 bytes (buffer reuse makes this far less than the
  // sum of all values).
  size_t arena_floats() const { return cur_ ? cur_->arena.size() : 0; }
  // Steps that run() executes for the current plan (the others were folded at plan time).
  size_t live_steps() const;
  // Plans now cached, and plans made since the session was created (a test hook: a cache hit
  // makes none).
  size_t cached_plans() const { return cache_.size(); }
  size_t plans_made() const { return plans_made_; }

 private:
  // Everything that depends on the input shapes. Pointers in ptr point into this plan's own
  // storage (arena, folded) or the model's constants, so a cached plan stays valid as it is.
  struct Plan {
    std::vector<Shape> shapes;                  // per value (the model inputs' are the cache key)
    std::vector<const void*> known;             // per value: data known before running, else null
    std::vector<std::vector<int64_t>> folded;   // per value: storage of values folded at plan time
    std::vector<StepPlan> steps;                // per step
    std::vector<float> arena;
    std::vector<int64_t> scratch;               // the largest per-step scratch of the plan
    std::vector<void*> ptr;                     // per value, for the current run
  };

  std::unique_ptr<Plan> new_plan() const;
  bool matches(const Plan& p, const int64_t* const* shapes, const int32_t* ndims) const;
  void set_input_shapes(Plan& p, const int64_t* const* shapes, const int32_t* ndims);
  void plan(Plan& p, bool memory);
  void plan_memory(Plan& p);
  void evict();

  std::shared_ptr<const Model> model_;
  int threads_;
  std::vector<std::unique_ptr<Plan>> cache_;   // most recently used first; cache_[0] is current
  Plan* cur_ = nullptr;                        // cache_[0].get(), or null before any plan
  size_t plans_made_ = 0;
  std::vector<const void*> in_ptrs_;           // per step call: input pointers (sized by the model)
};

}  // namespace hepnn::rt
