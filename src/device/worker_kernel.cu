#include "device/worker_kernel.h"

#include <cuda_runtime.h>

#include <type_traits>

#include "collectives/datatypes.h"
#include "common/result.h"
#include "device/reduce_copy_device.cuh"

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

// Element by element over the grid (consecutive threads, consecutive
// elements): the unrolled 16-byte loops of reduce_copy_device.cuh, for all
// twelve types and every operator in one kernel, take nvcc minutes; these
// take seconds. Bytes of plain copies move in 16-byte words where aligned.
template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T>
__device__ void elementLoop(const Fn& fn, const T* peer, const T* local, T* dst, size_t count) {
  const size_t nthreads = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += nthreads)
    dst[i] = device::reduceElement<kPeer, kPre, kPost>(fn, kPeer ? peer[i] : T{}, local[i]);
}

template <typename Word>
__device__ void copyWords(const Word* from, Word* to, size_t count) {
  const size_t nthreads = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += nthreads)
    to[i] = from[i];
}

__device__ void copyBytes(const unsigned char* from, unsigned char* to, size_t bytes) {
  if ((reinterpret_cast<uintptr_t>(from) | reinterpret_cast<uintptr_t>(to)) % 16 == 0) {
    const size_t words = bytes / 16;
    copyWords(reinterpret_cast<const uint4*>(from), reinterpret_cast<uint4*>(to), words);
    from += words * 16;
    to += words * 16;
    bytes -= words * 16;
  }
  copyWords(from, to, bytes);
}

// As in reduce_copy_kernel.cu, the proxy has folded what needs no loop of
// its own (CommandMover::reduceCopy): a plain copy is a uint8 Sum without a
// peer, and PreMulSum/SumPostDiv come only with their step.
template <typename T>
__device__ void runTyped(const RingCommand& c) {
  const T* peer = reinterpret_cast<const T*>(c.peer);
  const T* local = reinterpret_cast<const T*>(c.local);
  T* dst = reinterpret_cast<T*>(c.dst);
  if (std::is_same<T, uint8_t>::value && peer == nullptr && c.op.kind == RedOpKind::Sum)
    return copyBytes(reinterpret_cast<const unsigned char*>(local),
                     reinterpret_cast<unsigned char*>(dst), c.count);
  dispatchRedOp<T>(c.op, [&](const auto& fn) {
    using Fn = std::decay_t<decltype(fn)>;
    constexpr bool kPre = Fn::kHasPre, kPost = Fn::kHasPost;
    if (peer) {
      elementLoop<true, kPre, kPost>(fn, peer, local, dst, c.count);
    } else if constexpr (kPre || kPost) {
      elementLoop<false, kPre, kPost>(fn, peer, local, dst, c.count);
    }
  });
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
