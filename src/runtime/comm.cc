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

// Publishes this rank's failure where its peers look: on this host in the
// arena of the direct algorithms (waking those asleep on this rank's
// phase), and on its connections, which it shuts down: a shared-memory
// FIFO carries the reason to its other end, a network connection closes
// (peers on other hosts see it end). A peer that waits for this rank
// elsewhere (a first point-to-point call's connection setup) looks at the
// arena, or learns of it at its deadline or when this process exits.
void publishFailure(ncclComm* comm, ncclResult_t result, const char* reason) {
  if (comm->arena) {
    ArenaRankSlot& mine = comm->arena->slot(comm->rank);
    if (publishPeerFailure(&mine.failure, result, reason))
      wakeSleepers(&mine.phase, &mine.sleepers);
  }
  const std::string local = "rank " + std::to_string(comm->rank) + ": " + reason;
  for (Channel& channel : comm->channels) {
    if (channel.toNext) channel.toNext->shutDown(result, reason, local.c_str());
    if (channel.fromPrev) channel.fromPrev->shutDown(result, reason, local.c_str());
  }
  for (PeerConnections& peer : comm->p2p) {
    if (peer.send) peer.send->shutDown(result, reason, local.c_str());
    if (peer.recv) peer.recv->shutDown(result, reason, local.c_str());
  }
}

}  // namespace

ncclResult_t recordCommFailure(ncclComm* comm, ncclResult_t result) {
  if (result == ncclSuccess || result == ncclInProgress) return result;
  std::lock_guard<std::mutex> lock(comm->failureMutex);
  if (comm->asyncResult.load(std::memory_order_acquire) != ncclSuccess) return result;
  comm->asyncErrorText = lastError();
  comm->asyncResult.store(result, std::memory_order_release);
  // A wait that an abort ended fails too: say what happened.
  if (comm->abortFlag.load(std::memory_order_acquire)) {
    announceAbort(comm);
    return result;
  }
  const std::string reason =
      std::string("its communicator failed (") + resultName(result) + "): " + comm->asyncErrorText;
  publishFailure(comm, result, reason.c_str());
  return result;
}

void announceAbort(ncclComm* comm) {
  publishFailure(comm, ncclSystemError, "its communicator was aborted (ncclCommAbort)");
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
    while (!fifo->drained() && !fifo->otherEndLost() && !deadline.expired() &&
           !comm->abortFlag.load())
      std::this_thread::sleep_for(std::chrono::microseconds(200));
}

}  // namespace

void freeComm(ncclComm* comm) {
  comm->background.finish();
  if (comm->abortFlag.load(std::memory_order_acquire)) announceAbort(comm);
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
