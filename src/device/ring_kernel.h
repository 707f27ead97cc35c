// The ring kernel: collectives on device buffers run entirely on the GPU,
// as NCCL runs them. One launch on the caller's stream carries one
// operation or a group's collectives; each thread block is one channel and
// runs the shared ring algorithms (collectives/ring_collective.h) over
// FifoPrims (device/fifo_prims.h), through FIFOs in the ranks' GPU memory.
// No host thread takes part once the kernel is launched. Built only with CUDA.
#pragma once

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "collectives/reduce_ops.h"
#include "device/fifo_ll_prims.h"
#include "device/fifo_prims.h"
#include "nccl.h"

namespace chorus {

constexpr int kRingKernelMaxChannels = 16;
// Collectives per launch (of one shape: see DeviceRing::launch); a larger
// group takes several launches, one after the other on the stream.
constexpr int kRingKernelMaxWorks = 16;
constexpr unsigned kRingKernelThreads = 512;
// Bytes an LL slot carries (its lines are twice as many bytes, plus one
// line for the count): the scratch each block keeps in shared memory.
constexpr uint32_t kRingLLDataBytes = 4096;

enum class RingProtocol : uint32_t { Simple = 0, LL = 1 };

// One collective of a launch. `count` is per rank, as in runtime/op.h.
struct RingWork {
  uint32_t coll;  // RingCollective
  uint32_t protocol;  // RingProtocol, the same on every rank
  int32_t root;
  RedOpArgs op;
  const void* input;
  void* output;
  size_t count;
  // PreMulSum with its scalar in device memory: read by the kernel (null
  // when op.scalar holds it).
  const void* scalarSource;
};

struct RingLinks {
  DeviceFifo toNext;
  DeviceFifo fromPrev;
};

// Passed by value (kernel parameters: well under CUDA's 4 KiB).
struct RingKernelArgs {
  RingLinks channels[kRingKernelMaxChannels];
  RingWork works[kRingKernelMaxWorks];
  int32_t rank;
  int32_t nranks;
  int32_t nChannels;
  int32_t nWorks;
  // Polled while waiting: set by ncclCommAbort (mapped pinned memory).
  const uint32_t* abortFlag;
  // The first failure of any block (an ncclResult_t; 0 while none), in
  // mapped pinned memory the host reads as the communicator's async error.
  uint32_t* status;
};

static_assert(sizeof(RingKernelArgs) <= 4096, "kernel parameters are limited to 4 KiB");

// Enqueues the kernel, nChannels blocks of kRingKernelThreads, on `stream`.
ncclResult_t launchRingKernel(const RingKernelArgs& args, cudaStream_t stream);

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
