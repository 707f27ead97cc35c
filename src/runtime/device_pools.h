// Process-wide CUDA resources that device communicators share or reuse
// instead of creating and freeing their own: the proxies' stream per
// device, mapped pinned memory, and the worker kernels' barrier counters.
// Creating and freeing such things may wait for the whole device, where
// other communicators' kernels can hold streams for a long time (see
// design.md). Built only with CUDA.
#pragma once

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "nccl.h"

namespace chorus {

// The stream every proxy of this process uses on `device`: created on first
// use and kept for the life of the process.
ncclResult_t proxyStreamFor(int device, cudaStream_t* out);

// `bytes` of zeroed, mapped, portable pinned memory: a block given back
// earlier when one of that size is free, a new one otherwise.
ncclResult_t takePinnedBytes(size_t bytes, void** out);
// Keeps `block` (of `bytes`, from takePinnedBytes; may be null) for reuse.
void givePinnedBytes(size_t bytes, void* block);

template <typename T>
ncclResult_t takePinned(size_t count, T** out) {
  void* block = nullptr;
  const ncclResult_t result = takePinnedBytes(sizeof(T) * count, &block);
  *out = static_cast<T*>(block);
  return result;
}

template <typename T>
void givePinned(size_t count, T* block) {
  givePinnedBytes(sizeof(T) * count, block);
}

// A grid-barrier counter in `device`'s memory, zeroed on `stream` (and
// synchronized with it) before it is returned.
ncclResult_t takeBarrier(int device, cudaStream_t stream, uint32_t** out);
// Keeps `counter` (may be null) for reuse on `device`.
void giveBarrier(int device, uint32_t* counter);

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
