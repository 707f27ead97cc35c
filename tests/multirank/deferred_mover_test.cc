// The direct algorithms with copies and reductions that happen late, as on
// a CUDA stream: a test mover records them and carries them out only when
// the primitives settle it. Every collective is still exact only if the
// primitives settle before each meeting (so a peer never reads a staging
// area or a published block that is not yet written) and before an
// operation ends; this is the discipline device communicators rely on,
// checked here without a GPU.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
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

void runWithDeferredMover(RankContext& ctx) {
  ncclComm_t comm = nullptr;
  if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "ncclCommInitRank"))
    return;
  if (ctx.check(comm->arena != nullptr, "the direct algorithms are not on")) {
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
  ScopedEnv stage("CHORUS_STAGE_BYTES", "4160");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "1024");
  RankOptions options;
  options.timeoutSeconds = 280;
  auto failures = runRankProcesses(4, runWithDeferredMover, options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Ranks of one process read each other's buffers in place.
TEST(CollectivesDeferredMover, EveryDirectCollectiveIsExactOnThreads) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(3, runWithDeferredMover);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
