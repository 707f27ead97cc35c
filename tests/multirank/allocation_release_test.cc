// AllocationRelease (runtime/allocation_release.h): an owner frees memory its
// peers reach only once each has said, in the node arena, that it no longer
// maps it; it does not wait for a peer whose process is gone, and gives up
// (keeps the memory) when a live peer never says so. Ranks as processes
// over a host communicator's real arena.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "harness/ranks.h"
#include "runtime/allocation_release.h"
#include "runtime/comm.h"

using namespace chorus::test;
using chorus::AllocationRelease;
using chorus::SharedAllocation;

namespace {

using Clock = std::chrono::steady_clock;

ncclComm_t initWithArena(RankContext& ctx) {
  ncclComm_t comm = initRankComm(ctx);
  if (comm == nullptr) return nullptr;
  if (!ctx.check(comm->arena != nullptr, "no node arena")) {
    ncclCommDestroy(comm);
    return nullptr;
  }
  return comm;
}

// Every rank but the last closes at once; the last closes 200 ms later.
// Each wait ends, and only once the last rank has closed. Processes: ranks
// of one process are not waited for.
TEST(AllocationRelease, OwnersWaitUntilEveryPeerHasClosed) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  for (int n : {2, 3}) {
    SCOPED_TRACE(std::to_string(n) + " ranks");
    auto failures = runRankProcesses(n, [](RankContext& ctx) {
      ncclComm_t comm = initWithArena(ctx);
      if (comm == nullptr) return;
      const AllocationRelease release = AllocationRelease::of(comm, SharedAllocation::DirectStaging);
      barrier(ctx, comm);
      const int last = ctx.nranks - 1;
      if (ctx.rank == last) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      release.closedPeers();
      ctx.check(release.peersClosed(10), "a wait for peers that all closed gave up");
      const uint32_t lastBits =
          __atomic_load_n(&comm->arena->slot(last).closedAllocations, __ATOMIC_ACQUIRE);
      ctx.check((lastBits & 1u) != 0, "a wait ended before the last peer had closed");
      // The other kind is a separate bit: no one has closed it.
      const AllocationRelease fifos = AllocationRelease::of(comm, SharedAllocation::RingFifos);
      ctx.check(!fifos.peersClosed(0.05), "closing one kind closed the other too");
      barrier(ctx, comm);
      ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
    });
    EXPECT_TRUE(failures.empty()) << joinFailures(failures);
  }
}

// A live peer that never closes: the owner gives up after its bound and
// must keep the memory. Not waited for: a peer whose process is gone, and a
// rank of the owner's own process.
TEST(AllocationRelease, GivesUpOnASilentPeerAndSkipsGoneAndSameProcessOnes) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    ncclComm_t comm = initWithArena(ctx);
    if (comm == nullptr) return;
    if (ctx.rank == 0) {
      const AllocationRelease release = AllocationRelease::of(comm, SharedAllocation::RingFifos);
      const auto began = Clock::now();
      ctx.check(!release.peersClosed(0.2), "a peer that never closed was taken as closed");
      const double waited = std::chrono::duration<double>(Clock::now() - began).count();
      ctx.check(waited >= 0.2 && waited < 5, "gave up after " + std::to_string(waited) + " s, not 0.2");
      const pid_t self = getpid();
      const AllocationRelease gone(comm->arena.get(), 0, {self, 0x3ffffff0}, SharedAllocation::RingFifos);
      ctx.check(gone.peersClosed(5), "waited for a peer whose process is gone");
      const AllocationRelease sibling(comm->arena.get(), 0, {0, 0}, SharedAllocation::RingFifos);
      const auto siblingBegan = Clock::now();
      ctx.check(sibling.peersClosed(5) && Clock::now() - siblingBegan < std::chrono::seconds(1),
                "waited for a rank of its own process");
    }
    barrier(ctx, comm);
    ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
