#include "runtime/device_mover.h"

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime.h>

#include "common/result.h"
#include "device/reduce_copy_kernel.h"

namespace chorus {

ncclResult_t CudaMover::copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return ncclSuccess;
  // cudaMemcpyDefault: either side may be device memory, of this or a peer
  // device, or pinned host memory (unified addressing tells them apart).
  const cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_);
  if (err != cudaSuccess)
    CHORUS_FAIL(ncclUnhandledCudaError, "cudaMemcpyAsync of %zu bytes failed: %s", bytes,
                cudaGetErrorString(err));
  pending_ = true;
  return ncclSuccess;
}

ncclResult_t CudaMover::reduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                                   bool applyPre, void* dst, bool applyPost, size_t count) {
  if (count == 0) return ncclSuccess;
  pending_ = true;
  return launchReduceCopy(op, peer, local, applyPre, dst, applyPost, count, stream_);
}

ncclResult_t CudaMover::settle() {
  if (!pending_) return ncclSuccess;
  pending_ = false;
  const cudaError_t err = cudaStreamSynchronize(stream_);
  if (err != cudaSuccess)
    CHORUS_FAIL(ncclUnhandledCudaError, "a copy or reduction on the device failed: %s",
                cudaGetErrorString(err));
  return ncclSuccess;
}

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
