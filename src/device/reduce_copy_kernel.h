// Host entry point of the device reduce-copy (reduce_copy_kernel.cu): the GPU
// twin of collectives/reduce_copy.h's reduceCopy, on memory the current CUDA
// device can access, enqueued on a stream. Built only with CUDA.
#pragma once

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include <cstddef>

#include "collectives/reduce_ops.h"
#include "nccl.h"

namespace chorus {

// dst[i] = post( peer ? peer[i] (+) pre(local[i]) : pre(local[i]) ), with
// reduceCopy's contract and results, bit for bit. Returns once the kernel is
// enqueued (nothing is enqueued for count 0 or an in-place copy); a failed
// launch is ncclUnhandledCudaError with the CUDA error in ncclGetLastError.
ncclResult_t launchReduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                              bool applyPre, void* dst, bool applyPost, size_t count,
                              cudaStream_t stream);

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
