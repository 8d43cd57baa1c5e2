// hepnn runtime, C++ wrapper: RAII handles over the C API of hepnn.h; failures throw hepnn::RuntimeError.
//
// Tutorial (link against hepnn::runtime):
//   #include <hepnn/runtime.hpp>
//   hepnn::Model model("mlp.onnx");              // load once; immutable, share across threads
//   void event_loop_thread(const hepnn::Model& model) {
//     hepnn::Session session(model);             // one per thread (owns the scratch memory)
//     std::vector<float> x(30), y(1);            // batch 1, 30 features -> 1 output
//     const std::vector<int64_t> shape{1, 30};
//     for (const auto& event : events) {
//       fill_features(event, x.data());
//       session.run({{model.input_name(0), x.data(), shape}},  // inputs by name
//                   {{model.output_name(0), y.data(), int64_t(y.size())}});
//       use(y[0]);                               // no heap allocation after the first call
//     }
//   }
//   // Errors: catch (const hepnn::RuntimeError& e) { e.what() is "[runtime] ..." }
#pragma once
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hepnn/hepnn.h"

namespace hepnn {

struct RuntimeError : std::runtime_error {
  RuntimeError(hepnn_status s, const char* what) : std::runtime_error(what), status(s) {}
  hepnn_status status;
};

namespace detail {
inline void check(hepnn_status s) {
  if (s != HEPNN_OK) throw RuntimeError(s, hepnn_last_error());
}
}  // namespace detail

class Model {
 public:
  explicit Model(const std::string& path) { detail::check(hepnn_model_load(path.c_str(), &m_)); }
  Model(const void* data, size_t size) { detail::check(hepnn_model_load_buffer(data, size, &m_)); }
  ~Model() { hepnn_model_free(m_); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  Model(Model&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  Model& operator=(Model&& o) noexcept {
    std::swap(m_, o.m_);
    return *this;
  }

  int num_inputs() const { return hepnn_model_num_inputs(m_); }
  int num_outputs() const { return hepnn_model_num_outputs(m_); }
  std::string input_name(int i) const { return name(hepnn_model_input_name(m_, i)); }
  std::string output_name(int i) const { return name(hepnn_model_output_name(m_, i)); }
  // -1 marks a symbolic dimension.
  std::vector<int64_t> input_shape(int i) const {
    int32_t nd = 0;
    detail::check(hepnn_model_input_shape(m_, i, nullptr, 0, &nd));
    std::vector<int64_t> d(static_cast<size_t>(nd));
    detail::check(hepnn_model_input_shape(m_, i, d.data(), nd, &nd));
    return d;
  }
  hepnn_dtype input_dtype(int i) const { return hepnn_model_input_dtype(m_, i); }
  hepnn_dtype output_dtype(int i) const { return hepnn_model_output_dtype(m_, i); }
  const hepnn_model* handle() const { return m_; }

 private:
  static std::string name(const char* s) {
    if (!s) throw RuntimeError(HEPNN_ERROR_INVALID_ARGUMENT, "[runtime] index out of range");
    return s;
  }
  hepnn_model* m_ = nullptr;
};

// data: float32, or int64_t / bool (one byte) where the model's input has that element type.
struct Input {
  std::string name;
  const void* data;
  std::vector<int64_t> shape;
};
struct Output {
  std::string name;
  void* data;
  int64_t capacity;  // elements
};

class Session {
 public:
  explicit Session(const Model& model, int threads = 1) {
    detail::check(hepnn_session_create(model.handle(), threads, &s_));
  }
  ~Session() { hepnn_session_free(s_); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Session(Session&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Session& operator=(Session&& o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }

  // Convenience form (small vectors of descriptors); for a hot loop without any allocation call
  // run_raw with arrays of hepnn_input / hepnn_output built once.
  void run(const std::vector<Input>& inputs, const std::vector<Output>& outputs) {
    in_.resize(inputs.size());
    out_.resize(outputs.size());
    for (size_t i = 0; i < inputs.size(); ++i)
      in_[i] = {inputs[i].name.c_str(), 0, inputs[i].data, inputs[i].shape.data(), int32_t(inputs[i].shape.size())};
    for (size_t i = 0; i < outputs.size(); ++i)
      out_[i] = {outputs[i].name.c_str(), 0, outputs[i].data, outputs[i].capacity};
    run_raw(in_.data(), int32_t(in_.size()), out_.data(), int32_t(out_.size()));
  }
  void run_raw(const hepnn_input* in, int32_t n_in, hepnn_output* out, int32_t n_out) {
    detail::check(hepnn_session_run(s_, in, n_in, out, n_out));
  }
  std::vector<int64_t> output_shape(int i) const {
    int32_t nd = 0;
    detail::check(hepnn_session_output_shape(s_, i, nullptr, 0, &nd));
    std::vector<int64_t> d(static_cast<size_t>(nd));
    detail::check(hepnn_session_output_shape(s_, i, d.data(), nd, &nd));
    return d;
  }

 private:
  hepnn_session* s_ = nullptr;
  std::vector<hepnn_input> in_;
  std::vector<hepnn_output> out_;
};

}  // namespace hepnn
