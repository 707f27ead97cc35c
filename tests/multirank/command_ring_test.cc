// The protocol between a device communicator's proxy and the worker kernel
// that holds the caller's stream (device/command_ring.h), on the CPU: host
// threads play the worker's blocks, running the same runWorker loop the
// kernel runs, each doing its share of every command, and the proxy side is
// the CommandMover of the device path. First the protocol alone (tickets,
// slot reuse, waiting workers, a ring that wraps many times, abort), then
// every direct collective with its copies and reductions going through it.
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "collectives/datatypes.h"
#include "collectives/reduce_copy.h"
#include "device/command_ring.h"
#include "harness/collective_check.h"
#include "harness/ranks.h"
#include "runtime/comm.h"
#include "runtime/command_mover.h"

using namespace chorus;
using namespace chorus::test;

namespace {

constexpr uint32_t kBlocks = 4;

// runWorker's Block with one host thread per block.
struct HostBlock {
  uint32_t index_;
  const std::atomic<uint32_t>* abortWord;
  std::atomic<uint32_t>* barrier;

  bool leader() const { return true; }
  uint32_t load(const uint32_t* word) const { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
  void acquire() const { std::atomic_thread_fence(std::memory_order_acquire); }
  void release() const { std::atomic_thread_fence(std::memory_order_release); }
  void sync() const {}
  template <typename T>
  void share(T*) const {}
  bool aborted() const { return abortWord->load() != 0; }
  void pause() const { sched_yield(); }
  uint32_t index() const { return index_; }
  uint32_t count() const { return kBlocks; }
  void gridArrive() const { barrier->fetch_add(1); }
  void gridWait(uint32_t target) const {
    while (!ringReached(barrier->load(), target) && !aborted()) pause();
  }
  void store(uint32_t* word, uint32_t value) const { __atomic_store_n(word, value, __ATOMIC_RELEASE); }
  // This block's contiguous share of the elements, as the grid splits them.
  void run(const RingCommand& c) const {
    const size_t size = elementSize(c.op.type);
    const size_t begin = c.count * index_ / kBlocks, end = c.count * (index_ + 1) / kBlocks;
    if (begin == end) return;
    auto at = [&](uint64_t base) { return reinterpret_cast<char*>(base) + begin * size; };
    reduceCopy(c.op, c.peer ? at(c.peer) : nullptr, at(c.local), (c.flags & kRingApplyPre) != 0,
               at(c.dst), (c.flags & kRingApplyPost) != 0, end - begin);
  }
};

// A ring in (zeroed) host memory, and the worker threads of running tickets.
class EmulatedWorkers {
 public:
  EmulatedWorkers() : ring_(new RingState()) {}
  // Workers still waiting (a test that failed half-way) are told to leave.
  ~EmulatedWorkers() {
    abort();
    joinAll();
  }
  RingState* ring() { return ring_.get(); }
  // Starts a worker (kBlocks threads) for the ticket in `slot` with `target`.
  void launch(uint32_t slot, uint32_t target) {
    for (uint32_t b = 0; b < kBlocks; ++b)
      threads_.emplace_back([this, slot, target, b] {
        HostBlock block{b, &abort_, &barrier_};
        runWorker(block, ring_.get(), slot, target);
      });
  }
  void joinAll() {
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }
  void abort() { abort_.store(1); }

 private:
  std::unique_ptr<RingState> ring_;
  std::atomic<uint32_t> abort_{0};
  std::atomic<uint32_t> barrier_{0};
  std::vector<std::thread> threads_;
};

TEST(CommandRing, TicketsRunTheirCommandsInOrderThroughAWrappingRing) {
  EmulatedWorkers workers;
  CommandMover mover(workers.ring(), kBlocks, nullptr, 60, 0);
  // Two workers wait at once; each runs only its own ticket's commands.
  workers.launch(5, 1);
  workers.launch(7, 1);
  std::vector<float> a(1001), b(1001), out(1001);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(i);
    b[i] = static_cast<float>(2 * i);
  }
  const RedOpArgs sum{RedOpKind::Sum, ncclFloat32, 0};
  mover.beginTicket(5, 1);
  // More commands than the ring holds, each depending on the previous one:
  // out = a + 600 * b after 600 accumulations.
  ASSERT_EQ(mover.copy(out.data(), a.data(), a.size() * sizeof(float)), ncclSuccess);
  for (int k = 0; k < 600; ++k)
    ASSERT_EQ(mover.reduceCopy(sum, out.data(), b.data(), true, out.data(), true, b.size()),
              ncclSuccess);
  ASSERT_EQ(mover.settle(), ncclSuccess);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], a[i] + 600 * b[i]) << "element " << i;
  ASSERT_EQ(mover.endTicket(), ncclSuccess);
  // The second ticket, and then slot 5 again with the next gate value.
  mover.beginTicket(7, 1);
  ASSERT_EQ(mover.reduceCopy(RedOpArgs{RedOpKind::Max, ncclFloat32, 0}, a.data(), b.data(), true,
                             out.data(), true, a.size()),
            ncclSuccess);
  ASSERT_EQ(mover.endTicket(), ncclSuccess);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], b[i]);
  workers.joinAll();  // both workers have left
  workers.launch(5, 2);
  mover.beginTicket(5, 2);
  ASSERT_EQ(mover.copy(out.data(), a.data(), 3 * sizeof(float)), ncclSuccess);
  ASSERT_EQ(mover.endTicket(), ncclSuccess);
  workers.joinAll();
  EXPECT_EQ(out[2], a[2]);
  EXPECT_EQ(out[3], b[3]);
}

TEST(CommandRing, AbortEndsAWorkerThatWaitsForItsTurnOrForCommands) {
  EmulatedWorkers workers;
  CommandMover mover(workers.ring(), kBlocks, nullptr, 60, 0);
  workers.launch(1, 1);  // never given its turn
  workers.launch(2, 1);  // given its turn, never given an Exit
  mover.beginTicket(2, 1);
  workers.abort();
  workers.joinAll();  // returns: every block saw the abort
  SUCCEED();
}

// Every direct collective, with a worker emulated for each operation.
void runThroughTheRing(RankContext& ctx) {
  ncclComm_t comm = nullptr;
  if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "ncclCommInitRank"))
    return;
  if (ctx.check(comm->arena != nullptr, "the direct algorithms are not on")) {
    EmulatedWorkers workers;
    CommandMover mover(workers.ring(), kBlocks, &comm->abortFlag, 60, ctx.rank);
    comm->direct.mover = &mover;
    uint32_t ticket = 0;
    std::vector<CollCase> cases;
    for (Coll coll : {Coll::AllReduce, Coll::Broadcast, Coll::Reduce, Coll::AllGather,
                      Coll::ReduceScatter})
      for (ncclDataType_t type : {ncclFloat32, ncclBfloat16, ncclInt8})
        for (size_t count : {size_t{1}, size_t{7}, size_t{4099}, size_t{(1u << 18) + 3}})
          for (bool inPlace : {false, true}) {
            const int op = isReduction(coll) && count == 7 ? static_cast<int>(ncclAvg) : ncclSum;
            cases.push_back(CollCase{coll, type, op, count, ctx.nranks - 1, inPlace});
          }
    for (const CollCase& c : cases) {
      // Tickets take three slots in turn, each with growing gate values.
      const uint32_t slot = ticket % 3, target = ticket / 3 + 1;
      ++ticket;
      workers.launch(slot, target);
      mover.beginTicket(slot, target);
      runAndCheck(ctx, comm, c);
      ctx.checkNccl(mover.endTicket(), "endTicket");
      workers.joinAll();
      if (!ctx.failures.empty()) break;
    }
    comm->direct.mover = &hostMover();
  }
  ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
}

TEST(CommandRing, EveryDirectCollectiveIsExactThroughTheRingOnProcesses) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv stage("CHORUS_STAGE_BYTES", "65536");
  RankOptions options;
  options.timeoutSeconds = 280;
  auto failures = runRankProcesses(3, runThroughTheRing, options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(CommandRing, EveryDirectCollectiveIsExactThroughTheRingOnThreads) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  RankOptions options;
  options.timeoutSeconds = 280;
  auto failures = runRankThreads(2, runThroughTheRing, options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
