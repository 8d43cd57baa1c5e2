// hepnn._core.RuntimeModel / RuntimeSession: the C++ inference runtime for Python (tests and
// the Python fast path). Inputs and outputs are NumPy arrays of each value's element type (float32,
// int64, bool); outputs are fresh arrays; the GIL is released while running.
#include <nanobind/stl/shared_ptr.h>
#include <memory>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "common.hpp"
#include "runtime/session.hpp"

namespace {
namespace nb = nanobind;
using hepnn::rt::Model;
using hepnn::rt::Session;
using ModelPtr = std::shared_ptr<const Model>;
using OutArray = nb::ndarray<nb::numpy, nb::c_contig>;
using hepnn::rt::Elem;

nb::dlpack::dtype dlpack_of(Elem e) {
  return e == Elem::f32 ? nb::dtype<float>() : e == Elem::i64 ? nb::dtype<int64_t>() : nb::dtype<bool>();
}

nb::list session_run(Session& s, const std::vector<hepnn::py::Array>& inputs) {
  const Model& m = s.model();
  if (inputs.size() != m.inputs.size())
    throw hepnn::ValueError("[runtime] the model takes " + std::to_string(m.inputs.size()) + " inputs, got " +
                            std::to_string(inputs.size()));
  const size_t ni = inputs.size(), no = m.outputs.size();
  std::vector<const void*> data(ni);
  std::vector<std::vector<int64_t>> shapes(ni);
  std::vector<const int64_t*> shape_ptrs(ni);
  std::vector<int32_t> ndims(ni);
  for (size_t i = 0; i < ni; ++i) {
    const auto& a = inputs[i];
    const char* name = m.values[m.inputs[i]].name.c_str();
    if (!hepnn::py::is_cpu(a)) throw hepnn::TypeError(std::string("[runtime] input '") + name + "' is not a CPU array");
    const Elem want = m.values[m.inputs[i]].elem;
    if (a.dtype() != dlpack_of(want))
      throw hepnn::TypeError(std::string("[runtime] input '") + name + "' has dtype " + hepnn::py::dtype_name(a) +
                             ", expected " + hepnn::rt::elem_name(want));
    hepnn::py::require_contiguous(a, "runtime", name);
    shapes[i] = hepnn::py::shape_of(a);
    shape_ptrs[i] = shapes[i].data();
    ndims[i] = int32_t(shapes[i].size());
    data[i] = a.data();
  }
  std::vector<std::unique_ptr<int64_t[]>> owned(no);  // int64 units: aligned for every element type
  std::vector<void*> out(no);
  std::vector<std::vector<size_t>> out_shapes(no);
  {
    nb::gil_scoped_release release;
    s.prepare(shape_ptrs.data(), ndims.data());
    for (size_t i = 0; i < no; ++i) {
      const size_t bytes = size_t(s.output_numel(i)) * hepnn::rt::elem_size(s.output_elem(i));
      owned[i].reset(new int64_t[bytes / 8 + 1]);
      out[i] = owned[i].get();
      for (int64_t d : s.output_shape(i)) out_shapes[i].push_back(size_t(d));
    }
    s.run(data.data(), out.data());
  }
  nb::list result;
  for (size_t i = 0; i < no; ++i) {
    nb::capsule owner(owned[i].release(), [](void* p) noexcept { delete[] static_cast<int64_t*>(p); });
    result.append(OutArray(out[i], out_shapes[i].size(), out_shapes[i].data(), owner, nullptr, dlpack_of(s.output_elem(i))));
  }
  return result;
}

}  // namespace

HEPNN_BINDING(runtime) {
  nb::class_<Model>(m, "RuntimeModel")
      .def_static("load_file", [](const std::string& path) { return std::const_pointer_cast<Model>(Model::load_file(path)); })
      .def_static("load_bytes", [](nb::bytes b) {
        return std::const_pointer_cast<Model>(Model::load(static_cast<const uint8_t*>(b.data()), b.size()));
      })
      .def_prop_ro("input_names", &Model::input_names)
      .def_prop_ro("output_names", &Model::output_names)
      .def_prop_ro("input_shapes", [](const Model& m) { return m.input_dims; })
      .def_prop_ro("input_dtypes", [](const Model& m) {
        std::vector<std::string> r;
        for (int v : m.inputs) r.push_back(hepnn::rt::elem_name(m.values[v].elem));
        return r;
      })
      .def_prop_ro("num_steps", [](const Model& m) { return m.steps.size(); })
      .def_prop_ro("step_ops", [](const Model& m) {
        std::vector<std::string> r;
        for (const auto& s : m.steps) r.push_back(s.op);
        return r;
      });
  nb::class_<Session>(m, "RuntimeSession")
      .def("__init__", [](Session* self, std::shared_ptr<Model> model, int threads) {
        new (self) Session(std::move(model), threads);
      }, nb::arg("model"), nb::arg("threads") = 1)
      .def("run", &session_run, nb::arg("inputs"))
      .def_prop_ro("threads", &Session::threads)
      .def_prop_ro("arena_floats", &Session::arena_floats)
      .def_prop_ro("live_steps", &Session::live_steps);
}
