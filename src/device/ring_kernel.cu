#include "device/ring_kernel.h"

#include <cuda_runtime.h>

#include "collectives/datatypes.h"
#include "collectives/ring_collective.h"
#include "common/result.h"
#include "device/element_loops.cuh"

namespace chorus {
namespace {

// How often (in polls) a waiting leader reads the abort flag, which lives
// in host memory: a read across the bus per poll would slow every wait.
constexpr uint32_t kPollsPerAbortCheck = 1024;

// FifoPrims' Block on the GPU: thread 0 waits and signals, every thread of
// the block copies and reduces.
struct GpuRingBlock {
  const uint32_t* abortFlag;
  uint32_t polls = 0;

  __device__ bool leader() const { return threadIdx.x == 0; }
  // Counters: a volatile load, then a system-scope fence so that nothing
  // this block reads next (the slot) is read before the counter.
  __device__ uint64_t load(const uint64_t* word) const {
    const uint64_t value = *static_cast<const volatile uint64_t*>(word);
    __threadfence_system();
    return value;
  }
  __device__ uint32_t load32(const uint32_t* word) const {
    const uint32_t value = *static_cast<const volatile uint32_t*>(word);
    __threadfence_system();
    return value;
  }
  // The fence first: everything before it (release() and the barrier
  // made it the whole block's) is visible before the counter.
  __device__ void store(uint64_t* word, uint64_t value) const {
    __threadfence_system();
    *static_cast<volatile uint64_t*>(word) = value;
  }
  __device__ void store32(uint32_t* word, uint32_t value) const {
    __threadfence_system();
    *static_cast<volatile uint32_t*>(word) = value;
  }
  __device__ void release() const { __threadfence_system(); }
  __device__ void sync() const { __syncthreads(); }
  template <typename T>
  __device__ void share(T* value) const {
    __shared__ alignas(16) unsigned char slot[16];
    static_assert(sizeof(T) <= sizeof(slot), "shared value too large");
    if (leader()) memcpy(slot, value, sizeof(T));
    __syncthreads();
    memcpy(value, slot, sizeof(T));
    __syncthreads();
  }
  __device__ bool aborted() {
    if (++polls % kPollsPerAbortCheck != 0) return false;
    return *static_cast<const volatile uint32_t*>(abortFlag) != 0;
  }
  __device__ void pause() const {}
  __device__ device::ThreadRange threads() const { return {threadIdx.x, blockDim.x}; }
  __device__ size_t threadIndex() const { return threadIdx.x; }
  __device__ size_t threadCount() const { return blockDim.x; }
  // LL lines: one 16-byte volatile access, so each (data, flag) half moves
  // at once; no fence (the flag travels with its data).
  __device__ void storeLine(uint64_t* line, uint64_t lo, uint64_t hi) const {
    asm volatile("st.volatile.v2.u64 [%0], {%1, %2};" ::"l"(line), "l"(lo), "l"(hi) : "memory");
  }
  __device__ void loadLine(const uint64_t* line, uint64_t* lo, uint64_t* hi) const {
    asm volatile("ld.volatile.v2.u64 {%0, %1}, [%2];" : "=l"(*lo), "=l"(*hi) : "l"(line) : "memory");
  }
  __device__ bool anyOf(bool value) const { return __syncthreads_or(value) != 0; }
  __device__ void copy(const void* from, void* to, size_t bytes) const {
    device::copyBytes(from, to, bytes, threads());
  }
  __device__ void reduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                             bool applyPre, void* dst, bool applyPost, size_t count) const;
};

struct ReduceCopyTyped {
  const RedOpArgs& op;
  const void* peer;
  const void* local;
  bool applyPre;
  void* dst;
  bool applyPost;
  size_t count;
  device::ThreadRange threads;
  template <typename T>
  __device__ void operator()() const {
    device::reduceCopyElements(op, static_cast<const T*>(peer), static_cast<const T*>(local),
                               applyPre, static_cast<T*>(dst), applyPost, count, threads);
  }
};

__device__ void GpuRingBlock::reduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                                         bool applyPre, void* dst, bool applyPost,
                                         size_t count) const {
  dispatchType(op.type,
               ReduceCopyTyped{op, peer, local, applyPre, dst, applyPost, count, threads()});
}

// One channel's part of one collective over either protocol's primitives.
template <typename Prims>
__device__ ncclResult_t runWork(Prims& prims, const RingWork& work, const RingKernelArgs& args,
                                size_t elemSize) {
  runRingChannel(prims, static_cast<RingCollective>(work.coll), args.rank, args.nranks, work.root,
                 work.count, elemSize, args.nChannels, blockIdx.x);
  return prims.status();
}

__global__ void __launch_bounds__(kRingKernelThreads, 1) ringKernel(RingKernelArgs args) {
  __shared__ alignas(16) char llScratch[2 * kRingLLDataBytes];
  GpuRingBlock block{args.abortFlag};
  // A copy in registers/local memory: FifoPrims keeps pointers to the links.
  RingLinks links = args.channels[blockIdx.x];
  const bool ring = args.nranks > 1;
  for (int w = 0; w < args.nWorks; ++w) {
    RingWork work = args.works[w];
    const size_t elemSize = elementSize(work.op.type);
    if (work.scalarSource != nullptr) {
      work.op.scalar = 0;
      memcpy(&work.op.scalar, work.scalarSource, elemSize);
    }
    const DeviceFifo* toNext = ring ? &links.toNext : nullptr;
    const DeviceFifo* fromPrev = ring ? &links.fromPrev : nullptr;
    ncclResult_t status;
    if (static_cast<RingProtocol>(work.protocol) == RingProtocol::LL) {
      FifoLLPrims<GpuRingBlock> prims(block, toNext, fromPrev, work.input, work.output, work.op,
                                      elemSize, llScratch);
      status = runWork(prims, work, args, elemSize);
    } else {
      FifoPrims<GpuRingBlock> prims(block, toNext, fromPrev, work.input, work.output, work.op,
                                    elemSize);
      status = runWork(prims, work, args, elemSize);
    }
    if (status != ncclSuccess) {
      // This block stops. Its peers wait for it until ncclCommAbort (or
      // destroy's timeout) raises the abort word; the failure is the
      // communicator's async error, and its next post fails.
      if (block.leader()) atomicCAS_system(args.status, 0u, static_cast<uint32_t>(status));
      return;
    }
  }
}

}  // namespace

ncclResult_t launchRingKernel(const RingKernelArgs& args, cudaStream_t stream) {
  if (args.nChannels < 1 || args.nChannels > kRingKernelMaxChannels || args.nWorks < 0 ||
      args.nWorks > kRingKernelMaxWorks)
    CHORUS_FAIL(ncclInternalError, "ring kernel: %d channels and %d collectives per launch",
                args.nChannels, args.nWorks);
  void* params[] = {const_cast<RingKernelArgs*>(&args)};
  const cudaError_t err =
      cudaLaunchKernel(reinterpret_cast<const void*>(ringKernel), dim3(args.nChannels),
                       dim3(kRingKernelThreads), params, 0, stream);
  if (err != cudaSuccess)
    CHORUS_FAIL(ncclUnhandledCudaError, "launching the ring kernel failed: %s",
                cudaGetErrorString(err));
  return ncclSuccess;
}

}  // namespace chorus
