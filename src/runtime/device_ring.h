// The ring kernel's connections for a device communicator (device/ring_kernel.h):
// each rank keeps, per channel, the FIFO from its previous rank (slots,
// sizes, tail) and the head of its FIFO to the next rank in its own GPU
// memory, and maps its neighbours' through CUDA IPC (within one process the
// pointers are used as they are). Collectives then run as one kernel launch
// on the caller's stream with no proxy thread: chosen with
// CHORUS_DEVICE_RING for communicators of one host with p2p on.
// Built only with CUDA.
#pragma once

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "device/ring_kernel.h"
#include "nccl.h"
#include "runtime/allocation_release.h"
#include "runtime/op.h"
#include "runtime/protocol_setting.h"

struct ncclComm;

namespace chorus {

class DeviceRing {
 public:
  // Channels CHORUS_DEVICE_RING asks for (0: the ring kernel is not used).
  static int channelsFromSettings();
  // Collective over the communicator (every rank calls it, whatever its
  // setting): checks that the ranks agree, then allocates and maps the FIFOs
  // of `nChannels` channels with NCCL_BUFFSIZE bytes each. `out` stays null
  // for 0 channels.
  static ncclResult_t create(ncclComm* comm, int nChannels, std::unique_ptr<DeviceRing>* out);
  ~DeviceRing();
  DeviceRing(const DeviceRing&) = delete;
  DeviceRing& operator=(const DeviceRing&) = delete;

  // Whether the ring kernel runs every op of a batch (collectives only).
  static bool takes(const std::vector<Op>& ops);
  // Enqueues the collectives on `stream`: one launch per run of up to
  // kRingKernelMaxWorks collectives of the same shape.
  // `abortFlag` and `status` are device views (see RingKernelArgs).
  ncclResult_t launch(const std::vector<Op>& ops, cudaStream_t stream,
                      const uint32_t* abortFlag, uint32_t* status) const;

 private:
  DeviceRing() = default;

  int device_ = -1;
  int rank_ = 0;
  int nranks_ = 1;
  int nChannels_ = 0;
  ProtocolChoice protocols_;  // NCCL_PROTO, the same on every rank
  void* own_ = nullptr;         // this rank's FIFO memory (cudaMalloc)
  std::vector<void*> opened_;   // neighbours' memory mapped through CUDA IPC
  AllocationRelease release_;   // when own_ may be freed
  RingLinks links_[kRingKernelMaxChannels] = {};
};

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
