// The persistent worker pool behind parallel_for. Workers spin briefly before sleeping so that
// the many small kernels of a training step do not pay a futex wake-up each.
#include "core/threadpool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__linux__)
#include <sched.h>
#endif

namespace hepnn {
namespace {

int default_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

// Set on pool workers for good and on the calling thread while it runs its share of a job: a
// parallel_for nested inside a kernel chunk then runs serially instead of waiting on the pool.
thread_local bool t_in_parallel = false;

// One chunk of a job: the chunk index and, by reference, the user's range function.
struct ChunkFn {
  const RangeFn* fn;
  index_t n, step;
  void operator()(index_t c) const {
    const index_t b = c * step;
    (*fn)(b, std::min(n, b + step));
  }
};

struct ParallelScope {
  bool saved = t_in_parallel;
  ParallelScope() { t_in_parallel = true; }
  ~ParallelScope() { t_in_parallel = saved; }
};

class Pool {
 public:
  static Pool& instance() {
    static Pool* pool = new Pool();  // leaked on purpose: workers must outlive static destructors
    return *pool;
  }

  int threads() const { return threads_.load(); }

  void resize(int n) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    threads_.store(std::max(1, n));
  }

  void run(index_t chunks, const ChunkFn& body) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    ensure_workers(static_cast<int>(chunks) - 1);
    job_ = &body;
    job_chunks_.store(chunks);
    pending_.store(chunks - 1);
    error_ = nullptr;
    next_.store(1, std::memory_order_release);  // opens the job to the workers
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1);
    }
    cv_.notify_all();
    {
      ParallelScope scope;
      run_chunk(0);
      drain();
    }
    while (pending_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    next_.store(kClosed);  // a worker waking late finds no chunk of a finished job
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  Pool() : threads_(default_threads()) {}

  void ensure_workers(int wanted) {
    while (static_cast<int>(workers_.size()) < wanted) {
      workers_.emplace_back([this] { worker_loop(); });
      workers_.back().detach();
    }
  }

  void run_chunk(index_t c) {
    try {
      (*job_.load())(c);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  // Take chunks until none is left; every chunk but the caller's first decrements pending_.
  void drain() {
    for (;;) {
      index_t c = next_.fetch_add(1, std::memory_order_acq_rel);
      if (c >= job_chunks_.load()) return;
      run_chunk(c);
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }

  void worker_loop() {
    t_in_parallel = true;
    unsigned long long seen = generation_.load();
    for (;;) {
      // Spin a while (cheap for back-to-back kernels), then sleep.
      int spins = 0;
      while (generation_.load(std::memory_order_acquire) == seen && spins < 20000) {
        ++spins;
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
      }
      if (generation_.load() == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return generation_.load() != seen; });
      }
      seen = generation_.load();
      drain();
    }
  }

  std::atomic<int> threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one parallel region at a time
  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<unsigned long long> generation_{0};
  std::atomic<const ChunkFn*> job_{nullptr};
  static constexpr index_t kClosed = index_t(1) << 62;
  std::atomic<index_t> job_chunks_{0};
  std::atomic<index_t> next_{kClosed};
  std::atomic<index_t> pending_{0};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace

void set_num_threads(int n) { Pool::instance().resize(n); }
int get_num_threads() { return Pool::instance().threads(); }

void parallel_for_ref(index_t n, index_t grain, RangeFn fn) {
  if (n <= 0) return;
  grain = std::max<index_t>(1, grain);
  index_t chunks = std::min<index_t>(get_num_threads(), (n + grain - 1) / grain);
  if (chunks <= 1 || t_in_parallel) {
    fn(0, n);
    return;
  }
  const index_t step = (n + chunks - 1) / chunks;
  chunks = (n + step - 1) / step;
  const ChunkFn body{&fn, n, step};
  Pool::instance().run(chunks, body);
}

}  // namespace hepnn
