// Shared vocabulary of kernel signatures: index type, dtype tag, GEMM transposes, activations.
#pragma once
#include <cstdint>

namespace hepnn {

using index_t = std::int64_t;

enum class DType : int { f32 = 0, f64 = 1 };

// Row-major operand layout for GEMM: N = as stored, T = transposed.
enum class Trans : int { N = 0, T = 1 };

// Activations shared by the elementwise kernels and the fused linear layer.
// `alpha` parameterises leaky_relu (negative slope) and elu (alpha); softplus uses beta=1,
// threshold=20 like torch's default.
enum class Act : int {
  none = 0,
  relu = 1,
  leaky_relu = 2,
  elu = 3,
  selu = 4,
  gelu_erf = 5,
  gelu_tanh = 6,
  sigmoid = 7,
  tanh = 8,
  softplus = 9,
};

enum class Reduction : int { none = 0, mean = 1, sum = 2 };

// Opaque CUDA stream (cudaStream_t) so that headers stay free of CUDA includes.
using Stream = void*;

}  // namespace hepnn
