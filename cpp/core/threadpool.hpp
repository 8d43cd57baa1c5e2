// One persistent worker pool for all CPU kernels; sized by hepnn.set_num_threads (default: all
// cores the process may use). parallel_for blocks until every chunk is done.
#pragma once
#include <functional>
#include "core/types.hpp"

namespace hepnn {

void set_num_threads(int n);
int get_num_threads();

// Splits [0, n) into at most get_num_threads() contiguous chunks of at least `grain` items and
// runs fn(begin, end) on each, the calling thread taking the first chunk. Nested calls from a
// worker run serially. Exceptions thrown by fn are rethrown in the caller.
void parallel_for(index_t n, index_t grain, const std::function<void(index_t, index_t)>& fn);

}  // namespace hepnn
