// The worker kernel of device communicators (device/command_ring.h): it
// holds the caller's stream during an operation and runs the copies and
// reductions the proxy posts. Built only with CUDA.
#pragma once

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include <cstdint>

#include "device/command_ring.h"
#include "device/stream_gate.h"
#include "nccl.h"

namespace chorus {

// Blocks per worker, and threads per block.
constexpr uint32_t kWorkerBlocks = 16;
static_assert(kWorkerBlocks <= kRingMaxBlocks, "the ring tracks each block");
constexpr uint32_t kWorkerThreads = 512;

// Enqueues the worker of the ticket in `slot` on `stream`: it waits until
// the ring's go[slot] equals `value` (0: the started count the slot's
// gate-open left, for a ticket captured in a graph), runs its commands, and
// exits at its Exit command, or when *abortFlag is set. Each block counts
// itself in *exits when it leaves. Device views of mapped pinned memory;
// `barrier` is the communicator's grid-barrier counter in device memory
// (zeroed once, shared by all its workers).
ncclResult_t launchWorker(RingState* ring, uint32_t slot, uint32_t value, GateCounters* gate,
                          const uint32_t* abortFlag, uint32_t* exits, uint32_t* barrier,
                          cudaStream_t stream);

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
