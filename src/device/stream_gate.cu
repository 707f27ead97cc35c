#include "device/stream_gate.h"

#include <cuda_runtime.h>

#include "common/result.h"

namespace chorus {
namespace {

__device__ uint32_t loadVolatile(const uint32_t* word) {
  return *static_cast<const volatile uint32_t*>(word);
}

__global__ void gateOpenKernel(GateCounters* counters, uint32_t value) {
  // Whatever the stream did before this kernel (writing the operation's
  // input) is visible to the proxy before it sees the gate open.
  __threadfence_system();
  const uint32_t next = value != 0 ? value : loadVolatile(&counters->started) + 1;
  *static_cast<volatile uint32_t*>(&counters->started) = next;
  __threadfence_system();
}

// cudaLaunchKernel reports this launch's own failure; the <<<>>> form would
// leave it to cudaGetLastError, which also returns (and clears) an earlier
// error of the caller's.
ncclResult_t launch(const void* kernel, void** args, cudaStream_t stream, const char* what) {
  const cudaError_t err = cudaLaunchKernel(kernel, dim3(1), dim3(1), args, 0, stream);
  if (err != cudaSuccess)
    CHORUS_FAIL(ncclUnhandledCudaError, "launching the %s kernel failed: %s", what,
                cudaGetErrorString(err));
  return ncclSuccess;
}

}  // namespace

ncclResult_t launchGateOpen(GateCounters* counters, uint32_t value, cudaStream_t stream) {
  void* args[] = {&counters, &value};
  return launch(reinterpret_cast<const void*>(gateOpenKernel), args, stream, "gate-open");
}

}  // namespace chorus
