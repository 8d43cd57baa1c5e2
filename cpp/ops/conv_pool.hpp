// Pooling on the CPU over NCHW planes (P = B * C independent H x W planes), PyTorch semantics:
// max pooling (indices of the maxima kept for backward), average pooling (count_include_pad or
// not), adaptive average / max pooling (global pooling is output 1 x 1). 1-D pooling is H = 1.
#pragma once
#include <cstdint>

#include "core/types.hpp"

namespace hepnn {

// One pooling window geometry; OH/OW are the output plane (floor mode, as torch's default).
struct PoolShape {
  index_t P, H, W;   // planes and input plane
  index_t KH, KW;    // window
  index_t sh, sw;    // stride
  index_t ph, pw;    // implicit padding (-inf for max, zeros for average)
  index_t dh, dw;    // dilation (max pooling only; 1 for average)
  index_t OH, OW;
};

}  // namespace hepnn

namespace hepnn::cpu {

// y (P, OH, OW) = window maxima of x (P, H, W); idx receives each maximum's flat index ih * W + iw
// in its plane (torch's return_indices), or nothing when idx is null (inference). NaN wins, ties
// keep the first element (as in torch).
template <typename T>
void max_pool2d_forward(const PoolShape& s, const T* x, T* y, std::int64_t* idx);

// dx (P, H, W) = dy scattered to the saved indices (summed where windows share a maximum).
// Also the backward of adaptive_max_pool2d. `HW` and `OHW` are the plane sizes.
template <typename T>
void max_pool_backward(index_t P, index_t HW, index_t OHW, const T* dy, const std::int64_t* idx, T* dx);

// y = window means; the divisor is KH * KW when count_include_pad, else the number of window
// elements inside the input.
template <typename T>
void avg_pool2d_forward(const PoolShape& s, bool count_include_pad, const T* x, T* y);
template <typename T>
void avg_pool2d_backward(const PoolShape& s, bool count_include_pad, const T* dy, T* dx);

// Adaptive pooling to OH x OW: window i along an axis covers [floor(i*H/OH), ceil((i+1)*H/OH)).
template <typename T>
void adaptive_avg_pool2d_forward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* x, T* y);
template <typename T>
void adaptive_avg_pool2d_backward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* dy, T* dx);
template <typename T>
void adaptive_max_pool2d_forward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* x, T* y,
                                 std::int64_t* idx);

}  // namespace hepnn::cpu
