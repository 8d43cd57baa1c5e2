// CUDA fused fully-connected layer (PyTorch layout, W is O x I). Forward: tiled GEMM x @ W^T with
// a bias + activation epilogue (z written when asked). Backward: dz = dy * act' into stream-
// ordered scratch, then dW = dz^T x, db = column sums of dz, dx = dz W. Float and double.
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda/act_math.cuh"
#include "cuda/device.hpp"
#include "cuda/gemm.hpp"
#include "cuda/gemm_dispatch.cuh"
#include "cuda/launch.cuh"
#include "cuda/linear.hpp"

namespace hepnn::cuda {
namespace {

// NOTE: not inlined: the epilogue runs once per micro-tile element (up to 64 unrolled copies),
// and inlining the whole activation switch into each copy bloats code and compile time for a
// step that costs little next to the K loop.
template <typename T>
__device__ __noinline__ T epilogue_act(Act act, T v, T alpha) {
  return act_apply(act, v, alpha);
}

template <typename T>
struct BiasActEpilogue {
  const T* b;
  T* y;
  T* z;
  index_t ld;
  Act act;
  T alpha;
  __device__ __forceinline__ void operator()(index_t, index_t m, index_t n, T acc) const {
    const T v = b ? acc + b[n] : acc;
    if (z) z[m * ld + n] = v;
    y[m * ld + n] = act == Act::none ? v : epilogue_act(act, v, alpha);
  }
};

template <typename T>
__global__ void dz_kernel(Act act, index_t n, const T* __restrict__ z, const T* __restrict__ y,
                          const T* __restrict__ dy, T* __restrict__ dz, T alpha) {
  const bool reads_z = act_reads_input(act), reads_y = act_reads_output(act);
  const index_t stride = index_t(gridDim.x) * blockDim.x;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    dz[i] = act_grad(act, reads_z ? z[i] : T(0), reads_y ? y[i] : T(0), dy[i], alpha);
}

// Column sums of a rows x cols matrix, deterministic and without atomics. A 32 x 8 block owns 32
// columns of one chunk of rows: threadIdx.x walks the contiguous columns, threadIdx.y strides the
// rows, and the 8 partial sums are added in a fixed order. blockIdx.y picks the chunk; each chunk
// writes its own row of `out` (chunks x cols), so a long batch spreads over many blocks and a
// second launch with one chunk adds the chunk rows.
constexpr int kColX = 32, kColY = 8;
template <typename T>
__global__ void column_sum_kernel(index_t rows, index_t cols, index_t chunk_rows,
                                  const T* __restrict__ a, T* __restrict__ out) {
  __shared__ T part[kColY][kColX + 1];
  const index_t c = index_t(blockIdx.x) * kColX + threadIdx.x;
  const index_t r0 = index_t(blockIdx.y) * chunk_rows;
  const index_t r1 = r0 + chunk_rows < rows ? r0 + chunk_rows : rows;
  T s = T(0);
  if (c < cols)
    for (index_t r = r0 + threadIdx.y; r < r1; r += kColY) s += a[r * cols + c];
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    T t = part[0][threadIdx.x];
#pragma unroll
    for (int k = 1; k < kColY; ++k) t += part[k][threadIdx.x];
    out[index_t(blockIdx.y) * cols + c] = t;
  }
}

// db = column sums of dz (rows x cols). Chunks of at least 512 rows, at most 1024 chunks; the
// chunking depends only on the sizes, so the result is the same on every run.
template <typename T>
void column_sum(index_t rows, index_t cols, const T* a, T* out, cudaStream_t s, const char* op) {
  const unsigned gx = unsigned((cols + kColX - 1) / kColX);
  index_t chunk_rows = std::max<index_t>(512, (rows + 1023) / 1024);
  const index_t chunks = rows == 0 ? 1 : (rows + chunk_rows - 1) / chunk_rows;
  if (chunks == 1) {
    column_sum_kernel<T><<<dim3(gx, 1), dim3(kColX, kColY), 0, s>>>(rows, cols, rows, a, out);
    return;
  }
  Scratch<T> part(static_cast<std::size_t>(chunks * cols), s, op);
  column_sum_kernel<T><<<dim3(gx, unsigned(chunks)), dim3(kColX, kColY), 0, s>>>(
      rows, cols, chunk_rows, a, part.get());
  column_sum_kernel<T><<<dim3(gx, 1), dim3(kColX, kColY), 0, s>>>(chunks, cols, chunks,
                                                                  part.get(), out);
}

}  // namespace

template <typename T>
void linear_forward(index_t B, index_t I, index_t O, const T* x, const T* W, const T* b, Act act,
                    double alpha, T* y, T* z, Stream stream) {
  check_value(B >= 0 && I >= 0 && O >= 0, "linear_forward", "negative size");
  if (B == 0 || O == 0) return;
  // y (B x O) = x (B x I) @ W^T, W stored O x I: the NT product.
  const tile::Operands<T> op{x, W, I, I, 0, 0, B, O, I};
  const BiasActEpilogue<T> epi{b, y, z, O, act, T(alpha)};
  tile::run_tiles<T, false, true>(op, epi, 1, as_cuda(stream), "linear_forward");
  check_launch("linear_forward");
}

template <typename T>
void linear_backward(index_t B, index_t I, index_t O, const T* x, const T* W, const T* z,
                     const T* y, const T* dy, Act act, double alpha, T* dx, T* dW, T* db,
                     Stream stream) {
  const char* op = "linear_backward";
  check_value(B >= 0 && I >= 0 && O >= 0, op, "negative size");
  check_value(!act_reads_input(act) || z != nullptr || B * O == 0, op,
              "this activation needs the pre-activation z");
  check_value(!act_reads_output(act) || y != nullptr || B * O == 0, op,
              "this activation needs the output y");
  const cudaStream_t s = as_cuda(stream);
  const index_t n = B * O;
  Scratch<T> scratch(act == Act::none ? 0 : static_cast<std::size_t>(n), s, op);
  const T* dz = dy;
  if (act != Act::none && n > 0) {
    dz_kernel<T><<<grid_for(n), kBlock, 0, s>>>(act, n, z, y, dy, scratch.get(), T(alpha));
    check_launch(op);
    dz = scratch.get();
  }
  // dW (O x I) = dz^T (O x B) @ x (B x I); K = B = 0 writes zeros.
  if (O > 0 && I > 0) gemm<T>(Trans::T, Trans::N, O, I, B, T(1), dz, O, x, I, T(0), dW, I, stream);
  if (db && O > 0) {
    column_sum(B, O, dz, db, s, op);
    check_launch(op);
  }
  // dx (B x I) = dz (B x O) @ W (O x I).
  if (dx && B > 0 && I > 0) gemm<T>(Trans::N, Trans::N, B, I, O, T(1), dz, O, W, I, T(0), dx, I, stream);
}

template void linear_forward<float>(index_t, index_t, index_t, const float*, const float*,
                                    const float*, Act, double, float*, float*, Stream);
template void linear_forward<double>(index_t, index_t, index_t, const double*, const double*,
                                     const double*, Act, double, double*, double*, Stream);
template void linear_backward<float>(index_t, index_t, index_t, const float*, const float*,
                                     const float*, const float*, const float*, Act, double, float*,
                                     float*, float*, Stream);
template void linear_backward<double>(index_t, index_t, index_t, const double*, const double*,
                                      const double*, const double*, const double*, Act, double,
                                      double*, double*, double*, Stream);

}  // namespace hepnn::cuda
