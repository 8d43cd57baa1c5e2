// CUDA batch normalisation over (N, C, S) with an optional (N, S) point mask. One block per
// channel (grid-stride over channels): forward is one kernel (two-pass mean / variance in double,
// running-stat update by thread 0, then the write of y); backward is one kernel (the two sums,
// then dx). Block sums are fixed xor-butterfly trees, so results are deterministic.
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/batchnorm.hpp"
#include "cuda/device.hpp"
#include "cuda/launch.cuh"
#include "cuda/reduce_util.cuh"

namespace hepnn::cuda {
namespace {

constexpr index_t kMaxChannelBlocks = 65535;

// Element i of channel c's N * S points: sample n = i / S, point s = i % S.
__device__ __forceinline__ index_t offset_of(index_t i, index_t c, index_t C, index_t S) {
  const index_t n = i / S;
  return (n * C + c) * S + (i - n * S);
}

__device__ __forceinline__ bool valid_at(const std::uint8_t* mask, index_t i) {
  return mask == nullptr || mask[i] != 0;
}

template <typename T>
__global__ void forward_kernel(index_t N, index_t C, index_t S, const T* __restrict__ x,
                               const std::uint8_t* __restrict__ mask, const T* __restrict__ weight,
                               const T* __restrict__ bias, T* running_mean, T* running_var,
                               bool training, double momentum, double eps, T* __restrict__ y,
                               T* save_mean, T* save_invstd) {
  __shared__ double smem[32];
  const index_t M = N * S;
  for (index_t c = blockIdx.x; c < C; c += gridDim.x) {
    double mean, var, count = 0.0;
    if (training) {
      double s = 0.0, k = 0.0;
      for (index_t i = threadIdx.x; i < M; i += blockDim.x)
        if (valid_at(mask, i)) {
          s += double(x[offset_of(i, c, C, S)]);
          k += 1.0;
        }
      count = block_sum(k, smem);
      mean = block_sum(s, smem) / count;
      double sd = 0.0, sq = 0.0;
      for (index_t i = threadIdx.x; i < M; i += blockDim.x)
        if (valid_at(mask, i)) {
          const double d = double(x[offset_of(i, c, C, S)]) - mean;
          sd += d;
          sq += d * d;
        }
      sd = block_sum(sd, smem);
      sq = block_sum(sq, smem);
      // NOTE: two-pass variance with the rounding correction of the mean, as on the CPU.
      var = fmax(0.0, (sq - sd * sd / count) / count);
    } else {
      mean = double(running_mean[c]);
      var = double(running_var[c]);
    }
    const double invstd = 1.0 / sqrt(var + eps);
    if (threadIdx.x == 0) {
      if (save_mean) save_mean[c] = T(mean);
      if (save_invstd) save_invstd[c] = T(invstd);
      if (training && running_mean)
        running_mean[c] = T((1.0 - momentum) * double(running_mean[c]) + momentum * mean);
      if (training && running_var)
        running_var[c] = T((1.0 - momentum) * double(running_var[c]) +
                           momentum * var * count / (count - 1.0));
    }
    // NOTE: mean = hi + lo in two T values, y = ((x - hi) - lo) * scale + shift (see the CPU file).
    const T hi = T(mean), lo = T(mean - double(hi)), scale = T(invstd * (weight ? double(weight[c]) : 1.0));
    const T shift = bias ? bias[c] : T(0);
    for (index_t i = threadIdx.x; i < M; i += blockDim.x) {
      const index_t o = offset_of(i, c, C, S);
      y[o] = valid_at(mask, i) ? ((x[o] - hi) - lo) * scale + shift : T(0);
    }
    __syncthreads();  // smem is reused by the next channel's sums
  }
}

template <typename T>
__global__ void backward_kernel(index_t N, index_t C, index_t S, const T* __restrict__ x,
                                const std::uint8_t* __restrict__ mask,
                                const T* __restrict__ weight, const T* __restrict__ save_mean,
                                const T* __restrict__ save_invstd, const T* __restrict__ dy,
                                bool training, bool sums, T* __restrict__ dx,
                                T* __restrict__ dweight, T* __restrict__ dbias) {
  __shared__ double smem[32];
  const index_t M = N * S;
  for (index_t c = blockIdx.x; c < C; c += gridDim.x) {
    const double mean = double(save_mean[c]), invstd = double(save_invstd[c]);
    double sg = 0.0, sgx = 0.0, sd = 0.0, count = 0.0;
    if (sums) {
      for (index_t i = threadIdx.x; i < M; i += blockDim.x)
        if (valid_at(mask, i)) {
          const index_t o = offset_of(i, c, C, S);
          const double d = double(x[o]) - mean;
          sg += double(dy[o]);
          sgx += double(dy[o]) * d;
          sd += d;
          count += 1.0;
        }
      sg = block_sum(sg, smem);
      sgx = block_sum(sgx, smem);
      sd = block_sum(sd, smem);
      count = block_sum(count, smem);
    }
    const bool full = training && count > 0.0;
    // NOTE: recovers the rounding of the saved mean from the data, as on the CPU.
    const double dmean = full ? sd / count : 0.0;
    const double sxh = sgx - dmean * sg;
    if (sums && threadIdx.x == 0) {
      if (dbias) dbias[c] = T(sg);
      if (dweight) dweight[c] = T(sxh * invstd);
    }
    if (dx) {
      const T k = T(invstd * (weight ? double(weight[c]) : 1.0));
      const T a = full ? T(sg / count) : T(0);
      const T b = full ? T(sxh * invstd * invstd / count) : T(0);
      const T hi = save_mean[c], lo = T(dmean);
      for (index_t i = threadIdx.x; i < M; i += blockDim.x) {
        const index_t o = offset_of(i, c, C, S);
        dx[o] = valid_at(mask, i) ? k * (dy[o] - a - ((x[o] - hi) - lo) * b) : T(0);
      }
    }
    __syncthreads();
  }
}

unsigned channel_blocks(index_t C) { return unsigned(std::max<index_t>(1, std::min(C, kMaxChannelBlocks))); }

}  // namespace

template <typename T>
void batchnorm_forward(index_t N, index_t C, index_t S, const T* x, const std::uint8_t* mask,
                       const T* weight, const T* bias, T* running_mean, T* running_var,
                       bool training, double momentum, double eps, T* y, T* save_mean,
                       T* save_invstd, Stream stream) {
  check_value(N >= 0 && C >= 0 && S >= 0, "batch_norm", "negative size");
  check_value(training || (running_mean && running_var), "batch_norm",
              "eval mode needs running_mean and running_var");
  if (C == 0) return;
  forward_kernel<T><<<channel_blocks(C), kBlock, 0, as_cuda(stream)>>>(
      N, C, S, x, mask, weight, bias, running_mean, running_var, training, momentum, eps, y,
      save_mean, save_invstd);
  check_launch("batch_norm_forward");
}

template <typename T>
void batchnorm_backward(index_t N, index_t C, index_t S, const T* x, const std::uint8_t* mask,
                        const T* weight, const T* save_mean, const T* save_invstd, const T* dy,
                        bool training, T* dx, T* dweight, T* dbias, Stream stream) {
  check_value(N >= 0 && C >= 0 && S >= 0, "batch_norm", "negative size");
  if (C == 0) return;
  const bool sums = dweight || dbias || (dx && training);
  backward_kernel<T><<<channel_blocks(C), kBlock, 0, as_cuda(stream)>>>(
      N, C, S, x, mask, weight, save_mean, save_invstd, dy, training, sums, dx, dweight, dbias);
  check_launch("batch_norm_backward");
}

template void batchnorm_forward<float>(index_t, index_t, index_t, const float*, const std::uint8_t*,
                                       const float*, const float*, float*, float*, bool, double,
                                       double, float*, float*, float*, Stream);
template void batchnorm_forward<double>(index_t, index_t, index_t, const double*,
                                        const std::uint8_t*, const double*, const double*, double*,
                                        double*, bool, double, double, double*, double*, double*,
                                        Stream);
template void batchnorm_backward<float>(index_t, index_t, index_t, const float*,
                                        const std::uint8_t*, const float*, const float*,
                                        const float*, const float*, bool, float*, float*, float*,
                                        Stream);
template void batchnorm_backward<double>(index_t, index_t, index_t, const double*,
                                         const std::uint8_t*, const double*, const double*,
                                         const double*, const double*, bool, double*, double*,
                                         double*, Stream);

}  // namespace hepnn::cuda
