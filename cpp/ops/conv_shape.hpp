// Geometry of a 2-D convolution (NCHW, PyTorch layout), shared by the CPU kernels (cpp/ops/conv*)
// and their CUDA twins (cuda/conv*). Conv1d is the H = 1 case. Shape letters: B batch, C input
// channels, H x W input plane, O output channels, KH x KW kernel, OH x OW output plane.
#pragma once
#include "core/types.hpp"

namespace hepnn {

// NOTE: a transposed convolution is described by the convolution it is the adjoint of: its
// output (B, C, H, W) is this geometry's input, its input (B, O, OH, OW) this geometry's output,
// and its weight (O, C / groups, KH, KW) has exactly the conv weight layout.
struct ConvShape {
  index_t B, C, H, W;     // input
  index_t O, KH, KW;      // weight (O, C / groups, KH, KW)
  index_t sh, sw;         // stride
  index_t ph, pw;         // zero padding on each side
  index_t dh, dw;         // dilation
  index_t groups;
  index_t OH, OW;         // output plane

  index_t Cg() const { return C / groups; }
  index_t Og() const { return O / groups; }
  index_t K() const { return Cg() * KH * KW; }  // GEMM depth: one column of im2col
  index_t N() const { return OH * OW; }          // output pixels per plane
};

// Output length of a convolution along one axis; < 1 means the input is too small.
inline index_t conv_out_size(index_t in, index_t k, index_t s, index_t p, index_t d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

}  // namespace hepnn
