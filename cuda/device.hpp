// CUDA device queries that must not fail on machines without a GPU or driver.
#pragma once
#include "core/types.hpp"

namespace hepnn::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no GPU (never throws).
int device_count();

// Throws hepnn::Error "[op] CUDA error: ..." when the last launch on this thread failed.
void check_launch(const char* op);

}  // namespace hepnn::cuda
