// The ring kernel's part of a device communicator's queue (device_queue.h).
// A batch the ring kernel takes (device_ring.h) is launched on a stream of
// the communicator's own, forked from the caller's stream and joined back:
// ranks of one process that share a stream in a group then run at once, and
// the communicator's launches run one after the other. No proxy thread takes
// part. Under graph capture each capture forks to a stream that no capture
// holds (a fork joins the stream to the capture until it ends).
// Built only with CUDA.
#pragma once

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "nccl.h"
#include "runtime/device_ring.h"
#include "runtime/op.h"

struct ncclComm;

namespace chorus {

// Words of mapped pinned memory that the ring kernels share with the host,
// each with its host and device view.
struct RingControlWords {
  uint32_t* status;  // the first ring kernel failure (an ncclResult_t), or 0
  uint32_t* statusDevice;
  uint32_t* abort;  // raised by abort, or by a drain that timed out
  uint32_t* abortDevice;
};

class RingLauncher {
 public:
  // Collective over the communicator (every rank calls it, whatever its
  // setting); `out` stays null when the ring kernel is not used
  // (CHORUS_DEVICE_RING=0, ranks on several hosts, NCCL_P2P_DISABLE).
  static ncclResult_t create(ncclComm* comm, const RingControlWords& control,
                             std::unique_ptr<RingLauncher>* out);
  ~RingLauncher();
  RingLauncher(const RingLauncher&) = delete;
  RingLauncher& operator=(const RingLauncher&) = delete;

  // Whether the ring kernel runs every op of a batch.
  static bool takes(const std::vector<Op>& ops) { return DeviceRing::takes(ops); }
  // Fails, with a message, once a ring kernel has failed: the FIFOs'
  // counters may then disagree, and nothing more is launched.
  ncclResult_t ready() const;
  // The fork from `first` (the batch's stream, which the batch's other
  // streams have joined: under capture, so that its capture status is the
  // batch's) and the launches.
  ncclResult_t launch(const std::vector<Op>& ops, cudaStream_t first);
  // The join: `first` goes on once the last launch is done.
  ncclResult_t join(cudaStream_t first);
  // Waits until the ring stream has run every launch (bounded by
  // CHORUS_TIMEOUT; abort makes the kernels leave), and reports a kernel's
  // failure.
  ncclResult_t drain();
  // False after a drain that timed out: kernels may still read the FIFOs
  // and the control words, which must then not be reused.
  bool drained() const { return drained_; }
  // The first failure a ring kernel reported, or ncclSuccess.
  ncclResult_t failure() const {
    return static_cast<ncclResult_t>(__atomic_load_n(control_.status, __ATOMIC_ACQUIRE));
  }

 private:
  RingLauncher(ncclComm* comm, const RingControlWords& control) : comm_(comm), control_(control) {}
  // The ring stream, or under capture a stream that no capture holds now.
  ncclResult_t streamFor(cudaStream_t first, cudaStream_t* out);

  ncclComm* comm_;
  RingControlWords control_;
  std::unique_ptr<DeviceRing> ring_;
  cudaStream_t stream_ = nullptr;
  std::vector<cudaStream_t> captureStreams_;  // kept for reuse
  cudaEvent_t forkEvent_ = nullptr;
  cudaEvent_t joinEvent_ = nullptr;
  bool drained_ = true;
};

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
