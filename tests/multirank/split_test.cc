// ncclCommSplit: membership by color, order by key then parent rank,
// NCCL_SPLIT_NOCOLOR, and splits driven from one thread inside a group.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "harness/ranks.h"
#include "runtime/comm.h"

using chorus::test::joinFailures;
using chorus::test::RankContext;
using chorus::test::runRankProcesses;
using chorus::test::runRankThreads;
using chorus::test::ScopedEnv;

namespace {

// The parent rank of every member of `color`, in the child's rank order when
// each rank used key = -parentRank (so: descending parent rank).
std::vector<int> membersByDescendingRank(int nranks, int colors, int color) {
  std::vector<int> members;
  for (int r = nranks - 1; r >= 0; --r)
    if (r % colors == color) members.push_back(r);
  return members;
}

void splitByColorAndCheck(RankContext& ctx, int colors) {
  ncclComm_t parent = nullptr;
  if (!ctx.checkNccl(ncclCommInitRank(&parent, ctx.nranks, ctx.id, ctx.rank), "init")) return;
  // The last rank opts out.
  const bool optOut = ctx.rank == ctx.nranks - 1 && ctx.nranks > 1;
  const int color = optOut ? NCCL_SPLIT_NOCOLOR : ctx.rank % colors;
  ncclComm_t child = reinterpret_cast<ncclComm_t>(0x1);
  if (!ctx.checkNccl(ncclCommSplit(parent, color, -ctx.rank, &child, nullptr), "ncclCommSplit"))
    return;
  if (optOut) {
    ctx.check(child == nullptr, "NCCL_SPLIT_NOCOLOR must give a NULL communicator");
  } else {
    std::vector<int> members = membersByDescendingRank(ctx.nranks, colors, color);
    if (ctx.nranks > 1)
      members.erase(std::remove(members.begin(), members.end(), ctx.nranks - 1), members.end());
    int expectRank = static_cast<int>(std::find(members.begin(), members.end(), ctx.rank) -
                                      members.begin());
    int count = -1, rank = -1;
    ctx.checkNccl(ncclCommCount(child, &count), "ncclCommCount");
    ctx.checkNccl(ncclCommUserRank(child, &rank), "ncclCommUserRank");
    ctx.check(count == static_cast<int>(members.size()), "child count " + std::to_string(count));
    ctx.check(rank == expectRank, "child rank " + std::to_string(rank) + ", expected " +
                                      std::to_string(expectRank));
    // The child is a working communicator of its own: gather parent ranks.
    std::vector<int> parents(count, -1);
    parents[rank] = ctx.rank;
    ctx.checkNccl(child->bootstrap->allGather(parents.data(), sizeof(int)), "child allGather");
    ctx.check(parents == members, "child allgather saw the wrong members");
    ctx.checkNccl(ncclCommDestroy(child), "destroy child");
  }
  ctx.checkNccl(ncclCommDestroy(parent), "destroy parent");
}

class SplitProcesses : public ::testing::TestWithParam<int> {};

TEST_P(SplitProcesses, ColorsFormCommunicatorsOrderedByKey) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankProcesses(GetParam(), [](RankContext& ctx) { splitByColorAndCheck(ctx, 3); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Counts, SplitProcesses, ::testing::Values(1, 2, 5, 8));

TEST(SplitThreads, ColorsFormCommunicatorsOrderedByKeyOn16Threads) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(16, [](RankContext& ctx) { splitByColorAndCheck(ctx, 2); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(SplitThreads, ChildInheritsNonBlockingConfigAndCompletesInBackground) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(4, [](RankContext& ctx) {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t parent = nullptr;
    ncclResult_t r = ncclCommInitRankConfig(&parent, ctx.nranks, ctx.id, ctx.rank, &config);
    ctx.check(r == ncclInProgress || r == ncclSuccess, "init");
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) ncclCommGetAsyncError(parent, &state);
    if (!ctx.checkNccl(state, "parent init")) return;
    ncclComm_t child = nullptr;
    r = ncclCommSplit(parent, 0, ctx.rank, &child, nullptr);
    ctx.check(r == ncclInProgress, std::string("split returned ") + ncclGetErrorString(r));
    state = ncclInProgress;
    while (state == ncclInProgress) ncclCommGetAsyncError(child, &state);
    ctx.checkNccl(state, "child init");
    int rank = -1;
    ncclCommUserRank(child, &rank);
    ctx.check(rank == ctx.rank, "child rank");
    ncclCommDestroy(child);
    ncclCommDestroy(parent);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(SplitGroup, OneThreadSplitsEveryRankInsideAGroup) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  const int n = 6;
  std::vector<ncclComm_t> parents(n), children(n, nullptr);
  ASSERT_EQ(ncclCommInitAll(parents.data(), n, nullptr), ncclSuccess) << ncclGetLastError(nullptr);
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(ncclCommSplit(parents[i], i % 2, i, &children[i], nullptr), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess) << ncclGetLastError(nullptr);
  for (int i = 0; i < n; ++i) {
    int rank = -1, count = -1;
    ASSERT_EQ(ncclCommUserRank(children[i], &rank), ncclSuccess);
    ASSERT_EQ(ncclCommCount(children[i], &count), ncclSuccess);
    EXPECT_EQ(count, n / 2);
    EXPECT_EQ(rank, i / 2);
  }
  for (ncclComm_t c : children) EXPECT_EQ(ncclCommDestroy(c), ncclSuccess);
  for (ncclComm_t c : parents) EXPECT_EQ(ncclCommDestroy(c), ncclSuccess);
}

TEST(SplitErrors, NegativeColorOtherThanNoColorIsInvalid) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ncclComm_t comm = nullptr;
  ASSERT_EQ(ncclCommInitAll(&comm, 1, nullptr), ncclSuccess);
  ncclComm_t child = nullptr;
  EXPECT_EQ(ncclCommSplit(comm, -5, 0, &child, nullptr), ncclInvalidArgument);
  EXPECT_NE(std::string(ncclGetLastError(nullptr)).find("color -5"), std::string::npos);
  EXPECT_EQ(ncclCommSplit(comm, 0, 0, nullptr, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommSplit(nullptr, 0, 0, &child, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

// Ranks that split different parents (rank 0 splits A, rank 1 splits B)
// leave both parents' bootstraps out of step: each split fails at the
// deadline, and its parent is failed from then on. Before, that parent
// reported no error, and a later split of it by both ranks paired the wrong
// messages and returned a wrong child with success.
TEST(SplitErrors, ASplitThatFailedInTheParentsExchangesFailsTheParent) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "2");
  chorus::test::RankOptions options;
  options.idCount = 2;
  std::atomic<int> firstSplitsDone{0};
  auto failures = runRankThreads(2, [&](RankContext& ctx) {
    ncclComm_t a = nullptr, b = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&a, 2, ctx.ids[0], ctx.rank), "init A")) return;
    if (!ctx.checkNccl(ncclCommInitRank(&b, 2, ctx.ids[1], ctx.rank), "init B")) return;
    ncclComm_t split = ctx.rank == 0 ? a : b;
    ncclComm_t child = nullptr;
    ncclResult_t r = ncclCommSplit(split, 0, ctx.rank, &child, nullptr);
    ctx.check(r != ncclSuccess && child == nullptr, std::string("the mismatched split returned ") +
              ncclGetErrorString(r));
    ctx.check(std::string(ncclGetLastError(nullptr)).find("did not all take part") != std::string::npos,
              ncclGetLastError(nullptr));
    ncclResult_t state = ncclSuccess;
    ctx.checkNccl(ncclCommGetAsyncError(split, &state), "async error");
    ctx.check(state == ncclSystemError, std::string("the split parent's state: ") + ncclGetErrorString(state));
    // Both first splits are over before either rank goes on: rank 1's next
    // split of A would otherwise meet rank 0's first one, still waiting, as
    // a valid pair.
    ++firstSplitsDone;
    while (firstSplitsDone.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // Both ranks now split A alike: rank 0's A has failed and refuses at
    // once; rank 1's, still healthy, finds no partner and fails too. No one
    // gets a communicator.
    r = ncclCommSplit(a, 7, ctx.rank, &child, nullptr);
    if (ctx.rank == 0) ctx.check(r == ncclInvalidUsage, std::string("rank 0: ") + ncclGetErrorString(r));
    else ctx.check(r != ncclSuccess, std::string("rank 1: ") + ncclGetErrorString(r));
    ctx.check(child == nullptr, "a child was made");
    ncclCommAbort(a);
    ncclCommAbort(b);
  }, options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
