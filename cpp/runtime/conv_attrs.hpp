// Attributes of the runtime's convolution, pooling and normalisation steps (read at load by
// build_step_conv.cpp) and their per-shape plan (made by ops_conv.cpp / ops_norm.cpp), in the
// geometry of the training kernels (ops/conv_shape.hpp, ops/conv_pool.hpp).
#pragma once
#include <cstdint>
#include <vector>

#include "ops/conv_pool.hpp"
#include "ops/conv_shape.hpp"

namespace hepnn::rt {

enum class AutoPad { notset, valid, same_upper, same_lower };
enum class PoolKind { max, avg, global_max, global_avg };

// As the node gives them; empty vectors are defaults resolved against the input rank at plan
// time (1-d or 2-d: the kernels' H x W plane, 1-d being H = 1).
struct ConvAttrs {
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begin..., end... (ONNX order)
  std::vector<int64_t> output_padding, output_shape;     // ConvTranspose
  int64_t group = 1;
  AutoPad auto_pad = AutoPad::notset;
  PoolKind pool = PoolKind::max;
  bool ceil_mode = false, count_include_pad = false;
  double eps = 1e-5;                                     // BatchNormalization, LayerNormalization
  // Conv: the attributes of a MaxPool fused after it (0 or 1 entries; fusion.cpp).
  std::vector<ConvAttrs> then_max_pool;
};

// Kernel geometry for the current shapes. The kernels pad symmetrically; where asymmetric pads
// matter they run the kernel with a larger pad on both sides into scratch and copy the wanted
// window out ("crop":
// planes of crop_h x crop_w read at row crop_r0, column crop_c0, where outside reads give the
// fill, the bias for ConvTranspose) into the out_h x out_w output planes.
struct ConvPlan {
  ConvShape cs{};
  PoolShape ps{};
  bool crop = false;
  bool pooled = false;         // conv + max pool: PoolShape ps pools the conv output (see run_conv)
  int64_t conv_n = 0;          // conv + max pool with a crop: elements of the cropped conv output
  int64_t crop_planes = 0, crop_h = 0, crop_w = 0, crop_r0 = 0, crop_c0 = 0, out_h = 0, out_w = 0;
  int64_t N = 0, C = 0, S = 0;  // BatchNorm: (N, C, S); LayerNorm: N rows of C
};

}  // namespace hepnn::rt
