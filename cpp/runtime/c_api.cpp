// The C API of hepnn.h over Model and Session: exceptions become status codes, and the message is
// kept per thread for hepnn_last_error().
#include "hepnn/hepnn.h"

#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "runtime/session.hpp"

struct hepnn_model {
  std::shared_ptr<const hepnn::rt::Model> model;
  std::vector<std::string> input_names, output_names;
};

struct hepnn_session {
  hepnn::rt::Session session;
  std::vector<const void*> in_data;
  std::vector<const int64_t*> in_shapes;
  std::vector<int32_t> in_ndims;
  std::vector<void*> out_data;
  bool ran = false;
};

namespace {

thread_local std::string t_error;

hepnn_status set_error(hepnn_status s, const std::string& what) {
  t_error = what;
  return s;
}

template <typename F>
hepnn_status guarded(hepnn_status model_error, F&& f) {
  try {
    f();
    return HEPNN_OK;
  } catch (const hepnn::ValueError& e) {
    return set_error(HEPNN_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const hepnn::Error& e) {
    return set_error(model_error, e.what());
  } catch (const std::bad_alloc&) {
    return set_error(HEPNN_ERROR_INTERNAL, "[runtime] out of memory");
  } catch (const std::exception& e) {
    return set_error(HEPNN_ERROR_INTERNAL, std::string("[runtime] ") + e.what());
  } catch (...) {
    return set_error(HEPNN_ERROR_INTERNAL, "[runtime] unknown error");
  }
}

hepnn_status wrap_model(std::shared_ptr<const hepnn::rt::Model> m, hepnn_model** out) {
  auto* h = new hepnn_model{std::move(m), {}, {}};
  h->input_names = h->model->input_names();
  h->output_names = h->model->output_names();
  *out = h;
  return HEPNN_OK;
}

hepnn_status copy_shape(const std::vector<int64_t>& s, int64_t* dims, int32_t capacity, int32_t* ndim) {
  if (!ndim || (capacity > 0 && !dims)) return set_error(HEPNN_ERROR_INVALID_ARGUMENT, "[runtime] null shape pointer");
  for (size_t i = 0; i < s.size() && int32_t(i) < capacity; ++i) dims[i] = s[i];
  *ndim = int32_t(s.size());
  return HEPNN_OK;
}

}  // namespace

extern "C" {

hepnn_status hepnn_model_load(const char* path, hepnn_model** model) {
  if (!path || !model) return set_error(HEPNN_ERROR_INVALID_ARGUMENT, "[runtime] null argument to hepnn_model_load");
  *model = nullptr;
  std::FILE* f = std::fopen(path, "rb");
  if (!f) return set_error(HEPNN_ERROR_IO, std::string("[runtime] cannot open '") + path + "'");
  std::fclose(f);
  return guarded(HEPNN_ERROR_MODEL, [&] { wrap_model(hepnn::rt::Model::load_file(path), model); });
}

hepnn_status hepnn_model_load_buffer(const void* data, size_t size, hepnn_model** model) {
  if ((!data && size) || !model) return set_error(HEPNN_ERROR_INVALID_ARGUMENT, "[runtime] null argument to hepnn_model_load_buffer");
  *model = nullptr;
  return guarded(HEPNN_ERROR_MODEL, [&] {
    static const uint8_t empty = 0;
    wrap_model(hepnn::rt::Model::load(data ? static_cast<const uint8_t*>(data) : &empty, size), model);
  });
}

void hepnn_model_free(hepnn_model* model) { delete model; }

int32_t hepnn_model_num_inputs(const hepnn_model* model) { return model ? int32_t(model->input_names.size()) : 0; }
int32_t hepnn_model_num_outputs(const hepnn_model* model) { return model ? int32_t(model->output_names.size()) : 0; }

const char* hepnn_model_input_name(const hepnn_model* model, int32_t index) {
  if (!model || index < 0 || size_t(index) >= model->input_names.size()) return nullptr;
  return model->input_names[index].c_str();
}
const char* hepnn_model_output_name(const hepnn_model* model, int32_t index) {
  if (!model || index < 0 || size_t(index) >= model->output_names.size()) return nullptr;
  return model->output_names[index].c_str();
}

hepnn_status hepnn_model_input_shape(const hepnn_model* model, int32_t index, int64_t* dims, int32_t capacity,
                                     int32_t* ndim) {
  if (!model || index < 0 || size_t(index) >= model->input_names.size())
    return set_error(HEPNN_ERROR_INVALID_ARGUMENT, "[runtime] bad model or input index");
  return copy_shape(model->model->input_dims[index], dims, capacity, ndim);
}

hepnn_dtype hepnn_model_input_dtype(const hepnn_model* model, int32_t index) {
  if (!model || index < 0 || size_t(index) >= model->input_names.size()) return hepnn_dtype(0);
  const auto& m = *model->model;
  return hepnn_dtype(int(m.values[m.inputs[index]].elem));
}
hepnn_dtype hepnn_model_output_dtype(const hepnn_model* model, int32_t index) {
  if (!model || index < 0 || size_t(index) >= model->output_names.size()) return hepnn_dtype(0);
  const auto& m = *model->model;
  return hepnn_dtype(int(m.values[m.outputs[index]].elem));
}

hepnn_status hepnn_session_create(const hepnn_model* model, int32_t threads, hepnn_session** session) {
  if (!model || !session) return set_error(HEPNN_ERROR_INVALID_ARGUMENT, "[runtime] null argument to hepnn_session_create");
  *session = nullptr;
  return guarded(HEPNN_ERROR_INTERNAL, [&] {
    auto* s = new hepnn_session{hepnn::rt::Session(model->model, threads), {}, {}, {}, {}, false};
    const size_t ni = model->input_names.size(), no = model->output_names.size();
    s->in_data.resize(ni);
    s->in_shapes.resize(ni);
    s->in_ndims.resize(ni);
    s->out_data.resize(no);
    *session = s;
  });
}

void hepnn_session_free(hepnn_session* session) { delete session; }

hepnn_status hepnn_session_run(hepnn_session* session, const hepnn_input* inputs, int32_t num_inputs,
                               hepnn_output* outputs, int32_t num_outputs) {
  if (!session || (num_inputs && !inputs) || (num_outputs && !outputs) || num_inputs < 0 || num_outputs < 0)
    return set_error(HEPNN_ERROR_INVALID_ARGUMENT, "[runtime] null argument to hepnn_session_run");
  return guarded(HEPNN_ERROR_INTERNAL, [&] {
    hepnn_session& s = *session;
    const hepnn::rt::Model& m = s.session.model();
    const size_t ni = s.in_data.size();
    std::fill(s.in_shapes.begin(), s.in_shapes.end(), nullptr);
    for (int32_t k = 0; k < num_inputs; ++k) {
      const hepnn_input& in = inputs[k];
      int idx = -1;
      if (in.name) {
        for (size_t i = 0; i < ni; ++i)
          if (m.values[m.inputs[i]].name == in.name) idx = int(i);
        if (idx < 0) throw hepnn::ValueError(std::string("[runtime] the model has no input named '") + in.name + "'");
      } else {
        if (in.index < 0 || size_t(in.index) >= ni)
          throw hepnn::ValueError("[runtime] input index " + std::to_string(in.index) + " out of range");
        idx = in.index;
      }
      if (s.in_shapes[idx]) throw hepnn::ValueError("[runtime] input '" + m.values[m.inputs[idx]].name + "' given twice");
      if (in.ndim < 0 || in.ndim > 8 || (in.ndim > 0 && !in.shape))
        throw hepnn::ValueError("[runtime] input '" + m.values[m.inputs[idx]].name + "' has a bad shape");
      static const int64_t scalar = 0;
      s.in_shapes[idx] = in.shape ? in.shape : &scalar;
      s.in_ndims[idx] = in.ndim;
      s.in_data[idx] = in.data;
    }
    for (size_t i = 0; i < ni; ++i)
      if (!s.in_shapes[i]) throw hepnn::ValueError("[runtime] input '" + m.values[m.inputs[i]].name + "' is missing");
    s.ran = false;
    s.session.prepare(s.in_shapes.data(), s.in_ndims.data());
    std::fill(s.out_data.begin(), s.out_data.end(), nullptr);
    for (int32_t k = 0; k < num_outputs; ++k) {
      const hepnn_output& o = outputs[k];
      int idx = -1;
      if (o.name) {
        for (size_t i = 0; i < m.outputs.size(); ++i)
          if (m.values[m.outputs[i]].name == o.name) idx = int(i);
        if (idx < 0) throw hepnn::ValueError(std::string("[runtime] the model has no output named '") + o.name + "'");
      } else {
        if (o.index < 0 || size_t(o.index) >= m.outputs.size())
          throw hepnn::ValueError("[runtime] output index " + std::to_string(o.index) + " out of range");
        idx = o.index;
      }
      const int64_t need = s.session.output_numel(idx);
      if (o.capacity < need || (need && !o.data))
        throw hepnn::ValueError("[runtime] output '" + m.values[m.outputs[idx]].name + "' needs " +
                                std::to_string(need) + " elements, the buffer holds " + std::to_string(o.capacity));
      s.out_data[idx] = o.data;
    }
    s.session.run(s.in_data.data(), s.out_data.data());
    s.ran = true;
  });
}

hepnn_status hepnn_session_output_shape(const hepnn_session* session, int32_t index, int64_t* dims, int32_t capacity,
                                        int32_t* ndim) {
  if (!session || index < 0 || size_t(index) >= session->out_data.size())
    return set_error(HEPNN_ERROR_INVALID_ARGUMENT, "[runtime] bad session or output index");
  if (!session->ran) return set_error(HEPNN_ERROR_INVALID_ARGUMENT, "[runtime] no successful run yet");
  return copy_shape(session->session.output_shape(index), dims, capacity, ndim);
}

const char* hepnn_last_error(void) { return t_error.c_str(); }

}  // extern "C"
