// Attention kernels for the small head dims of HEP transformers (D = 16, 32): one THREAD per
// query row (forward, dq) or key (dk, dv) with its D values in registers, and the other side
// staged through shared memory in tiles that every thread of the block reads as a broadcast. The
// warp-per-row kernels of attention.cu leave most lanes idle at D <= 32 and re-read K and V from
// global memory for every row; these read each K/V tile once per block. Included by attention.cu
// inside its anonymous namespace (Shape, bias_off, dm:: come from there).

constexpr int kRowThreads = 64;  // rows (or keys) per block
constexpr int kRowTile = 32;     // keys (or queries) per shared-memory tile

// D = 64 would hold 4 x 64 values per thread in the dk/dv kernel and spill; it stays on the
// warp kernels.
inline bool row_kernel_dim(index_t D) { return D == 16 || D == 32; }

// Blocks of kRowThreads rows: block x covers tile (x % tiles) of head (x / tiles).
__device__ __forceinline__ void row_block(index_t L, index_t& bh, index_t& first) {
  const index_t tiles = (L + kRowThreads - 1) / kRowThreads;
  bh = index_t(blockIdx.x) / tiles;
  first = (index_t(blockIdx.x) % tiles) * kRowThreads;
}

// Rows [t0, t0 + kRowTile) of a (L, D) matrix into smem (zeros past L); all threads help.
template <typename T, int D>
__device__ __forceinline__ void stage(T (*dst)[D], const T* __restrict__ src, index_t t0, index_t L) {
  for (int e = threadIdx.x; e < kRowTile * D; e += blockDim.x) {
    const int r = e / D, d = e % D;
    dst[r][d] = t0 + r < L ? src[(t0 + r) * D + d] : T(0);
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kRowThreads) fwd_thread_rows(Shape sh, const T* __restrict__ q,
                                                               const T* __restrict__ k, const T* __restrict__ v,
                                                               const std::uint8_t* __restrict__ km,
                                                               const T* __restrict__ bias, T scale,
                                                               T* __restrict__ out, T* __restrict__ lse) {
  __shared__ T ks[kRowTile][D];
  __shared__ T vs[kRowTile][D];
  __shared__ bool real[kRowTile];
  index_t bh, i0;
  row_block(sh.Lq, bh, i0);
  const index_t b = bh / sh.H, h = bh % sh.H, i = i0 + threadIdx.x, Lk = sh.Lk;
  const bool active = i < sh.Lq;
  const index_t row = bh * sh.Lq + i;
  T qr[D], acc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) {
    qr[d] = active ? q[row * D + d] : T(0);
    acc[d] = T(0);
  }
  const T* brow = bias && active ? bias + bias_off(sh, b, h, i) : nullptr;
  const T ninf = dm::neg_inf<T>();
  T m = ninf, l = T(0);
  for (index_t j0 = 0; j0 < Lk; j0 += kRowTile) {
    __syncthreads();  // the previous tile's readers are done
    stage<T, D>(ks, k + bh * Lk * D, j0, Lk);
    stage<T, D>(vs, v + bh * Lk * D, j0, Lk);
    if (threadIdx.x < kRowTile) {
      const index_t j = j0 + threadIdx.x;
      real[threadIdx.x] = j < Lk && (!km || km[b * Lk + j]);
    }
    __syncthreads();
    const int nj = Lk - j0 < kRowTile ? int(Lk - j0) : kRowTile;
    for (int jj = 0; jj < nj; ++jj) {
      if (!real[jj]) continue;  // block-uniform
      T s = T(0);
#pragma unroll
      for (int d = 0; d < D; ++d) s += qr[d] * ks[jj][d];
      s = scale * s + (brow ? brow[j0 + jj] : T(0));
      if (s == ninf) continue;  // a -inf bias masks the key, as a key mask does
      // NOTE: online softmax; a new maximum rescales what came before by exp(m_old - m_new).
      if (s > m) {
        const T corr = dm::exp(m - s);
        l = l * corr + T(1);
#pragma unroll
        for (int d = 0; d < D; ++d) acc[d] = acc[d] * corr + vs[jj][d];
        m = s;
      } else {
        const T p = dm::exp(s - m);
        l += p;
#pragma unroll
        for (int d = 0; d < D; ++d) acc[d] += p * vs[jj][d];
      }
    }
  }
  if (!active) return;
  const T inv = l > T(0) ? T(1) / l : T(0);
#pragma unroll
  for (int d = 0; d < D; ++d) out[row * D + d] = acc[d] * inv;
  lse[row] = l > T(0) ? m + dm::log(l) : ninf;
}

// One thread per key j of head bh: dk_j = scale sum_i ds_ij q_i, dv_j = sum_i p_ij dout_i.
template <typename T, int D>
__global__ void __launch_bounds__(kRowThreads) bwd_thread_keys(Shape sh, const T* __restrict__ q,
                                                               const T* __restrict__ k, const T* __restrict__ v,
                                                               const std::uint8_t* __restrict__ km,
                                                               const T* __restrict__ bias, T scale,
                                                               const T* __restrict__ lse, const T* __restrict__ dout,
                                                               const T* __restrict__ delta, T* __restrict__ dk,
                                                               T* __restrict__ dv) {
  __shared__ T qs[kRowTile][D];
  __shared__ T gs[kRowTile][D];
  __shared__ T ls[kRowTile];
  __shared__ T ds_[kRowTile];
  index_t bh, j0;
  row_block(sh.Lk, bh, j0);
  const index_t b = bh / sh.H, h = bh % sh.H, j = j0 + threadIdx.x, Lq = sh.Lq, Lk = sh.Lk;
  const bool active = j < Lk && (!km || km[b * Lk + j]);
  const index_t key = bh * Lk + j;
  T kr[D], vr[D], gk[D], gv[D];
#pragma unroll
  for (int d = 0; d < D; ++d) {
    kr[d] = active ? k[key * D + d] : T(0);
    vr[d] = active ? v[key * D + d] : T(0);
    gk[d] = gv[d] = T(0);
  }
  const T ninf = dm::neg_inf<T>();
  for (index_t i0 = 0; i0 < Lq; i0 += kRowTile) {
    __syncthreads();
    stage<T, D>(qs, q + bh * Lq * D, i0, Lq);
    stage<T, D>(gs, dout + bh * Lq * D, i0, Lq);
    if (threadIdx.x < kRowTile) {
      const index_t i = i0 + threadIdx.x;
      ls[threadIdx.x] = i < Lq ? lse[bh * Lq + i] : ninf;
      ds_[threadIdx.x] = i < Lq ? delta[bh * Lq + i] : T(0);
    }
    __syncthreads();
    if (!active) continue;
    const int ni = Lq - i0 < kRowTile ? int(Lq - i0) : kRowTile;
    for (int ii = 0; ii < ni; ++ii) {
      const T li = ls[ii];
      if (li == ninf) continue;  // a query with no real key has no gradient
      T s = T(0), dp = T(0);
#pragma unroll
      for (int d = 0; d < D; ++d) {
        s += qs[ii][d] * kr[d];
        dp += gs[ii][d] * vr[d];
      }
      s = scale * s + (bias ? bias[bias_off(sh, b, h, i0 + ii) + j] : T(0));
      const T e = s - li;
      const T p = dm::exp(e < T(0) ? e : T(0));
      const T ds = p * (dp - ds_[ii]) * scale;
#pragma unroll
      for (int d = 0; d < D; ++d) {
        gk[d] += ds * qs[ii][d];
        gv[d] += p * gs[ii][d];
      }
    }
  }
  if (j >= Lk) return;
#pragma unroll
  for (int d = 0; d < D; ++d) {
    dk[key * D + d] = gk[d];
    dv[key * D + d] = gv[d];
  }
}

// One thread per query row: dq_i = scale sum_j ds_ij k_j, and the row of dbias when the bias has
// one plane per head (a bias shared by the heads sums over them in attention.cu's kernel).
template <typename T, int D>
__global__ void __launch_bounds__(kRowThreads) bwd_thread_queries(Shape sh, const T* __restrict__ q,
                                                                  const T* __restrict__ k, const T* __restrict__ v,
                                                                  const std::uint8_t* __restrict__ km,
                                                                  const T* __restrict__ bias, T scale,
                                                                  const T* __restrict__ lse,
                                                                  const T* __restrict__ dout,
                                                                  const T* __restrict__ delta, T* __restrict__ dq,
                                                                  T* __restrict__ dbias) {
  __shared__ T ks[kRowTile][D];
  __shared__ T vs[kRowTile][D];
  __shared__ bool real[kRowTile];
  index_t bh, i0;
  row_block(sh.Lq, bh, i0);
  const index_t b = bh / sh.H, h = bh % sh.H, i = i0 + threadIdx.x, Lk = sh.Lk;
  const bool active = i < sh.Lq;
  const index_t row = bh * sh.Lq + i;
  const T ninf = dm::neg_inf<T>();
  const T li = active ? lse[row] : ninf, di = active ? delta[row] : T(0);
  T qr[D], gr[D], acc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) {
    qr[d] = active ? q[row * D + d] : T(0);
    gr[d] = active ? dout[row * D + d] : T(0);
    acc[d] = T(0);
  }
  const index_t bo = bias && active ? bias_off(sh, b, h, i) : 0;
  for (index_t j0 = 0; j0 < Lk; j0 += kRowTile) {
    __syncthreads();
    stage<T, D>(ks, k + bh * Lk * D, j0, Lk);
    stage<T, D>(vs, v + bh * Lk * D, j0, Lk);
    if (threadIdx.x < kRowTile) {
      const index_t j = j0 + threadIdx.x;
      real[threadIdx.x] = j < Lk && (!km || km[b * Lk + j]);
    }
    __syncthreads();
    if (!active) continue;
    const int nj = Lk - j0 < kRowTile ? int(Lk - j0) : kRowTile;
    for (int jj = 0; jj < nj; ++jj) {
      T ds = T(0);
      if (real[jj] && li != ninf) {
        T s = T(0), dp = T(0);
#pragma unroll
        for (int d = 0; d < D; ++d) {
          s += qr[d] * ks[jj][d];
          dp += gr[d] * vs[jj][d];
        }
        s = scale * s + (bias ? bias[bo + j0 + jj] : T(0));
        const T e = s - li;
        const T p = dm::exp(e < T(0) ? e : T(0));
        ds = p * (dp - di);
#pragma unroll
        for (int d = 0; d < D; ++d) acc[d] += ds * scale * ks[jj][d];
      }
      if (dbias) dbias[bo + j0 + jj] = ds;
    }
  }
  if (!active) return;
#pragma unroll
  for (int d = 0; d < D; ++d) dq[row * D + d] = acc[d];
}

template <typename T, int D>
void launch_rows_forward(const Shape& sh, const T* q, const T* k, const T* v, const std::uint8_t* km, const T* bias,
                         T scale, T* out, T* lse, cudaStream_t s) {
  const index_t blocks = sh.B * sh.H * ((sh.Lq + kRowThreads - 1) / kRowThreads);
  fwd_thread_rows<T, D><<<unsigned(blocks), kRowThreads, 0, s>>>(sh, q, k, v, km, bias, scale, out, lse);
}

template <typename T, int D>
void launch_rows_backward(const Shape& sh, bool queries_too, const T* q, const T* k, const T* v,
                          const std::uint8_t* km, const T* bias, T scale, const T* lse, const T* dout,
                          const T* delta, T* dq, T* dk, T* dv, T* dbias, cudaStream_t s) {
  const index_t kblocks = sh.B * sh.H * ((sh.Lk + kRowThreads - 1) / kRowThreads);
  if (kblocks > 0)
    bwd_thread_keys<T, D><<<unsigned(kblocks), kRowThreads, 0, s>>>(sh, q, k, v, km, bias, scale, lse, dout, delta,
                                                                    dk, dv);
  const index_t qblocks = sh.B * sh.H * ((sh.Lq + kRowThreads - 1) / kRowThreads);
  if (queries_too && qblocks > 0)
    bwd_thread_queries<T, D><<<unsigned(qblocks), kRowThreads, 0, s>>>(sh, q, k, v, km, bias, scale, lse, dout,
                                                                       delta, dq, dbias);
}
