// k nearest neighbours on the CPU: per (event, point) row, squared distances to every valid point
// of the event are computed directly as sum_d (x_i - x_j)^2 (not |x|^2 + |y|^2 - 2xy, whose
// cancellation would turn exact ties into rounding noise), and a K-long insertion list ordered by
// (distance, index) keeps the nearest. One variant; float and double; rows split over the pool.
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
    std::vector<T> best_d(size_t(K) + 1);
    std::vector<index_t> best_j(size_t(K) + 1);
    for (index_t r = r0; r < r1; ++r) {
      const index_t b = r / N, i = r % N;
      index_t* out = idx + r * K;
      std::fill(out, out + K, index_t(-1));
      if (mask && !mask[r]) continue;
      const T* xi = coords + r * D;
      const std::uint8_t* mb = mask ? mask + b * N : nullptr;
      index_t have = 0;
      for (index_t j = 0; j < N; ++j) {
        if (j == i || (mb && !mb[j])) continue;
        const T* xj = coords + (b * N + j) * D;
        T d2 = T(0);
        for (index_t d = 0; d < D; ++d) {
          const T t = xi[d] - xj[d];
          d2 += t * t;
        }
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
