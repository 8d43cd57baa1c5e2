// Launch plumbing shared by every CUDA op family: the stream cast, grid sizes for grid-stride
// loops, and stream-ordered scratch buffers that are freed on the same stream.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"
#include "core/types.hpp"

namespace hepnn::cuda {

inline cudaStream_t as_cuda(Stream s) { return static_cast<cudaStream_t>(s); }

constexpr int kBlock = 256;

// Blocks for a grid-stride loop over n items: enough to fill any current GPU, never more than
// the items need. Depends only on n, so reductions built on it are deterministic.
inline unsigned grid_for(index_t n, int per_block = kBlock, index_t max_blocks = 4096) {
  index_t b = (n + per_block - 1) / per_block;
  if (b > max_blocks) b = max_blocks;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

// NOTE: the default pool's release threshold is 0, so every synchronisation would hand freed scratch
// back to the driver and the next step would pay a real allocation. Raising it once per device
// keeps the (small) scratch blocks cached in the pool.
inline void keep_pool_memory() {
  static std::atomic<std::uint64_t> done{0};  // bit d set: device d configured
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) {
    cudaGetLastError();
    return;
  }
  const std::uint64_t bit = std::uint64_t(1) << dev;
  if (done.load(std::memory_order_relaxed) & bit) return;
  cudaMemPool_t pool;
  std::uint64_t threshold = UINT64_MAX;
  cudaError_t err = cudaDeviceGetDefaultMemPool(&pool, dev);
  if (err == cudaSuccess) err = cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold);
  if (err != cudaSuccess) cudaGetLastError();  // a failure here only costs speed; don't report it
  done.fetch_or(bit, std::memory_order_relaxed);
}

// Scratch memory from the stream-ordered allocator; released with cudaFreeAsync on the same
// stream when the guard leaves scope, so no host synchronisation is ever needed.
template <typename T>
class Scratch {
 public:
  Scratch(std::size_t count, cudaStream_t s, const char* op) : stream_(s) {
    if (count == 0) return;
    keep_pool_memory();
    const cudaError_t err = cudaMallocAsync(reinterpret_cast<void**>(&ptr_), count * sizeof(T), s);
    if (err != cudaSuccess) {
      cudaGetLastError();  // not sticky; keep it from being reported by the next launch check
      ptr_ = nullptr;
      throw Error(op_message(op, std::string("CUDA scratch allocation of ") +
                                     std::to_string(count * sizeof(T)) +
                                     " bytes failed: " + cudaGetErrorString(err)));
    }
  }
  ~Scratch() {
    if (ptr_) cudaFreeAsync(ptr_, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace hepnn::cuda
