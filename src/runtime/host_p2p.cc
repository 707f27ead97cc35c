#include "runtime/host_p2p.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <thread>

#include "collectives/datatypes.h"
#include "common/deadline.h"
#include "common/result.h"
#include "runtime/comm.h"
#include "runtime/connect.h"

namespace chorus {
namespace {

struct Transfer {
  const Op* op;
  size_t bytes;
  size_t done = 0;
};

// Copies between Send and Recv ops that name this rank, in posted order.
ncclResult_t runSelfCopies(ncclComm* comm, const std::vector<const Op*>& sends,
                           const std::vector<const Op*>& recvs) {
  if (sends.size() != recvs.size())
    CHORUS_FAIL(ncclInvalidUsage, "rank %d posted %zu sends to itself but %zu receives from itself",
                comm->rank, sends.size(), recvs.size());
  for (size_t i = 0; i < sends.size(); ++i) {
    size_t sendBytes = sends[i]->count * elementSize(sends[i]->type);
    size_t recvBytes = recvs[i]->count * elementSize(recvs[i]->type);
    if (sendBytes != recvBytes)
      CHORUS_FAIL(ncclInvalidUsage, "rank %d sends %zu bytes to itself but receives %zu", comm->rank,
                  sendBytes, recvBytes);
    if (sendBytes && recvs[i]->recvbuff != sends[i]->sendbuff)
      memmove(recvs[i]->recvbuff, sends[i]->sendbuff, sendBytes);
  }
  return ncclSuccess;
}

ncclResult_t openMissingConnections(ncclComm* comm, const std::map<int, std::deque<Transfer>>& sends,
                                    const std::map<int, std::deque<Transfer>>& recvs) {
  std::vector<int> sendPeers, recvPeers;
  for (const auto& entry : sends)
    if (!comm->p2p[entry.first].send) sendPeers.push_back(entry.first);
  for (const auto& entry : recvs)
    if (!comm->p2p[entry.first].recv) recvPeers.push_back(entry.first);
  if (sendPeers.empty() && recvPeers.empty()) return ncclSuccess;
  std::vector<std::unique_ptr<SendConnection>> sendConns;
  std::vector<std::unique_ptr<RecvConnection>> recvConns;
  CHORUS_CHECK(connectPeers(comm, kP2pChannel, sendPeers, recvPeers, &sendConns, &recvConns));
  for (size_t i = 0; i < sendPeers.size(); ++i) comm->p2p[sendPeers[i]].send = std::move(sendConns[i]);
  for (size_t i = 0; i < recvPeers.size(); ++i) comm->p2p[recvPeers[i]].recv = std::move(recvConns[i]);
  return ncclSuccess;
}

// Moves what can move now on one peer's send queue; true if anything did.
ncclResult_t progressSends(ncclComm* comm, int peer, std::deque<Transfer>& queue, bool block,
                           bool* progressed) {
  FifoSender& fifo = comm->p2p[peer].send->fifo;
  while (!queue.empty()) {
    Transfer& t = queue.front();
    if (t.done == t.bytes) {
      queue.pop_front();
      continue;
    }
    char* slot;
    if (block) CHORUS_CHECK(fifo.acquire(&slot));
    else if (!fifo.tryAcquire(&slot)) return ncclSuccess;
    size_t piece = std::min(fifo.slotSize(), t.bytes - t.done);
    memcpy(slot, static_cast<const char*>(t.op->sendbuff) + t.done, piece);
    fifo.publish(static_cast<uint32_t>(piece));
    t.done += piece;
    *progressed = true;
    block = false;
  }
  return ncclSuccess;
}

ncclResult_t progressRecvs(ncclComm* comm, int peer, std::deque<Transfer>& queue, bool block,
                           bool* progressed) {
  FifoReceiver& fifo = comm->p2p[peer].recv->fifo;
  while (!queue.empty()) {
    Transfer& t = queue.front();
    if (t.done == t.bytes) {
      queue.pop_front();
      continue;
    }
    const char* data;
    uint32_t got;
    if (block) CHORUS_CHECK(fifo.wait(&data, &got));
    else if (!fifo.tryWait(&data, &got)) return ncclSuccess;
    size_t piece = std::min(fifo.slotSize(), t.bytes - t.done);
    if (got != piece)
      CHORUS_FAIL(ncclInvalidUsage,
                  "rank %d: a message from rank %d holds %u bytes where %zu were expected: do the "
                  "Send and the Recv have the same count and datatype?",
                  comm->rank, peer, got, piece);
    memcpy(static_cast<char*>(t.op->recvbuff) + t.done, data, piece);
    fifo.release();
    t.done += piece;
    *progressed = true;
    block = false;
  }
  return ncclSuccess;
}

// Whether a queue's peer may never move its transfers again (it failed,
// aborted or exited); with `failure`, the error a blocking wait would end in.
bool peerLost(ncclComm* comm, const std::map<int, std::deque<Transfer>>& sends,
              const std::map<int, std::deque<Transfer>>& recvs, ncclResult_t* failure) {
  for (const auto& [peer, queue] : sends) {
    const FifoSender& fifo = comm->p2p[peer].send->fifo;
    if (queue.empty() || !fifo.otherEndLost()) continue;
    if (failure != nullptr) *failure = fifo.otherEndFailure();
    return true;
  }
  for (const auto& [peer, queue] : recvs) {
    const FifoReceiver& fifo = comm->p2p[peer].recv->fifo;
    if (queue.empty() || !fifo.otherEndLost()) continue;
    if (failure != nullptr) *failure = fifo.otherEndFailure();
    return true;
  }
  return false;
}

size_t pending(const std::map<int, std::deque<Transfer>>& queues) {
  size_t n = 0;
  for (const auto& entry : queues)
    for (const Transfer& t : entry.second) n += t.done < t.bytes;
  return n;
}

}  // namespace

ncclResult_t runHostP2p(ncclComm* comm, const std::vector<Op>& ops) {
  std::vector<const Op*> selfSends, selfRecvs;
  std::map<int, std::deque<Transfer>> sends, recvs;
  for (const Op& op : ops) {
    size_t bytes = op.count * elementSize(op.type);
    if (op.peer == comm->rank) (op.kind == OpKind::Send ? selfSends : selfRecvs).push_back(&op);
    else if (bytes > 0) (op.kind == OpKind::Send ? sends : recvs)[op.peer].push_back(Transfer{&op, bytes});
  }
  CHORUS_CHECK(runSelfCopies(comm, selfSends, selfRecvs));
  CHORUS_CHECK(openMissingConnections(comm, sends, recvs));

  // Poll every queue; when nothing moves, back off (yield, then short sleeps)
  // unless a single transfer is left, which may sleep in its FIFO's own wait.
  // While backing off, every few rounds, the peers are looked at as a
  // blocking wait would (a peer that failed, aborted or exited): before a
  // pass, since a peer publishes all it sends before it fails, so a pass
  // after that finds everything that will ever come.
  constexpr int kPeerCheckRounds = 16;
  int idleRounds = 0;
  Deadline deadline = Deadline::after(comm->timeoutSeconds);
  for (;;) {
    const size_t left = pending(sends) + pending(recvs);
    if (left == 0) return ncclSuccess;
    const bool block = left == 1 && idleRounds > 0;
    const bool lost = idleRounds > 0 && idleRounds % kPeerCheckRounds == 0 &&
                      peerLost(comm, sends, recvs, nullptr);
    bool progressed = false;
    for (auto& [peer, queue] : sends) CHORUS_CHECK(progressSends(comm, peer, queue, block, &progressed));
    for (auto& [peer, queue] : recvs) CHORUS_CHECK(progressRecvs(comm, peer, queue, block, &progressed));
    if (progressed) {
      idleRounds = 0;
      deadline = Deadline::after(comm->timeoutSeconds);
      continue;
    }
    ncclResult_t failure;
    if (lost && peerLost(comm, sends, recvs, &failure)) return failure;
    ++idleRounds;
    if (comm->abortFlag.load(std::memory_order_relaxed))
      CHORUS_FAIL(ncclSystemError, "rank %d: point-to-point operations aborted", comm->rank);
    if (deadline.expired())
      CHORUS_FAIL(ncclSystemError, "rank %d: %zu point-to-point transfers made no progress in %.0f s "
                  "(CHORUS_TIMEOUT)", comm->rank, left, comm->timeoutSeconds);
    if (idleRounds < 64) sched_yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(std::min(idleRounds, 1000)));
  }
}

}  // namespace chorus
