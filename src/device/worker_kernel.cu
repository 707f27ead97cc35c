#include "device/worker_kernel.h"

#include <cuda_runtime.h>

#include "collectives/datatypes.h"
#include "common/result.h"
#include "device/element_loops.cuh"

namespace chorus {
namespace {

constexpr unsigned kPollNanoseconds = 200;

// runWorker's Block on the GPU: thread 0 waits and signals; every thread of
// the grid takes part in a command's reduce-copy.
struct GpuBlock {
  const uint32_t* abortFlag;
  uint32_t* barrier;  // device memory

  __device__ bool leader() const { return threadIdx.x == 0; }
  __device__ uint32_t load(const uint32_t* word) const {
    return *static_cast<const volatile uint32_t*>(word);
  }
  __device__ void acquire() const { __threadfence_system(); }
  __device__ void release() const { __threadfence_system(); }
  __device__ void sync() const { __syncthreads(); }
  template <typename T>
  __device__ void share(T* value) const {
    __shared__ alignas(16) unsigned char slot[sizeof(RingCommand)];
    static_assert(sizeof(T) <= sizeof(slot), "shared value too large");
    if (leader()) memcpy(slot, value, sizeof(T));
    __syncthreads();
    memcpy(value, slot, sizeof(T));
    __syncthreads();
  }
  __device__ bool aborted() const { return load(abortFlag) != 0; }
  __device__ void pause() const {
#if __CUDA_ARCH__ >= 700
    __nanosleep(kPollNanoseconds);
#endif
  }
  __device__ uint32_t index() const { return blockIdx.x; }
  __device__ uint32_t count() const { return gridDim.x; }
  __device__ void gridArrive() const { atomicAdd(barrier, 1u); }
  __device__ void gridWait(uint32_t target) const {
    while (!ringReached(load(barrier), target) && !aborted()) pause();
    __threadfence();
  }
  __device__ void store(uint32_t* word, uint32_t value) const {
    *static_cast<volatile uint32_t*>(word) = value;
  }

  __device__ void run(const RingCommand& command) const;
};

// The proxy has folded what needs no loop of its own
// (CommandMover::reduceCopy); every thread of the grid takes part.
template <typename T>
__device__ void runTyped(const RingCommand& c) {
  const device::ThreadRange grid{size_t(blockIdx.x) * blockDim.x + threadIdx.x,
                                 size_t(gridDim.x) * blockDim.x};
  device::reduceCopyElements(c.op, reinterpret_cast<const T*>(c.peer),
                             reinterpret_cast<const T*>(c.local), (c.flags & kRingApplyPre) != 0,
                             reinterpret_cast<T*>(c.dst), (c.flags & kRingApplyPost) != 0, c.count,
                             grid);
}

struct RunTyped {
  const RingCommand& c;
  template <typename T>
  __device__ void operator()() const {
    runTyped<T>(c);
  }
};

__device__ void GpuBlock::run(const RingCommand& command) const {
  dispatchType(command.op.type, RunTyped{command});
}

// At most 64 registers per thread, as the reduce-copy kernel: two blocks
// fit on an SM, and nvcc's time stays short.
__global__ void __launch_bounds__(kWorkerThreads, 2)
    workerKernel(RingState* ring, uint32_t slot, uint32_t value, GateCounters* gate,
                 const uint32_t* abortFlag, uint32_t* exits, uint32_t* barrier) {
  GpuBlock block{abortFlag, barrier};
  uint32_t target = value;
  if (target == 0 && block.leader()) target = block.load(&gate->started);
  block.share(&target);
  runWorker(block, ring, slot, target);
  if (block.leader()) {
    __threadfence_system();
    atomicAdd_system(exits, 1u);
  }
}

}  // namespace

ncclResult_t launchWorker(RingState* ring, uint32_t slot, uint32_t value, GateCounters* gate,
                          const uint32_t* abortFlag, uint32_t* exits, uint32_t* barrier,
                          cudaStream_t stream) {
  void* args[] = {&ring, &slot, &value, &gate, &abortFlag, &exits, &barrier};
  const cudaError_t err = cudaLaunchKernel(reinterpret_cast<const void*>(workerKernel),
                                           dim3(kWorkerBlocks), dim3(kWorkerThreads), args, 0,
                                           stream);
  if (err != cudaSuccess)
    CHORUS_FAIL(ncclUnhandledCudaError, "launching the worker kernel failed: %s",
                cudaGetErrorString(err));
  return ncclSuccess;
}

}  // namespace chorus
