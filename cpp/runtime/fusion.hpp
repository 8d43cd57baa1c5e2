// Load-time graph rewrites on a Model's steps (see fusion.cpp).
#pragma once
#include "runtime/graph.hpp"

namespace hepnn::rt {

// x/sqrt(2) -> Erf -> +1 -> *x -> *0.5 becomes one gelu (erf) step.
void fuse_gelu(Model& m);
// Gemm/MatMul as linear steps absorb a following bias Add and activation; Conv an activation and a
// MaxPool.
void fuse_linear(Model& m);

}  // namespace hepnn::rt
