// The standalone reduce-copy kernel: the device loops of reduce_copy_device.cuh
// run by a whole grid, threads striding over the buffers.
//
// Few instantiations keep nvcc fast: one kernel per storage type (12), with
// the operator a run-time argument whose functor dispatchRedOp picks once,
// outside the loops. The host folds away what needs no loop of its own: a
// plain copy is cudaMemcpyAsync, and PreMulSum without its pre step or
// SumPostDiv without its post step is a Sum. So each kernel holds eight
// loops: Sum, Prod, Max, Min with a peer, PreMulSum (pre) and SumPostDiv
// (post) with and without one.
#include "device/reduce_copy_kernel.h"

#include <cuda_runtime.h>

#include <atomic>
#include <type_traits>

#include "collectives/datatypes.h"
#include "common/result.h"
#include "device/reduce_copy_device.cuh"

namespace chorus {
namespace {

constexpr int kThreads = 512;
// Two blocks of 512 threads fit on every SM from sm_80 on (sm_86/89 hold
// 1536 threads; __launch_bounds__ keeps the kernels at <= 64 registers so
// that the register file holds them); with kUnroll packs of two inputs per
// thread that keeps far more bytes in flight than memory latency needs.
constexpr int kBlocksPerSm = 2;

// op's pre or post step is applied when it has one; otherwise peer is set.
struct KernelArgs {
  RedOpArgs op;
  const void* peer;
  const void* local;
  void* dst;
  size_t count;
};

template <typename T>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm) reduceCopyKernel(KernelArgs a) {
  const size_t tid = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t nthreads = size_t(gridDim.x) * blockDim.x;
  const T* peer = static_cast<const T*>(a.peer);
  const T* local = static_cast<const T*>(a.local);
  T* dst = static_cast<T*>(a.dst);
  dispatchRedOp<T>(a.op, [&](const auto& fn) {
    using Fn = std::decay_t<decltype(fn)>;
    constexpr bool kPre = Fn::kHasPre, kPost = Fn::kHasPost;
    if constexpr (kPre || kPost) {
      if (peer) {
        device::reduceCopyRange<true, kPre, kPost>(fn, peer, local, dst, a.count, tid, nthreads);
      } else {
        device::reduceCopyRange<false, kPre, kPost>(fn, peer, local, dst, a.count, tid, nthreads);
      }
    } else {
      device::reduceCopyRange<true, false, false>(fn, peer, local, dst, a.count, tid, nthreads);
    }
  });
}

}  // namespace

// reduceCopyBlock is what the collective kernels will call; instantiating it
// here keeps it compiling until they do (nvcc emits no code for it, as no
// kernel calls it).
template __device__ void device::reduceCopyBlock(const FuncPreMulSum<float>&, const float*,
                                                 const float*, bool, float*, bool, size_t);
template __device__ void device::reduceCopyBlock(const FuncSumPostDiv<int32_t>&, const int32_t*,
                                                 const int32_t*, bool, int32_t*, bool, size_t);

namespace {

// The SM count of each device, asked once (0: not known yet).
constexpr int kMaxDevices = 64;
std::atomic<int> smCounts[kMaxDevices];

ncclResult_t smCount(int* count) {
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess)
    CHORUS_FAIL(ncclUnhandledCudaError, "reduce-copy kernel: cudaGetDevice failed: %s",
                cudaGetErrorString(err));
  if (device < kMaxDevices) {
    *count = smCounts[device].load(std::memory_order_relaxed);
    if (*count > 0) return ncclSuccess;
  }
  err = cudaDeviceGetAttribute(count, cudaDevAttrMultiProcessorCount, device);
  if (err != cudaSuccess)
    CHORUS_FAIL(ncclUnhandledCudaError, "reduce-copy kernel: SM count of device %d: %s", device,
                cudaGetErrorString(err));
  if (device < kMaxDevices) smCounts[device].store(*count, std::memory_order_relaxed);
  return ncclSuccess;
}

struct Launch {
  const KernelArgs& args;
  cudaStream_t stream;

  template <typename T>
  ncclResult_t operator()() const {
    int sms = 0;
    CHORUS_CHECK(smCount(&sms));
    // Enough blocks for every thread to have a full unrolled tile of packs,
    // at most kBlocksPerSm per SM; small counts get few blocks.
    const size_t packs = (args.count * sizeof(T) + device::kPackBytes - 1) / device::kPackBytes;
    const size_t perBlock = size_t(kThreads) * device::kUnroll;
    size_t blocks = (packs + perBlock - 1) / perBlock;
    if (blocks > size_t(sms) * kBlocksPerSm) blocks = size_t(sms) * kBlocksPerSm;
    if (blocks < 1) blocks = 1;
    reduceCopyKernel<T><<<unsigned(blocks), kThreads, 0, stream>>>(args);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
      CHORUS_FAIL(ncclUnhandledCudaError, "reduce-copy kernel (%s %s, %zu elements) failed to launch: %s",
                  redOpKindName(args.op.kind), dataTypeName(args.op.type), args.count,
                  cudaGetErrorString(err));
    return ncclSuccess;
  }
};

}  // namespace

ncclResult_t launchReduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                              bool applyPre, void* dst, bool applyPost, size_t count,
                              cudaStream_t stream) {
  if (elementSize(op.type) == 0)
    CHORUS_FAIL(ncclInvalidArgument, "reduce-copy kernel: invalid datatype %d", int(op.type));
  if (count == 0) return ncclSuccess;
  KernelArgs args{op, peer, local, dst, count};
  const bool pre = applyPre && op.kind == RedOpKind::PreMulSum;
  const bool post = applyPost && op.kind == RedOpKind::SumPostDiv;
  if (!pre && !post) {
    if (!peer) {  // a copy
      if (dst == local) return ncclSuccess;
      const size_t bytes = count * elementSize(op.type);
      const cudaError_t err = cudaMemcpyAsync(dst, local, bytes, cudaMemcpyDefault, stream);
      if (err != cudaSuccess)
        CHORUS_FAIL(ncclUnhandledCudaError, "reduce-copy: cudaMemcpyAsync of %zu bytes failed: %s",
                    bytes, cudaGetErrorString(err));
      return ncclSuccess;
    }
    if (op.kind == RedOpKind::PreMulSum || op.kind == RedOpKind::SumPostDiv) args.op.kind = RedOpKind::Sum;
  }
  return dispatchType(op.type, Launch{args, stream});
}

}  // namespace chorus
