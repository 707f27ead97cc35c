// The two kernels that tie a device communicator's proxy thread to the
// caller's CUDA stream (runtime/device_queue.h): the stream opens a gate
// when it reaches an operation, and then waits until the proxy has finished
// it. Both work on counters in mapped, pinned host memory, so the proxy
// polls host memory and no CUDA call is needed to signal it; both are plain
// kernels, so they are captured into CUDA graphs and run again on every
// replay. Built only with CUDA.
#pragma once

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include <cstdint>

#include "nccl.h"

namespace chorus {

// One operation's (or group's) counters, in mapped pinned memory. `started`
// is written by the gate kernels, `finished` by the proxy; both only grow.
struct alignas(64) GateCounters {
  uint32_t started;
  uint32_t finished;
};

// Marks that the stream reached the operation: started = value, or, when
// value is 0 (a gate captured in a graph, opened once per replay),
// started + 1. `counters` is the device view of the pinned counters.
ncclResult_t launchGateOpen(GateCounters* counters, uint32_t value, cudaStream_t stream);

// Holds the stream until finished >= target, where target is `value`, or,
// when value is 0, the `started` count its own open left. Gives up when
// *abortFlag (device view of a pinned word) becomes non-zero, and then
// counts itself in *exits either way, so a communicator knows when no gate
// kernel reads its memory any more.
ncclResult_t launchGateWait(GateCounters* counters, uint32_t value, const uint32_t* abortFlag,
                            uint32_t* exits, cudaStream_t stream);

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
