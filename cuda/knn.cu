// CUDA k nearest neighbours: one thread per (event, point) row computes squared distances
// sum_d (x_i - x_j)^2 to every valid point of its event and keeps the K best, ordered by
// (distance, index), in its own K slots of the output plus a K-float scratch list: the same
// arithmetic and tie rule as the CPU kernel, so both give the same indices. Float and double.
#include <cuda_runtime.h>

#include "cuda/device.hpp"
#include "cuda/launch.cuh"
#include "cuda/knn.hpp"

namespace hepnn::cuda {
namespace {

template <typename T>
__global__ void knn_kernel(index_t B, index_t N, index_t D, index_t K, const T* coords, const std::uint8_t* mask,
                           index_t* idx, T* dist) {
  for (index_t r = blockIdx.x * index_t(blockDim.x) + threadIdx.x; r < B * N; r += index_t(gridDim.x) * blockDim.x) {
    const index_t b = r / N, i = r % N;
    index_t* out = idx + r * K;
    T* bd = dist + r * K;
    for (index_t s = 0; s < K; ++s) out[s] = -1;
    if (mask && !mask[r]) continue;
    const T* xi = coords + r * D;
    index_t have = 0;
    for (index_t j = 0; j < N; ++j) {
      if (j == i || (mask && !mask[b * N + j])) continue;
      const T* xj = coords + (b * N + j) * D;
      T d2 = T(0);
      for (index_t d = 0; d < D; ++d) {
        const T t = xi[d] - xj[d];
        d2 += t * t;
      }
      if (have == K && !(d2 < bd[K - 1])) continue;
      index_t p = have < K ? have++ : K - 1;
      while (p > 0 && d2 < bd[p - 1]) {
        bd[p] = bd[p - 1];
        out[p] = out[p - 1];
        --p;
      }
      bd[p] = d2;
      out[p] = j;
    }
  }
}

}  // namespace

template <typename T>
void knn_forward(index_t B, index_t N, index_t D, index_t K, const T* coords, const std::uint8_t* mask, index_t* idx,
                 Stream stream) {
  check_value(B >= 0 && N >= 0 && D >= 0 && K >= 1, "knn", "sizes must be >= 0 and k >= 1");
  if (B * N == 0) return;
  const cudaStream_t s = as_cuda(stream);
  Scratch<T> dist(size_t(B * N * K), s, "knn");
  knn_kernel<T><<<grid_for(B * N, 128), 128, 0, s>>>(B, N, D, K, coords, mask, idx, dist.get());
  check_launch("knn");
}

template void knn_forward<float>(index_t, index_t, index_t, index_t, const float*, const std::uint8_t*, index_t*,
                                 Stream);
template void knn_forward<double>(index_t, index_t, index_t, index_t, const double*, const std::uint8_t*, index_t*,
                                  Stream);

}  // namespace hepnn::cuda
