#if defined(CHORUS_HAVE_CUDA)
#include "runtime/device_ring_launch.h"

#include <cuda_runtime.h>

#include <chrono>
#include <thread>

#include "common/deadline.h"
#include "common/log.h"
#include "common/result.h"
#include "runtime/comm.h"
#include "runtime/cuda_check.h"
#include "runtime/device_direct.h"

namespace chorus {

ncclResult_t RingLauncher::create(ncclComm* comm, const RingControlWords& control,
                                  std::unique_ptr<RingLauncher>* out) {
  out->reset();
  // The FIFOs live in GPU memory the ranks map: one host, p2p allowed.
  if (comm->arena == nullptr || !deviceP2pEnabled()) return ncclSuccess;
  std::unique_ptr<RingLauncher> launcher(new RingLauncher(comm, control));
  CHORUS_CHECK(DeviceRing::create(comm, DeviceRing::channelsFromSettings(), &launcher->ring_));
  if (launcher->ring_ == nullptr) return ncclSuccess;
  CHORUS_CHECK(cudaCheck(cudaStreamCreateWithFlags(&launcher->stream_, cudaStreamNonBlocking),
                         "cudaStreamCreateWithFlags", comm->rank));
  CHORUS_CHECK(cudaCheck(cudaEventCreateWithFlags(&launcher->forkEvent_, cudaEventDisableTiming),
                         "cudaEventCreateWithFlags", comm->rank));
  CHORUS_CHECK(cudaCheck(cudaEventCreateWithFlags(&launcher->joinEvent_, cudaEventDisableTiming),
                         "cudaEventCreateWithFlags", comm->rank));
  *out = std::move(launcher);
  return ncclSuccess;
}

RingLauncher::~RingLauncher() {
  if (!drained_) {
    // A ring kernel that never ran may still read the FIFOs: leave them
    // behind (cudaFree could also wait for it forever).
    WARN("rank %d: ring kernels still pending at destroy; their memory is not reused",
         comm_->rank);
    ring_.release();
  }
  if (joinEvent_ != nullptr) cudaEventDestroy(joinEvent_);
  if (forkEvent_ != nullptr) cudaEventDestroy(forkEvent_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  for (cudaStream_t stream : captureStreams_) cudaStreamDestroy(stream);
}

// A group opens every communicator's batch before it holds any, so the ring
// kernels of ranks that share a stream are all launched before that stream
// waits for one.
ncclResult_t RingLauncher::ready() const {
  const ncclResult_t failed = failure();
  if (failed != ncclSuccess)
    CHORUS_FAIL(failed, "rank %d: an earlier ring kernel of this communicator failed (%s): did "
                "every rank call the same collectives with the same counts?",
                comm_->rank, ncclGetErrorString(failed));
  return ncclSuccess;
}

ncclResult_t RingLauncher::launch(const std::vector<Op>& ops, cudaStream_t first) {
  cudaStream_t launchStream = stream_;
  CHORUS_CHECK(streamFor(first, &launchStream));
  CHORUS_CHECK(cudaCheck(cudaEventRecord(forkEvent_, first), "cudaEventRecord", comm_->rank));
  CHORUS_CHECK(cudaCheck(cudaStreamWaitEvent(launchStream, forkEvent_, 0), "cudaStreamWaitEvent",
                         comm_->rank));
  CHORUS_CHECK(ring_->launch(ops, launchStream, control_.abortDevice, control_.statusDevice));
  return cudaCheck(cudaEventRecord(joinEvent_, launchStream), "cudaEventRecord", comm_->rank);
}

ncclResult_t RingLauncher::join(cudaStream_t first) {
  return cudaCheck(cudaStreamWaitEvent(first, joinEvent_, 0), "cudaStreamWaitEvent", comm_->rank);
}

// Replays of a captured graph are not ordered against eager launches: as
// with NCCL, the caller orders them (the FIFO counters are shared, so a
// replay and an eager launch must not overlap).
ncclResult_t RingLauncher::streamFor(cudaStream_t first, cudaStream_t* out) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CHORUS_CHECK(cudaCheck(cudaStreamIsCapturing(first, &capture), "cudaStreamIsCapturing",
                         comm_->rank));
  if (capture == cudaStreamCaptureStatusNone) {
    *out = stream_;
    return ncclSuccess;
  }
  for (cudaStream_t stream : captureStreams_) {
    cudaStreamCaptureStatus held = cudaStreamCaptureStatusNone;
    CHORUS_CHECK(cudaCheck(cudaStreamIsCapturing(stream, &held), "cudaStreamIsCapturing",
                           comm_->rank));
    if (held == cudaStreamCaptureStatusNone) {
      *out = stream;
      return ncclSuccess;
    }
  }
  cudaStream_t stream = nullptr;
  CHORUS_CHECK(cudaCheck(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                         "cudaStreamCreateWithFlags", comm_->rank));
  captureStreams_.push_back(stream);
  *out = stream;
  return ncclSuccess;
}

ncclResult_t RingLauncher::drain() {
  Deadline deadline = Deadline::after(comm_->timeoutSeconds);
  for (;;) {
    const cudaError_t state = cudaStreamQuery(stream_);
    if (state == cudaSuccess) break;
    if (state != cudaErrorNotReady) return cudaCheck(state, "the ring kernel", comm_->rank);
    if (comm_->abortFlag.load(std::memory_order_relaxed))
      __atomic_store_n(control_.abort, 1u, __ATOMIC_RELEASE);
    if (deadline.expired()) {
      __atomic_store_n(control_.abort, 1u, __ATOMIC_RELEASE);
      drained_ = false;
      CHORUS_FAIL(ncclSystemError, "rank %d: ring kernels still unfinished after %.0f s at "
                  "destroy (were their streams blocked?)", comm_->rank, comm_->timeoutSeconds);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const ncclResult_t failed = failure();
  if (failed != ncclSuccess)
    CHORUS_FAIL(failed, "rank %d: a ring kernel failed (%s)", comm_->rank,
                ncclGetErrorString(failed));
  return ncclSuccess;
}

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
