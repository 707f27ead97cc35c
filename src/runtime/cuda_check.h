// A CUDA runtime call's error as a Chorus result, with a message naming the
// call (and the rank, where one is known). For CUDA builds only.
#pragma once

#include <cuda_runtime_api.h>

#include "common/result.h"
#include "nccl.h"

namespace chorus {

inline ncclResult_t cudaCheck(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return ncclSuccess;
  CHORUS_FAIL(ncclUnhandledCudaError, "%s failed: %s", what, cudaGetErrorString(err));
}

inline ncclResult_t cudaCheck(cudaError_t err, const char* what, int rank) {
  if (err == cudaSuccess) return ncclSuccess;
  CHORUS_FAIL(ncclUnhandledCudaError, "rank %d: %s failed: %s", rank, what,
              cudaGetErrorString(err));
}

}  // namespace chorus
