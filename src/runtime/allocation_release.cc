#include "runtime/allocation_release.h"

#include <chrono>
#include <thread>

#include "common/deadline.h"
#include "runtime/comm.h"
#include "transport/fifo_host.h"
#include "transport/shm/node_arena.h"

namespace chorus {

AllocationRelease::AllocationRelease(NodeArena* arena, int rank, std::vector<pid_t> peerPids,
                                     SharedAllocation kind)
    : arena_(arena),
      rank_(rank),
      peerPids_(std::move(peerPids)),
      bit_(1u << static_cast<uint32_t>(kind)) {}

AllocationRelease AllocationRelease::of(ncclComm* comm, SharedAllocation kind) {
  std::vector<pid_t> pids;
  const PeerInfo& self = comm->peers[comm->rank];
  for (const PeerInfo& peer : comm->peers) {
    const pid_t probeable = probeablePid(peer, self);
    pids.push_back(sameProcess(peer, self) ? 0 : probeable != 0 ? probeable : kUnprobeablePid);
  }
  return AllocationRelease(comm->arena.get(), comm->rank, std::move(pids), kind);
}

void AllocationRelease::closedPeers() const {
  if (arena_ == nullptr) return;
  // Release: the closing calls (and the last reads) come before the bit.
  __atomic_fetch_or(&arena_->slot(rank_).closedAllocations, bit_, __ATOMIC_RELEASE);
}

bool AllocationRelease::peersClosed(double seconds) const {
  if (arena_ == nullptr) return true;
  const Deadline deadline = Deadline::after(seconds);
  for (int peer = 0; peer < static_cast<int>(peerPids_.size()); ++peer) {
    if (peer == rank_ || peerPids_[peer] == 0) continue;
    while ((__atomic_load_n(&arena_->slot(peer).closedAllocations, __ATOMIC_ACQUIRE) & bit_) == 0) {
      if (peerProcessGone(peerPids_[peer])) break;
      if (deadline.expired()) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
  return true;
}

}  // namespace chorus
