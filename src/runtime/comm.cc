#include "runtime/comm.h"

#include <chrono>
#include <thread>

#include "common/deadline.h"
#include "common/result.h"

namespace chorus {

ncclResult_t checkComm(const ncclComm* comm, const char* caller) {
  if (comm == nullptr) CHORUS_FAIL(ncclInvalidArgument, "%s: comm is NULL", caller);
  if (comm->alive != ncclComm::kAlive)
    CHORUS_FAIL(ncclInvalidArgument, "%s: comm %p is not a live communicator (destroyed?)", caller,
                static_cast<const void*>(comm));
  return ncclSuccess;
}

ncclResult_t commState(const ncclComm* comm) {
  ncclResult_t error = comm->asyncResult.load(std::memory_order_acquire);
  if (error != ncclSuccess) return error;
  if (comm->deviceQueue) {
    error = comm->deviceQueue->kernelFailure();
    if (error != ncclSuccess) return error;
  }
  return comm->pendingJobs.load(std::memory_order_acquire) > 0 ? ncclInProgress : ncclSuccess;
}

namespace {

// An operation completes for a sender once its data is in the FIFO; a proxy
// may still be streaming the last slots to a peer on another host. Before
// the transports go, wait (bounded) until every receiver has taken its data.
void drainSends(ncclComm* comm) {
  if (comm->asyncResult.load() != ncclSuccess) return;  // a failed peer may never take it
  std::vector<const FifoSender*> sends;
  for (const Channel& channel : comm->channels)
    if (channel.toNext) sends.push_back(&channel.toNext->fifo);
  for (const PeerConnections& peer : comm->p2p)
    if (peer.send) sends.push_back(&peer.send->fifo);
  Deadline deadline = Deadline::after(comm->timeoutSeconds);
  for (const FifoSender* fifo : sends)
    while (!fifo->drained() && !deadline.expired() && !comm->abortFlag.load())
      std::this_thread::sleep_for(std::chrono::microseconds(200));
}

}  // namespace

void freeComm(ncclComm* comm) {
  comm->background.finish();
  if (comm->deviceQueue) comm->deviceQueue->shutdown();  // streams' operations first
  drainSends(comm);
  comm->alive = 0;
  delete comm;
}

bool everyRankWithUs(const ncclComm* comm, bool process) {
  const PeerInfo& self = comm->peers[comm->rank];
  for (const PeerInfo& peer : comm->peers)
    if (peer.hostHash != self.hostHash || (process && !sameProcess(peer, self))) return false;
  return true;
}

}  // namespace chorus
