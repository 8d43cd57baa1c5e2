// CUDA twin of cpp/ops/conv_pool.hpp (same signatures plus the stream): max, average and
// adaptive pooling over NCHW planes, forward and backward, deterministic (no atomics).
#pragma once
#include <cstdint>

#include "core/types.hpp"
#include "ops/conv_pool.hpp"

namespace hepnn::cuda {

template <typename T>
void max_pool2d_forward(const PoolShape& s, const T* x, T* y, std::int64_t* idx, Stream stream);
template <typename T>
void max_pool_backward(index_t P, index_t HW, index_t OHW, const T* dy, const std::int64_t* idx, T* dx,
                       Stream stream);
template <typename T>
void avg_pool2d_forward(const PoolShape& s, bool count_include_pad, const T* x, T* y, Stream stream);
template <typename T>
void avg_pool2d_backward(const PoolShape& s, bool count_include_pad, const T* dy, T* dx, Stream stream);
template <typename T>
void adaptive_avg_pool2d_forward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* x, T* y,
                                 Stream stream);
template <typename T>
void adaptive_avg_pool2d_backward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* dy, T* dx,
                                  Stream stream);
template <typename T>
void adaptive_max_pool2d_forward(index_t P, index_t H, index_t W, index_t OH, index_t OW, const T* x, T* y,
                                 std::int64_t* idx, Stream stream);

}  // namespace hepnn::cuda
