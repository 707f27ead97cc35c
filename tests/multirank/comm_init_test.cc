// Communicators formed by processes and threads: init, the bootstrap
// exchanges the layers above rely on, and destroy.
#include <gtest/gtest.h>

#include <unistd.h>

#include <netinet/in.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "harness/ranks.h"
#include "runtime/comm.h"

using chorus::test::joinFailures;
using chorus::test::RankContext;
using chorus::test::runRankProcesses;
using chorus::test::runRankThreads;
using chorus::test::ScopedEnv;

namespace {

// Every rank checks what the communicator says about itself, then runs the
// bootstrap allgather, barrier and a ring of tagged send/recv through it.
void checkCommunicator(RankContext& ctx, ncclComm_t comm, int expectRank, int expectCount) {
  int count = -1, rank = -1, device = -2;
  ctx.checkNccl(ncclCommCount(comm, &count), "ncclCommCount");
  ctx.checkNccl(ncclCommUserRank(comm, &rank), "ncclCommUserRank");
  ctx.checkNccl(ncclCommCuDevice(comm, &device), "ncclCommCuDevice");
  ctx.check(count == expectCount, "count " + std::to_string(count));
  ctx.check(rank == expectRank, "rank " + std::to_string(rank));
  ctx.check(device == -1, "a host communicator reports device " + std::to_string(device));

  std::vector<int64_t> blocks(count, -1);
  blocks[rank] = 1000 + rank;
  ctx.checkNccl(comm->bootstrap->allGather(blocks.data(), sizeof(int64_t)), "allGather");
  for (int r = 0; r < count; ++r)
    ctx.check(blocks[r] == 1000 + r, "allgather block " + std::to_string(r) + " holds " +
                                         std::to_string(blocks[r]));
  ctx.checkNccl(comm->bootstrap->barrier(), "barrier");

  // Each rank sends to its successor and receives from its predecessor, with
  // two tags posted in the opposite order to the one they are received in.
  int next = (rank + 1) % count, prev = (rank - 1 + count) % count;
  int a = rank * 10 + 1, b = rank * 10 + 2, gotA = -1, gotB = -1;
  ctx.checkNccl(comm->bootstrap->send(next, 7, &a, sizeof(a)), "send tag 7");
  ctx.checkNccl(comm->bootstrap->send(next, 8, &b, sizeof(b)), "send tag 8");
  ctx.checkNccl(comm->bootstrap->recv(prev, 8, &gotB, sizeof(gotB)), "recv tag 8");
  ctx.checkNccl(comm->bootstrap->recv(prev, 7, &gotA, sizeof(gotA)), "recv tag 7");
  ctx.check(gotA == prev * 10 + 1 && gotB == prev * 10 + 2, "send/recv payloads wrong");
  ctx.checkNccl(comm->bootstrap->barrier(), "barrier before destroy");
}

void initCheckDestroy(RankContext& ctx) {
  ncclComm_t comm = nullptr;
  if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "ncclCommInitRank"))
    return;
  checkCommunicator(ctx, comm, ctx.rank, ctx.nranks);
  ctx.checkNccl(ncclCommFinalize(comm), "ncclCommFinalize");
  ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
}

class ProcessRanks : public ::testing::TestWithParam<int> {};

TEST_P(ProcessRanks, FormCommunicatorAndExchangeThroughBootstrap) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankProcesses(GetParam(), initCheckDestroy);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Counts, ProcessRanks, ::testing::Values(1, 2, 3, 4, 5, 7, 8, 16));

class ThreadRanks : public ::testing::TestWithParam<int> {};

TEST_P(ThreadRanks, FormCommunicatorAndExchangeThroughBootstrap) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(GetParam(), initCheckDestroy);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Counts, ThreadRanks, ::testing::Values(1, 2, 11, 16, 64, 72));

TEST(CommInitAll, CreatesOneCommunicatorPerRankInThisProcess) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  const int n = 8;
  std::vector<ncclComm_t> comms(n, nullptr);
  ASSERT_EQ(ncclCommInitAll(comms.data(), n, nullptr), ncclSuccess) << ncclGetLastError(nullptr);
  for (int i = 0; i < n; ++i) {
    int rank = -1, count = -1;
    EXPECT_EQ(ncclCommUserRank(comms[i], &rank), ncclSuccess);
    EXPECT_EQ(ncclCommCount(comms[i], &count), ncclSuccess);
    EXPECT_EQ(rank, i);
    EXPECT_EQ(count, n);
  }
  // The ranks really are connected: a bootstrap allgather over all of them.
  auto failures = runRankThreads(n, [&](RankContext& ctx) {
    std::vector<int> values(n, 0);
    values[ctx.rank] = ctx.rank + 1;
    ctx.checkNccl(comms[ctx.rank]->bootstrap->allGather(values.data(), sizeof(int)), "allGather");
    for (int r = 0; r < n; ++r) ctx.check(values[r] == r + 1, "value " + std::to_string(r));
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
  for (ncclComm_t comm : comms) EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

TEST(GroupInit, OneThreadCreatesSeveralCommunicatorsInsideAGroup) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  const int n = 4;
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  std::vector<ncclComm_t> comms(n, nullptr);
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  for (int i = 0; i < n; ++i) ASSERT_EQ(ncclCommInitRank(&comms[i], n, id, i), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess) << ncclGetLastError(nullptr);
  for (int i = 0; i < n; ++i) {
    ncclResult_t state = ncclInProgress;
    EXPECT_EQ(ncclCommGetAsyncError(comms[i], &state), ncclSuccess);
    EXPECT_EQ(state, ncclSuccess);
    int rank = -1;
    EXPECT_EQ(ncclCommUserRank(comms[i], &rank), ncclSuccess);
    EXPECT_EQ(rank, i);
  }
  for (ncclComm_t comm : comms) EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

TEST(GroupInit, NestedGroupsRunAtTheOutermostEnd) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclComm_t comms[2] = {nullptr, nullptr};
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclCommInitRank(&comms[0], 2, id, 0), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess);  // inner: nothing runs yet
  ncclResult_t state = ncclSuccess;
  ASSERT_EQ(ncclCommGetAsyncError(comms[0], &state), ncclSuccess);
  EXPECT_EQ(state, ncclInProgress);
  ASSERT_EQ(ncclCommInitRank(&comms[1], 2, id, 1), ncclSuccess);
  ASSERT_EQ(ncclGroupEnd(), ncclSuccess) << ncclGetLastError(nullptr);
  for (ncclComm_t comm : comms) EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

TEST(GroupInit, GroupEndWithoutStartIsInvalidUsage) {
  EXPECT_EQ(ncclGroupEnd(), ncclInvalidUsage);
  EXPECT_NE(std::string(ncclGetLastError(nullptr)).find("without ncclGroupStart"), std::string::npos);
}

TEST(NonBlockingInit, ReturnsInProgressAndCompletesInTheBackground) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(4, [](RankContext& ctx) {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = nullptr;
    ncclResult_t r = ncclCommInitRankConfig(&comm, ctx.nranks, ctx.id, ctx.rank, &config);
    if (!ctx.check(r == ncclInProgress, std::string("init returned ") + ncclGetErrorString(r)))
      return;
    ncclResult_t state = ncclInProgress;
    for (int i = 0; i < 60000 && state == ncclInProgress; ++i) {
      ctx.checkNccl(ncclCommGetAsyncError(comm, &state), "ncclCommGetAsyncError");
      if (state == ncclInProgress) usleep(1000);
    }
    ctx.check(state == ncclSuccess, std::string("async state ") + ncclGetErrorString(state));
    checkCommunicator(ctx, comm, ctx.rank, ctx.nranks);
    ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(ScalableInit, SeveralRootsFormOneCommunicator) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  for (int nIds : {1, 2, 3, 7}) {
    chorus::test::RankOptions options;
    options.idCount = nIds;
    auto failures = runRankProcesses(
        7,
        [&](RankContext& ctx) {
          ncclComm_t comm = nullptr;
          if (!ctx.checkNccl(ncclCommInitRankScalable(&comm, ctx.nranks, ctx.rank, nIds,
                                                      ctx.ids.data(), nullptr),
                             "ncclCommInitRankScalable"))
            return;
          checkCommunicator(ctx, comm, ctx.rank, ctx.nranks);
          ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
        },
        options);
    EXPECT_TRUE(failures.empty()) << nIds << " ids:\n" << joinFailures(failures);
  }
}

TEST(CommIdEnv, RanksMeetAtNcclCommIdWithoutPassingAnId) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  std::string value = "127.0.0.1:" + std::to_string(chorus::test::pickFreePort(AF_INET));
  chorus::test::RankOptions options;
  options.createId = false;
  auto failures = runRankProcesses(
      4,
      [&](RankContext& ctx) {
        setenv("NCCL_COMM_ID", value.c_str(), 1);
        ncclUniqueId id;
        if (!ctx.checkNccl(ncclGetUniqueId(&id), "ncclGetUniqueId with NCCL_COMM_ID")) return;
        ncclComm_t comm = nullptr;
        if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, id, ctx.rank), "ncclCommInitRank"))
          return;
        checkCommunicator(ctx, comm, ctx.rank, ctx.nranks);
        ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
      },
      options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Rank 0 starts the root of NCCL_COMM_ID. When its own join fails (here:
// aborted while it waits for rank 1), it stops that root, which freed the
// port only at CHORUS_TIMEOUT before (or never, had no rank arrived): a
// retry on the same port was "already in use".
TEST(CommIdEnv, ARank0ThatFailsToJoinFreesThePortOfItsRoot) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "30");
  ScopedEnv commId("NCCL_COMM_ID",
                   ("127.0.0.1:" + std::to_string(chorus::test::pickFreePort(AF_INET))).c_str());
  ncclUniqueId ignored{};
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t waiting = nullptr;
  const ncclResult_t r = ncclCommInitRankConfig(&waiting, 2, ignored, 0, &config);
  ASSERT_TRUE(r == ncclSuccess || r == ncclInProgress) << ncclGetErrorString(r);
  usleep(300000);  // rank 0 has registered with its root and waits for rank 1
  ASSERT_EQ(ncclCommAbort(waiting), ncclSuccess);
  const auto start = std::chrono::steady_clock::now();
  ncclComm_t single = nullptr;
  ASSERT_EQ(ncclCommInitRank(&single, 1, ignored, 0), ncclSuccess) << ncclGetLastError(nullptr);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
  EXPECT_EQ(ncclCommDestroy(single), ncclSuccess);
}

}  // namespace

namespace {

TEST(Ipv6Bootstrap, RanksFormACommunicatorOverIpv6Loopback) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv ifname("NCCL_SOCKET_IFNAME", "lo");
  ScopedEnv family("NCCL_SOCKET_FAMILY", "AF_INET6");
  auto failures = runRankProcesses(4, initCheckDestroy);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(Ipv6Bootstrap, NcclCommIdAcceptsABracketedIpv6Address) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  std::string value = "[::1]:" + std::to_string(chorus::test::pickFreePort(AF_INET6));
  chorus::test::RankOptions options;
  options.createId = false;
  auto failures = runRankProcesses(
      3,
      [&](RankContext& ctx) {
        setenv("NCCL_COMM_ID", value.c_str(), 1);
        ncclComm_t comm = nullptr;
        if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank),
                           "ncclCommInitRank with NCCL_COMM_ID=" + value))
          return;
        checkCommunicator(ctx, comm, ctx.rank, ctx.nranks);
        ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
      },
      options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
