// One persistent worker pool for all CPU kernels; sized by hepnn.set_num_threads (default: all
// cores the process may use). parallel_for blocks until every chunk is done.
#pragma once
#include <type_traits>
#include <utility>

#include "core/types.hpp"

namespace hepnn {

void set_num_threads(int n);
int get_num_threads();

// A non-owning reference to a callable taking (begin, end): unlike std::function it never
// allocates, so a kernel call in steady state (the inference runtime's promise) stays
// allocation-free. Valid only while the referenced callable lives.
class RangeFn {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, RangeFn>>>
  RangeFn(F& f) : obj_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* o, index_t b, index_t e) { (*static_cast<F*>(o))(b, e); }) {}
  void operator()(index_t b, index_t e) const { call_(obj_, b, e); }

 private:
  void* obj_;
  void (*call_)(void*, index_t, index_t);
};

// Splits [0, n) into at most get_num_threads() contiguous chunks of at least `grain` items and
// runs fn(begin, end) on each, the calling thread taking the first chunk. Nested calls (from a
// worker, or from the caller inside its own chunk) run serially. Exceptions thrown by fn are
// rethrown in the caller.
void parallel_for_ref(index_t n, index_t grain, RangeFn fn);

template <typename F>
inline void parallel_for(index_t n, index_t grain, F&& fn) {
  parallel_for_ref(n, grain, RangeFn(fn));
}

}  // namespace hepnn
