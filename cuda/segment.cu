// CUDA row gathers and scatter / segment reductions (sum, mean, max + first-max arg), forward and
// backward, float and double. Scatter builds a CSR view of its index on the device (integer
// atomic counts, a one-block scan, an atomic fill, then each segment's rows sorted), so every
// output row is reduced by one thread in increasing input order: deterministic, like the CPU.
// Out-of-range indices are skipped (the Python layer rejects them before any launch).
#include <cuda_runtime.h>

#include "cuda/device.hpp"
#include "cuda/dmath.cuh"
#include "cuda/launch.cuh"
#include "cuda/segment.hpp"

namespace hepnn::cuda {
namespace {

using ull = unsigned long long;

template <typename T>
__global__ void gather_kernel(index_t R, index_t F, index_t M, const T* x, const index_t* idx, T* y) {
  for (index_t t = blockIdx.x * index_t(blockDim.x) + threadIdx.x; t < M * F; t += index_t(gridDim.x) * blockDim.x) {
    const index_t m = t / F, f = t % F, r = idx[m];
    y[t] = (r >= 0 && r < R) ? x[r * F + f] : T(0);
  }
}

__global__ void count_kernel(index_t M, index_t S, const index_t* index, index_t* count) {
  for (index_t m = blockIdx.x * index_t(blockDim.x) + threadIdx.x; m < M; m += index_t(gridDim.x) * blockDim.x) {
    const index_t s = index[m];
    if (s >= 0 && s < S) atomicAdd(reinterpret_cast<ull*>(count + s), ull(1));
  }
}

// off[0] = 0, off[s + 1] = off[s] + count[s]: each of the block's threads scans a contiguous
// chunk, the chunk totals are scanned in shared memory, then every chunk adds its prefix.
constexpr int kScanThreads = 1024;
__global__ void scan_kernel(index_t S, const index_t* count, index_t* off) {
  __shared__ index_t part[kScanThreads];
  const index_t chunk = (S + kScanThreads - 1) / kScanThreads;
  const index_t b = threadIdx.x * chunk, e = b + chunk < S ? b + chunk : S;
  index_t sum = 0;
  for (index_t s = b; s < e; ++s) sum += count[s];
  part[threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    index_t run = 0;
    for (int t = 0; t < kScanThreads; ++t) {
      const index_t v = part[t];
      part[t] = run;
      run += v;
    }
  }
  __syncthreads();
  index_t run = part[threadIdx.x];
  if (threadIdx.x == 0) off[0] = 0;
  for (index_t s = b; s < e; ++s) {
    run += count[s];
    off[s + 1] = run;
  }
}

__global__ void fill_kernel(index_t M, index_t S, const index_t* index, index_t* cursor, index_t* rows) {
  for (index_t m = blockIdx.x * index_t(blockDim.x) + threadIdx.x; m < M; m += index_t(gridDim.x) * blockDim.x) {
    const index_t s = index[m];
    if (s >= 0 && s < S) rows[atomicAdd(reinterpret_cast<ull*>(cursor + s), ull(1))] = m;
  }
}

// The atomic fill leaves each segment in arbitrary order; sort it so sums run in input order.
__global__ void sort_segments_kernel(index_t S, const index_t* off, index_t* rows) {
  for (index_t s = blockIdx.x * index_t(blockDim.x) + threadIdx.x; s < S; s += index_t(gridDim.x) * blockDim.x) {
    for (index_t p = off[s] + 1; p < off[s + 1]; ++p) {
      const index_t v = rows[p];
      index_t q = p;
      while (q > off[s] && rows[q - 1] > v) {
        rows[q] = rows[q - 1];
        --q;
      }
      rows[q] = v;
    }
  }
}

// One thread per (segment, feature); rows == null means rows[p] = p.
template <typename T>
__global__ void reduce_csr_kernel(index_t F, index_t S, const index_t* off, const index_t* rows, const T* x,
                                  SegReduce op, T* y, index_t* arg) {
  for (index_t t = blockIdx.x * index_t(blockDim.x) + threadIdx.x; t < S * F; t += index_t(gridDim.x) * blockDim.x) {
    const index_t s = t / F, f = t % F, b = off[s], e = off[s + 1];
    if (op != SegReduce::max) {
      T acc = T(0);
      for (index_t p = b; p < e; ++p) acc += x[(rows ? rows[p] : p) * F + f];
      y[t] = (op == SegReduce::mean && e > b) ? acc / T(e - b) : acc;
      continue;
    }
    if (e == b) {
      y[t] = T(0);
      if (arg) arg[t] = -1;
      continue;
    }
    index_t best = rows ? rows[b] : b;
    T v = x[best * F + f];
    for (index_t p = b + 1; p < e; ++p) {
      const index_t r = rows ? rows[p] : p;
      const T c = x[r * F + f];
      if (c > v || (dm::isnan(c) && !dm::isnan(v))) {
        v = c;
        best = r;
      }
    }
    y[t] = v;
    if (arg) arg[t] = best;
  }
}

template <typename T>
__global__ void scatter_backward_kernel(index_t M, index_t F, index_t S, const index_t* index, SegReduce op,
                                        const T* dy, const index_t* arg, const index_t* count, T* dx) {
  for (index_t t = blockIdx.x * index_t(blockDim.x) + threadIdx.x; t < M * F; t += index_t(gridDim.x) * blockDim.x) {
    const index_t m = t / F, f = t % F, s = index[m];
    T v = T(0);
    if (s >= 0 && s < S) {
      if (op == SegReduce::max) v = arg[s * F + f] == m ? dy[s * F + f] : T(0);
      else if (op == SegReduce::mean) v = dy[s * F + f] / T(count[s]);
      else v = dy[s * F + f];
    }
    dx[t] = v;
  }
}

template <typename T>
__global__ void segment_backward_kernel(index_t F, index_t S, const index_t* off, SegReduce op, const T* dy,
                                        const index_t* arg, T* dx) {
  for (index_t t = blockIdx.x * index_t(blockDim.x) + threadIdx.x; t < S * F; t += index_t(gridDim.x) * blockDim.x) {
    const index_t s = t / F, f = t % F, b = off[s], e = off[s + 1];
    const T g = dy[t];
    for (index_t m = b; m < e; ++m) {
      T v = g;
      if (op == SegReduce::max) v = arg[t] == m ? g : T(0);
      else if (op == SegReduce::mean) v = g / T(e - b);
      dx[m * F + f] = v;
    }
  }
}

// CSR view (off, rows) of `index` into scratch owned by the caller.
struct Csr {
  Scratch<index_t> off, rows, work;
  Csr(index_t M, index_t S, const index_t* index, cudaStream_t s, const char* op)
      : off(size_t(S + 1), s, op), rows(size_t(M > 0 ? M : 1), s, op), work(size_t(S > 0 ? S : 1), s, op) {
    cudaMemsetAsync(work.get(), 0, size_t(S > 0 ? S : 1) * sizeof(index_t), s);
    if (M > 0) count_kernel<<<grid_for(M), kBlock, 0, s>>>(M, S, index, work.get());
    scan_kernel<<<1, kScanThreads, 0, s>>>(S, work.get(), off.get());
    cudaMemcpyAsync(work.get(), off.get(), size_t(S > 0 ? S : 1) * sizeof(index_t), cudaMemcpyDeviceToDevice, s);
    if (M > 0) fill_kernel<<<grid_for(M), kBlock, 0, s>>>(M, S, index, work.get(), rows.get());
    if (S > 0) sort_segments_kernel<<<grid_for(S), kBlock, 0, s>>>(S, off.get(), rows.get());
  }
};

}  // namespace

template <typename T>
void gather_rows_forward(index_t R, index_t F, index_t M, const T* x, const index_t* idx, T* y, Stream stream) {
  if (M * F == 0) return;
  gather_kernel<T><<<grid_for(M * F), kBlock, 0, as_cuda(stream)>>>(R, F, M, x, idx, y);
  check_launch("gather_forward");
}

template <typename T>
void gather_rows_backward(index_t R, index_t F, index_t M, const index_t* idx, const T* dy, T* dx, Stream stream) {
  if (R * F == 0) return;
  const cudaStream_t s = as_cuda(stream);
  Csr csr(M, R, idx, s, "gather_backward");
  reduce_csr_kernel<T><<<grid_for(R * F), kBlock, 0, s>>>(F, R, csr.off.get(), csr.rows.get(), dy, SegReduce::sum,
                                                           dx, nullptr);
  check_launch("gather_backward");
}

template <typename T>
void scatter_reduce_forward(index_t M, index_t F, index_t S, const T* x, const index_t* index, SegReduce op, T* y,
                            index_t* arg, Stream stream) {
  if (S * F == 0) return;
  const cudaStream_t s = as_cuda(stream);
  Csr csr(M, S, index, s, "scatter_reduce_forward");
  reduce_csr_kernel<T><<<grid_for(S * F), kBlock, 0, s>>>(F, S, csr.off.get(), csr.rows.get(), x, op, y, arg);
  check_launch("scatter_reduce_forward");
}

template <typename T>
void scatter_reduce_backward(index_t M, index_t F, index_t S, const index_t* index, SegReduce op, const T* dy,
                             const index_t* arg, T* dx, Stream stream) {
  if (M * F == 0) return;
  const cudaStream_t s = as_cuda(stream);
  Scratch<index_t> count(size_t(S > 0 ? S : 1), s, "scatter_reduce_backward");
  if (op == SegReduce::mean) {
    cudaMemsetAsync(count.get(), 0, size_t(S > 0 ? S : 1) * sizeof(index_t), s);
    count_kernel<<<grid_for(M), kBlock, 0, s>>>(M, S, index, count.get());
  }
  scatter_backward_kernel<T><<<grid_for(M * F), kBlock, 0, s>>>(M, F, S, index, op, dy, arg, count.get(), dx);
  check_launch("scatter_reduce_backward");
}

template <typename T>
void segment_reduce_forward(index_t M, index_t F, index_t S, const index_t* offsets, const T* x, SegReduce op,
                            T* y, index_t* arg, Stream stream) {
  (void)M;
  if (S * F == 0) return;
  reduce_csr_kernel<T><<<grid_for(S * F), kBlock, 0, as_cuda(stream)>>>(F, S, offsets, nullptr, x, op, y, arg);
  check_launch("segment_reduce_forward");
}

template <typename T>
void segment_reduce_backward(index_t M, index_t F, index_t S, const index_t* offsets, SegReduce op, const T* dy,
                             const index_t* arg, T* dx, Stream stream) {
  if (M * F == 0) return;
  segment_backward_kernel<T><<<grid_for(S * F), kBlock, 0, as_cuda(stream)>>>(F, S, offsets, op, dy, arg, dx);
  check_launch("segment_reduce_backward");
}

#define HEPNN_SEGMENT_INSTANTIATE(T)                                                                       \
  template void gather_rows_forward<T>(index_t, index_t, index_t, const T*, const index_t*, T*, Stream);   \
  template void gather_rows_backward<T>(index_t, index_t, index_t, const index_t*, const T*, T*, Stream);  \
  template void scatter_reduce_forward<T>(index_t, index_t, index_t, const T*, const index_t*, SegReduce,  \
                                          T*, index_t*, Stream);                                           \
  template void scatter_reduce_backward<T>(index_t, index_t, index_t, const index_t*, SegReduce, const T*, \
                                           const index_t*, T*, Stream);                                    \
  template void segment_reduce_forward<T>(index_t, index_t, index_t, const index_t*, const T*, SegReduce,  \
                                          T*, index_t*, Stream);                                           \
  template void segment_reduce_backward<T>(index_t, index_t, index_t, const index_t*, SegReduce, const T*, \
                                           const index_t*, T*, Stream);
HEPNN_SEGMENT_INSTANTIATE(float)
HEPNN_SEGMENT_INSTANTIATE(double)
#undef HEPNN_SEGMENT_INSTANTIATE

}  // namespace hepnn::cuda
