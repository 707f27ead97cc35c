// Point-to-point operations and group semantics on host communicators.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "harness/ranks.h"

using chorus::test::joinFailures;
using chorus::test::RankContext;
using chorus::test::runRankProcesses;
using chorus::test::runRankThreads;
using chorus::test::ScopedEnv;

namespace {

int64_t pattern(int from, int to, size_t i) { return from * 1000003 + to * 1009 + static_cast<int64_t>(i); }

// Every rank sends a different amount to every rank (itself included) and
// receives from every rank, all in one group, posted in a shuffled order.
void allPairsInShuffledOrder(RankContext& ctx, size_t base) {
  ncclComm_t comm = nullptr;
  if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "init")) return;
  const int n = ctx.nranks;
  auto countFor = [&](int from, int to) { return base + static_cast<size_t>((from * 7 + to * 3) % 5); };
  std::vector<std::vector<int64_t>> out(n), in(n);
  struct Post { bool send; int peer; };
  std::vector<Post> posts;
  for (int p = 0; p < n; ++p) {
    out[p].resize(countFor(ctx.rank, p));
    for (size_t i = 0; i < out[p].size(); ++i) out[p][i] = pattern(ctx.rank, p, i);
    in[p].assign(countFor(p, ctx.rank), -1);
    posts.push_back({true, p});
    posts.push_back({false, p});
  }
  std::mt19937 shuffle(1234 + ctx.rank);
  std::shuffle(posts.begin(), posts.end(), shuffle);
  ctx.checkNccl(ncclGroupStart(), "ncclGroupStart");
  for (const Post& post : posts) {
    if (post.send)
      ctx.checkNccl(ncclSend(out[post.peer].data(), out[post.peer].size(), ncclInt64, post.peer, comm, nullptr), "ncclSend");
    else
      ctx.checkNccl(ncclRecv(in[post.peer].data(), in[post.peer].size(), ncclInt64, post.peer, comm, nullptr), "ncclRecv");
  }
  ctx.checkNccl(ncclGroupEnd(), "ncclGroupEnd");
  for (int p = 0; p < n; ++p)
    for (size_t i = 0; i < in[p].size(); ++i)
      if (!ctx.check(in[p][i] == pattern(p, ctx.rank, i),
                     "element " + std::to_string(i) + " from rank " + std::to_string(p)))
        break;
  ctx.checkNccl(ncclCommDestroy(comm), "destroy");
}

TEST(SendRecv, AllPairsPostedInAnyOrderInsideAGroupDoNotDeadlock) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  for (int n : {1, 2, 3, 5}) {
    for (size_t base : {size_t{0}, size_t{1}, size_t{4099}, size_t{300000}}) {
      auto failures = runRankProcesses(n, [&](RankContext& ctx) { allPairsInShuffledOrder(ctx, base); });
      EXPECT_TRUE(failures.empty()) << n << " ranks, base " << base << "\n" << joinFailures(failures);
    }
  }
}

TEST(SendRecv, AllPairsOverSocketsOnThreads) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv shm("NCCL_SHM_DISABLE", "1");
  auto failures = runRankThreads(4, [](RankContext& ctx) { allPairsInShuffledOrder(ctx, 70000); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(SendRecv, SeveralMessagesToOnePeerArriveInPostedOrder) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&comm, 2, ctx.id, ctx.rank), "init")) return;
    const int peer = 1 - ctx.rank;
    std::vector<std::vector<int32_t>> msgs(4);
    ctx.checkNccl(ncclGroupStart(), "group");
    for (int m = 0; m < 4; ++m) {
      msgs[m].assign(1000 + m, ctx.rank == 0 ? m : -1);
      if (ctx.rank == 0) ncclSend(msgs[m].data(), msgs[m].size(), ncclInt32, peer, comm, nullptr);
      else ncclRecv(msgs[m].data(), msgs[m].size(), ncclInt32, peer, comm, nullptr);
    }
    ctx.checkNccl(ncclGroupEnd(), "group end");
    for (int m = 0; m < 4; ++m)
      ctx.check(std::all_of(msgs[m].begin(), msgs[m].end(), [m](int32_t v) { return v == m; }),
                "message " + std::to_string(m));
    ncclCommDestroy(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(SendRecv, MismatchedCountIsReportedNotHung) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "3");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&comm, 2, ctx.id, ctx.rank), "init")) return;
    std::vector<float> data(100, 1.0f);
    ncclResult_t r = ctx.rank == 0 ? ncclSend(data.data(), 100, ncclFloat, 1, comm, nullptr)
                                   : ncclRecv(data.data(), 50, ncclFloat, 0, comm, nullptr);
    if (ctx.rank == 1) ctx.check(r == ncclInvalidUsage, std::string("receiver got ") + ncclGetErrorString(r));
    ncclCommAbort(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(Groups, OneThreadDrivesEveryRankOfACommunicatorInAGroup) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  const int n = 4;
  const size_t count = 100003;
  std::vector<ncclComm_t> comms(n);
  ASSERT_EQ(ncclCommInitAll(comms.data(), n, nullptr), ncclSuccess);
  std::vector<std::vector<float>> bufs(n, std::vector<float>(count));
  for (int r = 0; r < n; ++r) std::iota(bufs[r].begin(), bufs[r].end(), static_cast<float>(r));
  for (int iteration = 0; iteration < 3; ++iteration) {
    ASSERT_EQ(ncclGroupStart(), ncclSuccess);
    for (int r = 0; r < n; ++r)
      ASSERT_EQ(ncclAllReduce(bufs[r].data(), bufs[r].data(), count, ncclFloat, ncclSum, comms[r], nullptr), ncclSuccess);
    ASSERT_EQ(ncclGroupEnd(), ncclSuccess) << ncclGetLastError(nullptr);
  }
  // Sums of i + r over 4 ranks: 4i + 6, then 4 and 16 times that.
  for (int r = 0; r < n; ++r)
    for (size_t i = 0; i < count; i += 997)
      ASSERT_EQ(bufs[r][i], 16.0f * (4 * i + 6)) << "rank " << r << " element " << i;
  for (ncclComm_t c : comms) EXPECT_EQ(ncclCommDestroy(c), ncclSuccess);
}

TEST(Groups, SeveralCollectivesInOneGroupRunInOrder) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(3, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "init")) return;
    std::vector<int32_t> a(7, ctx.rank + 1), b(3 * 5, 0), c(5, ctx.rank);
    ncclGroupStart();
    ncclAllReduce(a.data(), a.data(), 7, ncclInt32, ncclSum, comm, nullptr);
    ncclAllGather(c.data(), b.data(), 5, ncclInt32, comm, nullptr);
    ncclBroadcast(a.data(), a.data(), 7, ncclInt32, 2, comm, nullptr);
    ctx.checkNccl(ncclGroupEnd(), "group end");
    ctx.check(a[6] == 6, "allreduce then broadcast");
    for (int r = 0; r < 3; ++r) ctx.check(b[r * 5] == r, "allgather block " + std::to_string(r));
    ncclCommDestroy(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(NonBlocking, CollectiveReturnsInProgressAndCompletes) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(3, [](RankContext& ctx) {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = nullptr;
    ncclCommInitRankConfig(&comm, ctx.nranks, ctx.id, ctx.rank, &config);
    std::vector<double> data(50000, ctx.rank);
    // Posted while init may still run: it waits for init, in order.
    ncclResult_t r = ncclAllReduce(data.data(), data.data(), data.size(), ncclDouble, ncclMax, comm, nullptr);
    ctx.check(r == ncclInProgress, std::string("allreduce returned ") + ncclGetErrorString(r));
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) {
      ncclCommGetAsyncError(comm, &state);
      std::this_thread::yield();
    }
    ctx.checkNccl(state, "async state");
    ctx.check(data[49999] == 2.0, "max over ranks");
    ncclCommDestroy(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// As with NCCL, a blocking communicator is never "in progress": a thread
// that watches it (PyTorch's watchdog does) while a blocking collective
// waits for a late peer sees ncclSuccess, and the collective completes.
TEST(Blocking, AWatcherSeesSuccessWhileABlockingCollectiveWaits) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(2, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "init")) return;
    std::atomic<bool> running{true};
    std::atomic<int> polls{0}, notSuccess{0};
    std::thread watcher;
    if (ctx.rank == 0) {
      watcher = std::thread([&] {
        while (running.load()) {
          ncclResult_t state = ncclInternalError;
          ncclCommGetAsyncError(comm, &state);
          if (state != ncclSuccess) ++notSuccess;
          ++polls;
          std::this_thread::yield();
        }
      });
    } else {
      usleep(200000);  // rank 0 waits in its AllReduce meanwhile
    }
    std::vector<float> data(1000, 1.0f);
    ctx.checkNccl(ncclAllReduce(data.data(), data.data(), data.size(), ncclFloat, ncclSum, comm,
                                nullptr),
                  "allreduce");
    ctx.check(data[999] == 2.0f, "sum over ranks");
    if (watcher.joinable()) {
      running = false;
      watcher.join();
      ctx.check(polls.load() > 0, "the watcher polled");
      ctx.check(notSuccess.load() == 0,
                std::to_string(notSuccess.load()) + " of " + std::to_string(polls.load()) +
                    " polls did not say ncclSuccess");
    }
    ctx.checkNccl(ncclCommDestroy(comm), "destroy");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
