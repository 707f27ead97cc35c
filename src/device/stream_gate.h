// The gate-open kernel that tells a device communicator's proxy thread that
// the caller's CUDA stream has reached an operation (runtime/device_queue.h);
// the worker kernel after it (worker_kernel.h) then holds the stream while
// the operation runs. The counters are in mapped, pinned host memory, so the
// proxy polls host memory and no CUDA call is needed to signal it; a plain
// kernel, so it is captured into CUDA graphs and runs on every replay.
// Built only with CUDA.
#pragma once

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include <cstdint>

#include "nccl.h"

namespace chorus {

// One operation's (or group's) counters, in mapped pinned memory. `started`
// is written by the gate-open kernel, `finished` by the proxy (its own
// bookkeeping); both only grow.
struct alignas(64) GateCounters {
  uint32_t started;
  uint32_t finished;
};

// Marks that the stream reached the operation: started = value, or, when
// value is 0 (a gate captured in a graph, opened once per replay),
// started + 1. `counters` is the device view of the pinned counters.
ncclResult_t launchGateOpen(GateCounters* counters, uint32_t value, cudaStream_t stream);

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
