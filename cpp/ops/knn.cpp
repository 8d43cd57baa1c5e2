// k nearest neighbours on the CPU: per (event, point) row, squared distances to every point of
// the event are computed directly as sum_d (x_i - x_j)^2 (not |x|^2 + |y|^2 - 2xy, whose
// cancellation would turn exact ties into rounding noise) against the event's coordinates
// transposed to (D, N), so the loop over j vectorises; a K-long insertion list ordered by
// (distance, index) keeps the nearest valid ones. One variant; float and double; rows over the pool.
#include "ops/knn.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"
#include "core/threadpool.hpp"

namespace hepnn::cpu {

template <typename T>
void knn_forward(index_t B, index_t N, index_t D, index_t K, const T* coords, const std::uint8_t* mask,
                 index_t* idx) {
  check_value(B >= 0 && N >= 0 && D >= 0 && K >= 1, "knn", "sizes must be >= 0 and k >= 1");
  const index_t rows = B * N;
  const index_t grain = std::max<index_t>(1, 65536 / std::max<index_t>(1, N * (D + K)));
  parallel_for(rows, grain, [&](index_t r0, index_t r1) {
    std::vector<T> best_d(static_cast<size_t>(K) + 1), dist(static_cast<size_t>(N)), xt(static_cast<size_t>(N * D));
    std::vector<index_t> best_j(size_t(K) + 1);
    index_t loaded = -1;  // the event whose coordinates xt holds, transposed to (D, N)
    for (index_t r = r0; r < r1; ++r) {
      const index_t b = r / N, i = r % N;
      index_t* out = idx + r * K;
      std::fill(out, out + K, index_t(-1));
      if (mask && !mask[r]) continue;
      if (loaded != b) {
        const T* xb = coords + b * N * D;
        for (index_t j = 0; j < N; ++j)
          for (index_t d = 0; d < D; ++d) xt[size_t(d * N + j)] = xb[j * D + d];
        loaded = b;
      }
      // NOTE: the j loop is innermost so it vectorises without reassociating any sum: each
      // distance still adds its D terms in order d = 0, 1, ..., exactly as a scalar loop would.
      const T* xi = coords + r * D;
      std::fill(dist.begin(), dist.end(), T(0));
      for (index_t d = 0; d < D; ++d) {
        const T c = xi[d];
        const T* row = xt.data() + d * N;
        T* __restrict dd = dist.data();
        for (index_t j = 0; j < N; ++j) {
          const T t = c - row[j];
          dd[j] += t * t;
        }
      }
      const std::uint8_t* mb = mask ? mask + b * N : nullptr;
      index_t have = 0;
      for (index_t j = 0; j < N; ++j) {
        if (j == i || (mb && !mb[j])) continue;
        const T d2 = dist[size_t(j)];
        // j increases, so an equal distance never displaces an earlier (smaller) index.
        if (have == K && !(d2 < best_d[size_t(K - 1)])) continue;
        index_t p = have < K ? have++ : K - 1;
        while (p > 0 && d2 < best_d[size_t(p - 1)]) {
          best_d[size_t(p)] = best_d[size_t(p - 1)];
          best_j[size_t(p)] = best_j[size_t(p - 1)];
          --p;
        }
        best_d[size_t(p)] = d2;
        best_j[size_t(p)] = j;
      }
      std::copy(best_j.begin(), best_j.begin() + have, out);
    }
  });
}

template void knn_forward<float>(index_t, index_t, index_t, index_t, const float*, const std::uint8_t*,
                                 index_t*);
template void knn_forward<double>(index_t, index_t, index_t, index_t, const double*, const std::uint8_t*,
                                  index_t*);

}  // namespace hepnn::cpu
