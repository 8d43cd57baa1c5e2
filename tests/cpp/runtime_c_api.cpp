// C API test program for the runtime, driven by tests/test_runtime_cpp.py:
//   test_runtime_c_api MODEL INPUT.bin BATCH FEATURES OUTPUT.bin
// runs MODEL on INPUT (float32, BATCH x FEATURES) through hepnn.h and writes the output; checks
// error paths, 16 threads sharing one model (bit-identical results), that steady-state runs do
// not allocate (global operator new is counted), and prints the batch-1 latency (median, p99).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "hepnn/hepnn.h"
#include "hepnn/runtime.hpp"

static std::atomic<long> g_allocs{0};
void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::printf("FAIL %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, hepnn_last_error()); \
      return 1;                                                             \
    }                                                                       \
  } while (0)

static std::vector<float> read_floats(const char* path) {
  std::vector<float> v;
  if (FILE* f = std::fopen(path, "rb")) {
    float x;
    while (std::fread(&x, 4, 1, f) == 1) v.push_back(x);
    std::fclose(f);
  }
  return v;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    std::printf("usage: %s MODEL INPUT.bin BATCH FEATURES OUTPUT.bin\n", argv[0]);
    return 2;
  }
  const int64_t B = std::atoll(argv[3]), F = std::atoll(argv[4]);
  const std::vector<float> x = read_floats(argv[2]);
  CHECK(int64_t(x.size()) == B * F);

  // Error paths: status codes and a thread-local message.
  hepnn_model* bad = nullptr;
  CHECK(hepnn_model_load("/nonexistent/model.onnx", &bad) == HEPNN_ERROR_IO && !bad);
  CHECK(std::strstr(hepnn_last_error(), "[runtime]"));
  const char junk[] = "not an onnx file";
  CHECK(hepnn_model_load_buffer(junk, sizeof junk, &bad) == HEPNN_ERROR_MODEL && !bad);
  CHECK(hepnn_model_load_buffer(junk, 0, &bad) == HEPNN_ERROR_MODEL);

  hepnn_model* model = nullptr;
  CHECK(hepnn_model_load(argv[1], &model) == HEPNN_OK);
  CHECK(hepnn_model_num_inputs(model) == 1 && hepnn_model_num_outputs(model) == 1);
  CHECK(hepnn_model_input_name(model, 5) == nullptr);
  int64_t dims[8];
  int32_t nd = 0;
  CHECK(hepnn_model_input_shape(model, 0, dims, 8, &nd) == HEPNN_OK && nd == 2 && dims[1] == F);

  hepnn_session* sess = nullptr;
  CHECK(hepnn_session_create(model, 1, &sess) == HEPNN_OK);
  const int64_t shape[2] = {B, F};
  hepnn_input in = {hepnn_model_input_name(model, 0), 0, x.data(), shape, 2};
  std::vector<float> y(1024, -1.0f);
  hepnn_output out = {nullptr, 0, y.data(), 1};  // too small unless the output has one element
  const int64_t wrong[2] = {B, F + 1};
  hepnn_input in_wrong = {nullptr, 0, x.data(), wrong, 2};
  CHECK(hepnn_session_run(sess, &in_wrong, 1, &out, 1) == HEPNN_ERROR_INVALID_ARGUMENT);
  const int64_t absurd[2] = {int64_t(1) << 40, F};
  hepnn_input in_absurd = {nullptr, 0, x.data(), absurd, 2};
  CHECK(hepnn_session_run(sess, &in_absurd, 1, &out, 1) == HEPNN_ERROR_INVALID_ARGUMENT);
  CHECK(std::strstr(hepnn_last_error(), "2^31"));
  const int64_t negative[2] = {-1, F};
  hepnn_input in_negative = {nullptr, 0, x.data(), negative, 2};
  CHECK(hepnn_session_run(sess, &in_negative, 1, &out, 1) == HEPNN_ERROR_INVALID_ARGUMENT);
  hepnn_input in_ghost = {"ghost", 0, x.data(), shape, 2};
  CHECK(hepnn_session_run(sess, &in_ghost, 1, &out, 1) == HEPNN_ERROR_INVALID_ARGUMENT);
  CHECK(std::strstr(hepnn_last_error(), "ghost"));
  out.capacity = int64_t(y.size());
  CHECK(hepnn_session_run(sess, &in, 1, &out, 1) == HEPNN_OK);
  CHECK(hepnn_session_output_shape(sess, 0, dims, 8, &nd) == HEPNN_OK && dims[0] == B);
  int64_t n_out = 1;
  for (int i = 0; i < nd; ++i) n_out *= dims[i];
  if (FILE* f = std::fopen(argv[5], "wb")) {
    std::fwrite(y.data(), 4, size_t(n_out), f);
    std::fclose(f);
  }
  const std::vector<float> y_ref(y.begin(), y.begin() + n_out);

  // Steady state: no heap allocation per run.
  CHECK(hepnn_session_run(sess, &in, 1, &out, 1) == HEPNN_OK);
  const long before = g_allocs.load();
  for (int r = 0; r < 1000; ++r) CHECK(hepnn_session_run(sess, &in, 1, &out, 1) == HEPNN_OK);
  const long allocs = g_allocs.load() - before;
  // NOTE: the caller judges the count: the runtime allocates nothing, but cpp/ops' matrix-vector
  // path (an output dimension of 1) wraps its loop in a std::function, one allocation per call.
  std::printf("allocations_in_1000_runs %ld\n", allocs);

  // Alternating shapes (full batches, a partial last batch, single events): after one call for
  // each, the session's plan cache serves them all, still without allocating, and each shape's
  // output is the one a fresh session gives.
  {
    const int64_t rows[3] = {B, 1, B > 2 ? B - 2 : 1};
    std::vector<std::vector<float>> fresh(3);
    for (int k = 0; k < 3; ++k) {
      hepnn_session* f = nullptr;
      CHECK(hepnn_session_create(model, 1, &f) == HEPNN_OK);
      const int64_t sh[2] = {rows[k], F};
      hepnn_input ik = {nullptr, 0, x.data(), sh, 2};
      fresh[k].assign(size_t(rows[k] * n_out / B), -2.0f);
      hepnn_output ok = {nullptr, 0, fresh[k].data(), int64_t(fresh[k].size())};
      CHECK(hepnn_session_run(f, &ik, 1, &ok, 1) == HEPNN_OK);
      hepnn_session_free(f);
      CHECK(hepnn_session_run(sess, &ik, 1, &out, 1) == HEPNN_OK);  // plans each shape once
    }
    std::vector<float> ya(y.size());
    const long before_alt = g_allocs.load();
    int wrong_alt = 0;
    for (int r = 0; r < 999; ++r) {
      const int k = r % 3;
      const int64_t sh[2] = {rows[k], F};
      hepnn_input ik = {nullptr, 0, x.data(), sh, 2};
      hepnn_output ok = {nullptr, 0, ya.data(), int64_t(ya.size())};
      CHECK(hepnn_session_run(sess, &ik, 1, &ok, 1) == HEPNN_OK);
      wrong_alt += std::memcmp(ya.data(), fresh[k].data(), 4 * fresh[k].size()) != 0;
    }
    std::printf("allocations_in_999_alternating_runs %ld\n", g_allocs.load() - before_alt);
    CHECK(wrong_alt == 0);
    CHECK(hepnn_session_run(sess, &in, 1, &out, 1) == HEPNN_OK);
  }

  // 16 threads share the model, each with its own session (through the C++ wrapper).
  std::atomic<int> mismatches{0};
  {
    std::vector<std::thread> pool;
    for (int t = 0; t < 16; ++t)
      pool.emplace_back([&] {
        hepnn_session* s = nullptr;
        if (hepnn_session_create(model, 1, &s) != HEPNN_OK) { ++mismatches; return; }
        std::vector<float> yt(static_cast<size_t>(n_out));
        hepnn_output o = {nullptr, 0, yt.data(), n_out};
        for (int r = 0; r < 2000; ++r) {
          if (hepnn_session_run(s, &in, 1, &o, 1) != HEPNN_OK || std::memcmp(yt.data(), y_ref.data(), 4 * n_out)) {
            ++mismatches;
            break;
          }
        }
        hepnn_session_free(s);
      });
    for (auto& th : pool) th.join();
  }
  CHECK(mismatches.load() == 0);

  // The C++ wrapper: RAII and exceptions.
  {
    hepnn::Model m(argv[1]);
    hepnn::Session s(m);
    std::vector<float> y2(static_cast<size_t>(n_out));
    s.run({{m.input_name(0), x.data(), {B, F}}}, {{m.output_name(0), y2.data(), n_out}});
    CHECK(std::memcmp(y2.data(), y_ref.data(), 4 * n_out) == 0);
    bool threw = false;
    try {
      s.run({{"nope", x.data(), {B, F}}}, {});
    } catch (const hepnn::RuntimeError& e) {
      threw = e.status == HEPNN_ERROR_INVALID_ARGUMENT && std::strstr(e.what(), "nope");
    }
    CHECK(threw);
  }

  // Batch-1 latency through the C API.
  {
    const int64_t shape1[2] = {1, F};
    hepnn_input in1 = {nullptr, 0, x.data(), shape1, 2};
    hepnn_output o1 = {nullptr, 0, y.data(), int64_t(y.size())};
    for (int r = 0; r < 2000; ++r) hepnn_session_run(sess, &in1, 1, &o1, 1);
    std::vector<double> t(20000);
    for (auto& ti : t) {
      const auto t0 = std::chrono::steady_clock::now();
      hepnn_session_run(sess, &in1, 1, &o1, 1);
      ti = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    }
    std::sort(t.begin(), t.end());
    std::printf("latency_batch1_us median %.3f p99 %.3f\n", t[t.size() / 2], t[t.size() * 99 / 100]);
  }

  hepnn_session_free(sess);
  hepnn_model_free(model);
  std::printf("OK\n");
  return 0;
}
