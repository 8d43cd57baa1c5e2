// CUDA device queries and launch-error reporting shared by every CUDA op family.
#include <cuda_runtime.h>

#include "core/error.hpp"
#include "cuda/device.hpp"

namespace hepnn::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

void check_launch(const char* op) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw Error(op_message(op, std::string("CUDA error: ") + cudaGetErrorString(err)));
}

}  // namespace hepnn::cuda
