// Proves, in every build with CUDA, that the shared algorithm headers, the
// datatypes and the reduction operators compile as device code: the ring
// algorithms run here inside a kernel over LoopbackPrims, device primitives
// for a ring of one rank (what is "sent" is received back from a staging
// buffer). The real device primitives and transports replace them in the
// GPU path; until then no kernel here is launched by the library.
#include "collectives/datatypes.h"
#include "collectives/reduce_ops.h"
#include "collectives/ring_all_gather.h"
#include "collectives/ring_all_reduce.h"
#include "collectives/ring_broadcast.h"
#include "collectives/ring_reduce.h"
#include "collectives/ring_reduce_scatter.h"

namespace chorus {
namespace {

// The primitives of algorithm_common.h on device memory, for one rank whose
// next and previous rank is itself. Threads of the block stride over the
// elements; each call ends with a block barrier, as a FIFO step would.
template <typename Func>
struct LoopbackPrims {
  using T = typename Func::Elt;
  const T* input;
  T* output;
  T* staging;  // the "connection": one chunk in flight
  Func func;

  __device__ ncclResult_t send(size_t src, size_t n) {
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) staging[i] = func.pre(input[src + i]);
    __syncthreads();
    return ncclSuccess;
  }
  __device__ ncclResult_t recv(size_t dst, size_t n) {
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) output[dst + i] = staging[i];
    __syncthreads();
    return ncclSuccess;
  }
  __device__ ncclResult_t recvReduceSend(size_t src, size_t n) {
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
      staging[i] = func(staging[i], func.pre(input[src + i]));
    __syncthreads();
    return ncclSuccess;
  }
  __device__ ncclResult_t recvReduceCopy(size_t src, size_t dst, size_t n) {
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
      output[dst + i] = func.post(func(staging[i], func.pre(input[src + i])));
    __syncthreads();
    return ncclSuccess;
  }
  __device__ ncclResult_t recvReduceCopySend(size_t src, size_t dst, size_t n) {
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
      staging[i] = output[dst + i] = func.post(func(staging[i], func.pre(input[src + i])));
    __syncthreads();
    return ncclSuccess;
  }
  __device__ ncclResult_t recvCopySend(size_t dst, size_t n) { return recv(dst, n); }
  __device__ ncclResult_t copySend(size_t src, size_t dst, size_t n) {
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) staging[i] = output[dst + i] = input[src + i];
    __syncthreads();
    return ncclSuccess;
  }
  __device__ ncclResult_t copy(size_t src, size_t dst, size_t n) {
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
      output[dst + i] = func.post(func.pre(input[src + i]));
    __syncthreads();
    return ncclSuccess;
  }
};

template <typename Func>
__global__ void ringAlgorithmsKernel(const typename Func::Elt* input, typename Func::Elt* output,
                                     typename Func::Elt* staging, size_t count, RedOpArgs args) {
  LoopbackPrims<Func> prims{input, output, staging, Func(args)};
  const ChannelSlice slice = channelSlice(count, gridDim.x, blockIdx.x, 1);
  ringAllReduce(prims, 0, 1, slice, 1024);
  ringAllGather(prims, 0, 1, slice, count, 1024);
  ringReduceScatter(prims, 0, 1, slice, count, 1024);
  ringBroadcast(prims, 0, 1, 0, slice, 1024);
  ringReduce(prims, 0, 1, 0, slice, 1024);
}

// Few instantiations keep the build fast; together they cover the storage
// types with special arithmetic and every kind of functor.
template __global__ void ringAlgorithmsKernel<FuncSum<float>>(const float*, float*, float*, size_t, RedOpArgs);
template __global__ void ringAlgorithmsKernel<FuncSum<Half>>(const Half*, Half*, Half*, size_t, RedOpArgs);
template __global__ void ringAlgorithmsKernel<FuncMax<Bf16>>(const Bf16*, Bf16*, Bf16*, size_t, RedOpArgs);
template __global__ void ringAlgorithmsKernel<FuncPreMulSum<Fp8E4M3>>(const Fp8E4M3*, Fp8E4M3*, Fp8E4M3*, size_t, RedOpArgs);
template __global__ void ringAlgorithmsKernel<FuncSumPostDiv<int64_t>>(const int64_t*, int64_t*, int64_t*, size_t, RedOpArgs);

}  // namespace
}  // namespace chorus
