#include "runtime/device_direct.h"

#include "common/settings.h"

namespace chorus {

bool deviceP2pEnabled() { return settingInt("NCCL_P2P_DISABLE") == 0; }

}  // namespace chorus

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime.h>
#include <unistd.h>

#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"
#include "runtime/comm.h"
#include "runtime/cuda_check.h"
#include "runtime/device.h"

namespace chorus {
namespace {

// What each rank tells the others about its staging areas.
struct StagingInfo {
  cudaIpcMemHandle_t handle;
  uint64_t pointer;  // in its own address space
};

// Lets `device` (current) read and write `peerDevice`'s memory.
ncclResult_t enablePeerAccess(int device, int peerDevice, int rank) {
  if (peerDevice == device) return ncclSuccess;
  int possible = 0;
  CHORUS_CHECK(cudaCheck(cudaDeviceCanAccessPeer(&possible, device, peerDevice),
                         "cudaDeviceCanAccessPeer", rank));
  if (!possible)
    CHORUS_FAIL(ncclInvalidUsage,
                "rank %d: CUDA device %d cannot access device %d directly; set "
                "NCCL_P2P_DISABLE=1 to exchange data through host memory",
                rank, device, peerDevice);
  const cudaError_t err = cudaDeviceEnablePeerAccess(peerDevice, 0);
  if (err == cudaErrorPeerAccessAlreadyEnabled) {
    cudaGetLastError();  // not an error here; clear it
    return ncclSuccess;
  }
  return cudaCheck(err, "cudaDeviceEnablePeerAccess", rank);
}

// Maps every rank's device staging areas into this process.
ncclResult_t mapPeerStaging(ncclComm* comm, DeviceStaging* staging, size_t areaBytes,
                            std::vector<char*>* areas) {
  std::vector<char*> bases;
  CHORUS_CHECK(mapPeerAllocations(comm, staging->own, &bases, &staging->opened));
  for (int r = 0; r < comm->nranks; ++r)
    for (int parity = 0; parity < kArenaParities; ++parity)
      (*areas)[r * kArenaParities + parity] = bases[r] + parity * areaBytes;
  return ncclSuccess;
}

// The arena's staging, registered with CUDA: device views of every rank's areas.
ncclResult_t registerArenaStaging(ncclComm* comm, DeviceStaging* staging,
                                  std::vector<char*>* areas) {
  NodeArena& arena = *comm->arena;
  const size_t bytes = arena.stageBytes() * kArenaParities * static_cast<size_t>(comm->nranks);
  char* first = arena.staging(0, 0);
  CHORUS_CHECK(cudaCheck(cudaHostRegister(first, bytes,
                                          cudaHostRegisterMapped | cudaHostRegisterPortable),
                         "cudaHostRegister of the shared staging areas", comm->rank));
  staging->registered = first;
  void* deviceView = nullptr;
  CHORUS_CHECK(cudaCheck(cudaHostGetDevicePointer(&deviceView, first, 0),
                         "cudaHostGetDevicePointer of the shared staging areas", comm->rank));
  for (int r = 0; r < comm->nranks; ++r)
    for (int parity = 0; parity < kArenaParities; ++parity)
      (*areas)[r * kArenaParities + parity] =
          static_cast<char*>(deviceView) + (arena.staging(r, parity) - first);
  return ncclSuccess;
}

}  // namespace

ncclResult_t mapPeerAllocations(ncclComm* comm, void* own, std::vector<char*>* bases,
                                std::vector<void*>* opened) {
  const int rank = comm->rank;
  std::vector<StagingInfo> infos(comm->nranks);
  StagingInfo& mine = infos[rank];
  CHORUS_CHECK(cudaCheck(cudaIpcGetMemHandle(&mine.handle, own), "cudaIpcGetMemHandle", rank));
  mine.pointer = reinterpret_cast<uint64_t>(own);
  CHORUS_CHECK(comm->bootstrap->allGather(infos.data(), sizeof(StagingInfo)));
  bases->assign(comm->nranks, nullptr);
  for (int r = 0; r < comm->nranks; ++r) {
    const StagingInfo& peer = infos[r];
    if (sameProcess(comm->peers[r], comm->peers[rank])) {
      // This process (ranks on threads): one address space, and CUDA does
      // not open a handle in the process that made it; the pointer is good
      // as it is once this device may reach the peer's.
      CHORUS_CHECK(enablePeerAccess(comm->cudaDev, comm->peers[r].cudaDev, rank));
      (*bases)[r] = reinterpret_cast<char*>(peer.pointer);
    } else {
      void* mapped = nullptr;
      CHORUS_CHECK(cudaCheck(cudaIpcOpenMemHandle(&mapped, peer.handle,
                                                  cudaIpcMemLazyEnablePeerAccess),
                             "cudaIpcOpenMemHandle of a peer's GPU memory", rank));
      opened->push_back(mapped);
      (*bases)[r] = static_cast<char*>(mapped);
    }
  }
  return ncclSuccess;
}

void releasePeerAllocations(void* own, const std::vector<void*>& opened,
                            const AllocationRelease& release, const char* what) {
  // Errors are ignored: this runs while a communicator is torn down, maybe
  // after a failure, and nothing is left to report them to.
  for (void* mapped : opened) cudaIpcCloseMemHandle(mapped);
  release.closedPeers();
  if (own == nullptr) return;
  if (release.peersClosed(AllocationRelease::kWaitSeconds))
    cudaFree(own);
  else
    WARN("rank %d: a peer in another process has not said it closed %s after %.0f s (is it "
         "stuck, still running operations, or not yet destroying its communicator?): the memory "
         "is kept, not freed", release.rank(), what, AllocationRelease::kWaitSeconds);
}

DeviceStaging::~DeviceStaging() {
  if (device < 0) return;
  DeviceGuard onDevice(device);
  releasePeerAllocations(own, opened, release, "this rank's device staging areas");
  if (registered != nullptr) cudaHostUnregister(registered);
  if (scratch != nullptr) cudaFree(scratch);
  cudaGetLastError();
}

ncclResult_t setupDeviceDirect(ncclComm* comm, size_t stageBytes, bool p2p, bool lendRegistered) {
  auto staging = std::make_unique<DeviceStaging>();
  staging->device = comm->cudaDev;
  staging->release = AllocationRelease::of(comm, SharedAllocation::DirectStaging);
  const int rank = comm->rank;
  DirectState& state = comm->direct;
  std::vector<char*> areas(static_cast<size_t>(comm->nranks) * kArenaParities);
  if (p2p) {
    CHORUS_CHECK(cudaCheck(cudaMalloc(&staging->own, stageBytes * kArenaParities),
                           "cudaMalloc of the staging areas", rank));
    CHORUS_CHECK(mapPeerStaging(comm, staging.get(), stageBytes, &areas));
  } else {
    CHORUS_CHECK(registerArenaStaging(comm, staging.get(), &areas));
  }
  CHORUS_CHECK(cudaCheck(cudaMalloc(&staging->scratch, stageBytes),
                         "cudaMalloc of the reduction accumulator", rank));
  state.deviceStaging = std::move(areas);
  state.stageBytes = stageBytes;
  // A kernel launch and a stream synchronisation per round: rounds as large
  // as the staging area.
  state.roundBytes = stageBytes;
  state.oneWayRoundBytes = stageBytes;
  state.roundReadBytes = 0;  // device copies go through no CPU cache
  state.scratch = static_cast<char*>(staging->scratch);
  state.chunkBytes = stageBytes;
  comm->deviceStaging = std::move(staging);
  if (lendRegistered) {
    comm->lentRegistrations =
        std::make_unique<LentRegistrations>(comm, cudaIpcMemory(comm->cudaDev, rank));
    state.registered = comm->lentRegistrations.get();
    state.lendStagedBytes = state.lendStagedOneWayBytes = 0;
  }
  INFO(kLogInit, "rank %d: device staging %zu bytes x %d in %s", rank, stageBytes, kArenaParities,
       p2p ? "GPU memory (CUDA IPC between processes)" : "pinned shared host memory");
  return ncclSuccess;
}

}  // namespace chorus

#else  // !CHORUS_HAVE_CUDA: no device communicator exists, nothing is ever allocated

namespace chorus {

DeviceStaging::~DeviceStaging() = default;

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
