// Library-wide controls: thread pool size, CPU features, whether and where CUDA is available.
#include "common.hpp"
#include "core/cpu_features.hpp"
#include "core/threadpool.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/device.hpp"
#include "cuda/gemm.hpp"
#endif

HEPNN_BINDING(core) {
  namespace nb = nanobind;
  m.def("set_num_threads", [](int n) {
    hepnn::check_value(n >= 1, "set_num_threads", "needs at least 1 thread, got " + std::to_string(n));
    hepnn::set_num_threads(n);
  }, nb::arg("n"));
  m.def("get_num_threads", &hepnn::get_num_threads);
  m.def("cpu_features", [] {
    nb::dict d;
    d["avx2"] = hepnn::cpu_features().avx2;
    d["fma"] = hepnn::cpu_features().fma;
    d["avx2_kernels"] = hepnn::use_avx2_fma();
    d["avx512"] = hepnn::cpu_features().avx512;
    d["avx512_kernels"] = hepnn::use_avx512();
    return d;
  });
  m.def("cuda_built", [] {
#if defined(HEPNN_WITH_CUDA)
    return true;
#else
    return false;
#endif
  });
  // TF32 only changes CUDA float products; the flag exists (and stays False) without CUDA.
  m.def("cuda_set_allow_tf32", [](bool allowed) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::set_tf32_allowed(allowed);
#else
    hepnn::check_value(!allowed, "set_allow_tf32", "hepnn was built without CUDA; TF32 is a CUDA tensor-core mode");
#endif
  }, nb::arg("allowed"));
  m.def("cuda_allow_tf32", [] {
#if defined(HEPNN_WITH_CUDA)
    return hepnn::cuda::tf32_allowed();
#else
    return false;
#endif
  });
  m.def("cuda_device_count", [] {
#if defined(HEPNN_WITH_CUDA)
    return hepnn::cuda::device_count();
#else
    return 0;
#endif
  });
}
