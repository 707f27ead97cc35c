// The direct algorithms with copies and reductions that happen late, as on
// a CUDA stream: a test mover records them and carries them out only when
// the primitives settle it. Every collective is still exact only if the
// primitives settle before each meeting (so a peer never reads a staging
// area or a published block that is not yet written) and before an
// operation ends; this is the discipline device communicators rely on,
// checked here without a GPU. Through the kernel, whose copies happen at
// once, they also settle before each kernel copy that meets queued work.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "collectives/data_mover.h"
#include "collectives/reduce_copy.h"
#include "harness/collective_check.h"
#include "harness/ranks.h"
#include "runtime/comm.h"

using namespace chorus::test;

namespace {

class DeferredMover final : public chorus::DataMover {
 public:
  ncclResult_t copy(void* dst, const void* src, size_t bytes) override {
    pending_.push_back([=] { memcpy(dst, src, bytes); });
    return ncclSuccess;
  }
  ncclResult_t reduceCopy(const chorus::RedOpArgs& op, const void* peer, const void* local,
                          bool applyPre, void* dst, bool applyPost, size_t count) override {
    pending_.push_back(
        [=] { chorus::reduceCopy(op, peer, local, applyPre, dst, applyPost, count); });
    return ncclSuccess;
  }
  ncclResult_t settle() override {
    for (const auto& work : pending_) work();
    pending_.clear();
    return ncclSuccess;
  }
  bool synchronous() const override { return false; }

 private:
  std::vector<std::function<void()>> pending_;
};

const Coll kDirectColls[] = {Coll::AllReduce, Coll::Broadcast, Coll::Reduce, Coll::AllGather,
                             Coll::ReduceScatter};

std::vector<CollCase> cases(int nranks) {
  std::vector<CollCase> all;
  for (Coll coll : kDirectColls) {
    const std::vector<int> ops = isReduction(coll) ? std::vector<int>{ncclSum, ncclAvg, kPreMulSumTwo}
                                                   : std::vector<int>{ncclSum};
    for (ncclDataType_t type : {ncclFloat32, ncclInt8, ncclBfloat16})
      for (int op : ops)
        for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{1023}, size_t{4099}})
          for (bool inPlace : {false, true})
            for (int root : {0, nranks - 1})
              all.push_back(CollCase{coll, type, op, count, root, inPlace});
    all.push_back(CollCase{coll, ncclFloat32, ncclSum, (1u << 20) + 5, nranks - 1, false});
  }
  return all;
}

void runWithDeferredMover(RankContext& ctx, bool throughKernel) {
  ncclComm_t comm = nullptr;
  if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "ncclCommInitRank"))
    return;
  if (ctx.check(comm->arena != nullptr, "the direct algorithms are not on") &&
      ctx.check(!throughKernel || copiesEverySizeThroughTheKernel(comm->direct),
                "the communicator does not copy every size through the kernel")) {
    DeferredMover mover;
    comm->direct.mover = &mover;
    for (const CollCase& c : cases(ctx.nranks)) {
      runAndCheck(ctx, comm, c);
      if (ctx.failures.size() > 5) break;
    }
    comm->direct.mover = &chorus::hostMover();
  }
  ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
}

// Staged rounds between processes; a small staging area makes many rounds
// and reuses both staging areas often.
TEST(CollectivesDeferredMover, EveryDirectCollectiveIsExactOnProcesses) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv cma("CHORUS_CMA", "0");
  ScopedEnv stage("CHORUS_STAGE_BYTES", "4160");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "1024");
  RankOptions options;
  options.timeoutSeconds = 280;
  auto failures = runRankProcesses(4, [](RankContext& ctx) { runWithDeferredMover(ctx, false); }, options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Between processes through the kernel, whose copies happen at once: the
// primitives settle the mover before the kernel reads into a copy that a
// queued reduction may still read, and before it writes a reduced piece
// into a peer.
TEST(CollectivesDeferredMover, EveryDirectCollectiveIsExactThroughTheKernel) {
  std::string why;
  if (!crossMemoryAllowed(&why)) GTEST_SKIP() << "cross-memory attach is forbidden here: " << why;
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedKernelCopies kernelCopies;
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "0");
  auto failures = runRankProcesses(3, [](RankContext& ctx) { runWithDeferredMover(ctx, true); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Ranks of one process read each other's buffers in place.
TEST(CollectivesDeferredMover, EveryDirectCollectiveIsExactOnThreads) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(3, [](RankContext& ctx) { runWithDeferredMover(ctx, false); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Lends buffers as device communicators lend registered ones (see
// RegisteredBuffers), for ranks on threads of this process: a reference's
// offset is the buffer's address, which a peer uses as it is. `policy`
// says which of the rank's buffers it lends.
enum class Lend { Both, InputOnly, OutputOnly, None };

class AddressLender final : public chorus::RegisteredBuffers {
 public:
  explicit AddressLender(Lend policy) : policy_(policy) {}
  chorus::ArenaBufferRef find(const void* buffer, size_t) override {
    // The runtime asks for an operation's input, then for its output.
    const bool input = (finds_++ % 2) == 0;
    const bool lend = policy_ == Lend::Both || (input ? policy_ == Lend::InputOnly
                                                      : policy_ == Lend::OutputOnly);
    if (!lend || buffer == nullptr) return chorus::ArenaBufferRef{};
    return chorus::ArenaBufferRef{0, 1, reinterpret_cast<uint64_t>(buffer)};
  }
  ncclResult_t resolve(int, const chorus::ArenaBufferRef& ref, const char** start) override {
    ++resolved_;
    *start = reinterpret_cast<const char*>(ref.offset);
    return ncclSuccess;
  }
  size_t resolved() const { return resolved_; }

 private:
  Lend policy_;
  size_t finds_ = 0;
  size_t resolved_ = 0;
};

// Ranks on threads, made to run Staged rounds (as ranks in several processes
// do) with some buffers lent: rank r lends by `policyOf(r)`; peers read lent
// buffers in place and staged copies of the rest.
void runLendingBuffers(RankContext& ctx, Lend (*policyOf)(int rank), bool deferred) {
  ncclComm_t comm = nullptr;
  if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "ncclCommInitRank"))
    return;
  if (ctx.check(comm->arena != nullptr, "the direct algorithms are not on")) {
    DeferredMover mover;
    AddressLender lender(policyOf(ctx.rank));
    if (deferred) comm->direct.mover = &mover;
    comm->direct.allInThisProcess = false;
    comm->direct.registered = &lender;
    comm->direct.lendStagedBytes = comm->direct.lendStagedOneWayBytes = 0;  // as device communicators do
    for (const CollCase& c : cases(ctx.nranks)) {
      runAndCheck(ctx, comm, c);
      if (ctx.failures.size() > 5) break;
    }
    // Every rank reads some peer's lent buffer in some collective.
    ctx.check(lender.resolved() > 0, "no lent buffer was read");
    comm->direct.registered = nullptr;
    comm->direct.lendStagedBytes = comm->direct.lendStagedOneWayBytes = SIZE_MAX;
    comm->direct.allInThisProcess = true;
    comm->direct.mover = &chorus::hostMover();
  }
  ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
}

Lend everyRankLendsBoth(int) { return Lend::Both; }
Lend eachRankItsOwnWay(int rank) {
  const Lend ways[] = {Lend::Both, Lend::InputOnly, Lend::OutputOnly, Lend::None};
  return ways[rank % 4];
}

// Staging holds 1 KiB, so large operations run many rounds.
TEST(CollectivesLentBuffers, EveryDirectCollectiveIsExactWhenEveryRankLendsItsBuffers) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "1024");
  auto failures = runRankThreads(3, [](RankContext& ctx) {
    runLendingBuffers(ctx, everyRankLendsBoth, true);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(CollectivesLentBuffers, EveryDirectCollectiveIsExactWhenRanksLendDifferentSides) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "1024");
  for (bool deferred : {true, false}) {
    SCOPED_TRACE(deferred ? "late copies (as on a stream)" : "copies at once");
    auto failures = runRankThreads(4, [deferred](RankContext& ctx) {
      runLendingBuffers(ctx, eachRankItsOwnWay, deferred);
    });
    EXPECT_TRUE(failures.empty()) << joinFailures(failures);
  }
}

}  // namespace
