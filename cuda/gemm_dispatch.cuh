// Which GEMM body runs a product: the TF32 tensor-core tiles for float when the user allowed
// them (hepnn.cuda.set_allow_tf32), else SIMT tiles shaped by dtype and size. Shared by gemm.cu
// and linear.cu.
#pragma once
#include <type_traits>

#include "cuda/gemm.hpp"
#include "cuda/gemm_tf32.cuh"
#include "cuda/gemm_tile.cuh"

namespace hepnn::cuda::tile {

// 128x128 tiles with 8x8 micro-tiles feed fp32 FMA units best on big products; 64x64 with 4x4
// keeps enough blocks for small ones and bounds fp64 registers.
template <typename T, bool TA, bool TB, typename Epi>
void run_tiles(const Operands<T>& op, const Epi& epi, index_t batch, cudaStream_t s, const char* name) {
  if constexpr (std::is_same_v<T, float>) {
    if (tf32_allowed()) {
      launch_tf32<TA, TB>(op, epi, batch, s, name);
      return;
    }
    const index_t big_tiles = ((op.M + 127) / 128) * ((op.N + 127) / 128) * batch;
    if (big_tiles >= 132) {
      launch_tiles<T, 128, 128, 8, 8, 8, TA, TB>(op, epi, batch, s, name);
      return;
    }
  }
  launch_tiles<T, 64, 64, 8, 4, 4, TA, TB>(op, epi, batch, s, name);
}

// The split-K products (op.k_split > 0, one slab per z): small outputs, so 64x64 SIMT tiles, or
// the TF32 tiles when allowed.
template <typename T, bool TA, bool TB, typename Epi>
void run_split_tiles(const Operands<T>& op, const Epi& epi, index_t splits, cudaStream_t s, const char* name) {
  if constexpr (std::is_same_v<T, float>) {
    if (tf32_allowed()) {
      launch_tf32<TA, TB>(op, epi, splits, s, name);
      return;
    }
  }
  launch_tiles<T, 64, 64, 8, 4, 4, TA, TB>(op, epi, splits, s, name);
}

}  // namespace hepnn::cuda::tile
