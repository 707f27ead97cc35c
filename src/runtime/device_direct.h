// Device buffers on the direct algorithms (collectives/direct_primitives.h):
// where each rank's staging areas live and how its peers reach them.
//
//   p2p (default)       each rank allocates its two staging areas in its own
//                       GPU's memory; peers in other processes map them
//                       through CUDA IPC (several ranks on one GPU too);
//                       ranks of this process use the pointers as they are.
//   NCCL_P2P_DISABLE=1  the staging areas are the node arena's (shared host
//                       memory), registered with CUDA so kernels and copies
//                       reach them directly.
// Either way the proxy thread reduces and copies with CudaMover, and the
// ranks meet in the node arena as host ranks do. Built only with CUDA.
#pragma once

#include <cstddef>
#include <vector>

#include "nccl.h"
#include "runtime/allocation_release.h"

struct ncclComm;

namespace chorus {

// What a device communicator allocated, mapped or registered for the direct
// algorithms; released (on its device) by the destructor.
struct DeviceStaging {
  int device = -1;
  void* own = nullptr;                // this rank's staging areas (p2p)
  std::vector<void*> opened;          // peers' staging areas mapped through CUDA IPC
  void* registered = nullptr;         // the arena's staging, registered with CUDA
  void* scratch = nullptr;            // the reduction accumulator, in GPU memory
  AllocationRelease release;          // when `own` may be freed
  DeviceStaging() = default;
  DeviceStaging(const DeviceStaging&) = delete;
  DeviceStaging& operator=(const DeviceStaging&) = delete;
  ~DeviceStaging();
};

// Whether device communicators may map each other's GPU memory.
bool deviceP2pEnabled();

// Collective over the communicator: every rank's `own` (its cudaMalloc'ed
// memory) as this process reaches it, mapped through CUDA IPC from other
// processes (recorded in `opened`, for cudaIpcCloseMemHandle) or used as it
// is within this process (with peer access enabled across devices).
ncclResult_t mapPeerAllocations(ncclComm* comm, void* own, std::vector<char*>* bases,
                                std::vector<void*>* opened);

// Teardown of memory made by cudaMalloc and reached by peers (`own`) and of
// the peers' memory this rank mapped (`opened`), on the current device:
// closes `opened`, says so, and frees `own` once every peer has said so too
// (else keeps it, with a warning: freeing it then is undefined for them).
void releasePeerAllocations(void* own, const std::vector<void*>& opened,
                            const AllocationRelease& release, const char* what);

// Collective over the communicator: fills comm->direct's staging pointers,
// scratch and round size for device buffers. The node arena is open (with
// `stageBytes` of staging per rank and parity when p2p is off); with
// `lendRegistered` (p2p only) registered buffers are lent to peers.
ncclResult_t setupDeviceDirect(ncclComm* comm, size_t stageBytes, bool p2p, bool lendRegistered);

}  // namespace chorus
