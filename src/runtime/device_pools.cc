#include "runtime/device_pools.h"

#if defined(CHORUS_HAVE_CUDA)
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "common/result.h"
#include "runtime/cuda_check.h"

namespace chorus {
namespace {

// Pinned blocks given back, by size: cudaHostAlloc and cudaFreeHost may
// wait for the whole device.
struct PinnedPool {
  std::mutex mutex;
  std::multimap<size_t, void*> blocks;
};

PinnedPool& pinnedPool() {
  static auto* pool = new PinnedPool;  // never destroyed: blocks outlive static destruction
  return *pool;
}

// Barrier counters per device, allocated in chunks and never freed
// (cudaFree would wait for the whole device).
struct BarrierPool {
  std::mutex mutex;
  std::map<int, std::vector<uint32_t*>> free;
};

BarrierPool& barrierPool() {
  static auto* pool = new BarrierPool;
  return *pool;
}

}  // namespace

// One stream per device, at the highest priority. Few streams keep the
// proxies' copies and reductions off the hardware queues of the callers'
// streams, where a held gate would stall them (see design.md);
// non-blocking, so they never wait for the legacy default stream.
ncclResult_t proxyStreamFor(int device, cudaStream_t* out) {
  static std::mutex mutex;
  static std::map<int, cudaStream_t> streams;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = streams.find(device);
  if (it == streams.end()) {
    int least = 0, greatest = 0;
    CHORUS_CHECK(cudaCheck(cudaDeviceGetStreamPriorityRange(&least, &greatest),
                           "cudaDeviceGetStreamPriorityRange"));
    cudaStream_t stream = nullptr;
    CHORUS_CHECK(cudaCheck(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, greatest),
                           "cudaStreamCreateWithPriority"));
    it = streams.emplace(device, stream).first;
  }
  *out = it->second;
  return ncclSuccess;
}

ncclResult_t takePinnedBytes(size_t bytes, void** out) {
  PinnedPool& pool = pinnedPool();
  std::lock_guard<std::mutex> lock(pool.mutex);
  void* block = nullptr;
  auto it = pool.blocks.find(bytes);
  if (it != pool.blocks.end()) {
    block = it->second;
    pool.blocks.erase(it);
  } else {
    CHORUS_CHECK(cudaCheck(cudaHostAlloc(&block, bytes, cudaHostAllocMapped | cudaHostAllocPortable),
                           "cudaHostAlloc of a device communicator's control memory"));
  }
  memset(block, 0, bytes);
  *out = block;
  return ncclSuccess;
}

void givePinnedBytes(size_t bytes, void* block) {
  if (block == nullptr) return;
  PinnedPool& pool = pinnedPool();
  std::lock_guard<std::mutex> lock(pool.mutex);
  pool.blocks.emplace(bytes, block);
}

ncclResult_t takeBarrier(int device, cudaStream_t stream, uint32_t** out) {
  constexpr size_t kChunk = 256;
  BarrierPool& pool = barrierPool();
  {
    std::lock_guard<std::mutex> lock(pool.mutex);
    std::vector<uint32_t*>& counters = pool.free[device];
    if (counters.empty()) {
      uint32_t* chunk = nullptr;
      CHORUS_CHECK(cudaCheck(cudaMalloc(&chunk, kChunk * sizeof(uint32_t)),
                             "cudaMalloc of worker barrier counters"));
      for (size_t i = 0; i < kChunk; ++i) counters.push_back(chunk + i);
    }
    *out = counters.back();
    counters.pop_back();
  }
  CHORUS_CHECK(cudaCheck(cudaMemsetAsync(*out, 0, sizeof(uint32_t), stream), "cudaMemsetAsync"));
  return cudaCheck(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

void giveBarrier(int device, uint32_t* counter) {
  if (counter == nullptr) return;
  BarrierPool& pool = barrierPool();
  std::lock_guard<std::mutex> lock(pool.mutex);
  pool.free[device].push_back(counter);
}

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
