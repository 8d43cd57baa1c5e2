// Fuzz target for the ONNX loader and planner. LLVMFuzzerTestOneInput makes it a libFuzzer target
// (clang -fsanitize=fuzzer,address,undefined -DHEPNN_LIBFUZZER); without libFuzzer, main() runs a
// deterministic mutation loop over seed files: fuzz_loader ITERATIONS SEED.onnx...
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "hepnn/hepnn.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hepnn_model* model = nullptr;
  if (hepnn_model_load_buffer(data, size, &model) != HEPNN_OK) return 0;
  hepnn_session* session = nullptr;
  if (hepnn_session_create(model, 1, &session) == HEPNN_OK) {
    const int n_in = hepnn_model_num_inputs(model);
    static const int64_t shapes[4][2] = {{1, 4}, {2, 5}, {3, 1}, {1, 30}};
    // Inputs and outputs may be int64 or bool: buffers hold their element counts in the widest type.
    std::vector<float> x(256, 0.5f);
    std::vector<int64_t> y(4096);
    for (const auto& shape : shapes) {
      std::vector<hepnn_input> in;
      for (int i = 0; i < n_in; ++i) in.push_back({nullptr, i, x.data(), shape, 2});
      hepnn_output out = {nullptr, 0, y.data(), int64_t(y.size())};
      hepnn_session_run(session, in.data(), n_in, &out, hepnn_model_num_outputs(model) > 0 ? 1 : 0);
    }
    hepnn_session_free(session);
  }
  hepnn_model_free(model);
  return 0;
}

#ifndef HEPNN_LIBFUZZER
int main(int argc, char** argv) {
  if (argc < 3) {
    std::printf("usage: %s ITERATIONS SEED...\n", argv[0]);
    return 2;
  }
  const long iterations = std::atol(argv[1]);
  std::vector<std::vector<uint8_t>> seeds;
  for (int a = 2; a < argc; ++a) {
    std::vector<uint8_t> s;
    if (FILE* f = std::fopen(argv[a], "rb")) {
      int c;
      while ((c = std::fgetc(f)) != EOF) s.push_back(uint8_t(c));
      std::fclose(f);
    }
    if (!s.empty()) seeds.push_back(s);
  }
  if (seeds.empty()) return 2;
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto rnd = [&] {  // xorshift64: reproducible runs
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  long loaded = 0;
  for (long it = 0; it < iterations; ++it) {
    std::vector<uint8_t> d = seeds[size_t(it) % seeds.size()];
    const int flips = 1 + int(rnd() % 8);
    for (int k = 0; k < flips; ++k) d[rnd() % d.size()] = uint8_t(rnd());
    if (rnd() % 5 == 0) d.resize(rnd() % (d.size() + 1));
    if (rnd() % 7 == 0 && !d.empty()) {  // splice a chunk of another seed
      const auto& o = seeds[rnd() % seeds.size()];
      const size_t at = rnd() % d.size(), from = rnd() % o.size(), n = rnd() % 32;
      for (size_t k = 0; k < n && at + k < d.size() && from + k < o.size(); ++k) d[at + k] = o[from + k];
    }
    hepnn_model* m = nullptr;
    if (hepnn_model_load_buffer(d.data(), d.size(), &m) == HEPNN_OK) ++loaded;
    hepnn_model_free(m);
    LLVMFuzzerTestOneInput(d.data(), d.size());
  }
  std::printf("fuzz_loader: %ld inputs, %ld loaded, no crash\n", iterations, loaded);
  return 0;
}
#endif
