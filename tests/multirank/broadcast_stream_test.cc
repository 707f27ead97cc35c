// Runs of small Broadcasts between processes: their data travels in the
// arena's operation lines, and a reader that catches up with the root steps
// back until the root is ahead again (DirectPrims::stepBack). Every value
// must arrive, whoever runs ahead; a reader gives up stepping back for a
// root that keeps it waiting, and never steps back for a lone Broadcast.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "harness/ranks.h"
#include "runtime/comm.h"

using namespace chorus::test;

namespace {

int32_t valueOf(int op, int i) { return op * 31 + i * 7 + 1; }

// 20000 Broadcasts of 1-8 int32 (in the lines) and of 9-256 (in their
// slots), in and out of place; the root pauses now and then, so readers both
// run behind and catch up.
TEST(BroadcastStream, EveryValueOfALongRunOfSmallBroadcastsArrives) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  for (int n : {2, 3}) {
    SCOPED_TRACE(std::to_string(n) + " ranks");
    auto failures = runRankProcesses(n, [](RankContext& ctx) {
      ncclComm_t comm = initRankComm(ctx);
      if (comm == nullptr) return;
      constexpr int kOps = 20000;
      int32_t in[256], out[256];
      int wrong = 0, firstWrong = -1;
      for (int op = 0; op < kOps && wrong == 0; ++op) {
        const int count = op % 3 == 2 ? 9 + (op * 37) % 248 : 1 + op % 8;
        const bool inPlace = op % 2 == 1;
        int32_t* send = inPlace ? out : in;
        for (int i = 0; i < 256; ++i) {
          in[i] = ctx.rank == 0 ? valueOf(op, i) : -1;
          out[i] = ctx.rank == 0 && inPlace ? valueOf(op, i) : -2;
        }
        if (ctx.rank == 0 && op % 1000 == 999) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (!ctx.checkNccl(ncclBroadcast(send, out, count, ncclInt32, 0, comm, nullptr), "ncclBroadcast")) break;
        for (int i = 0; i < count; ++i)
          if (out[i] != valueOf(op, i) && wrong++ == 0) firstWrong = op;
      }
      ctx.check(wrong == 0, "Broadcast " + std::to_string(firstWrong) + " delivered wrong values");
      ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
    });
    EXPECT_TRUE(failures.empty()) << joinFailures(failures);
  }
}

TEST(BroadcastStream, ReadersStepBackOnlyInRunsAndNotForARootThatKeepsThemWaiting) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    ncclComm_t comm = initRankComm(ctx);
    if (comm == nullptr) return;
    if (!comm->direct.readersStepBack) {
      fprintf(stderr, "[ SKIPPED  ] fewer cores than ranks: readers do not step back here\n");
      ncclCommDestroy(comm);
      return;
    }
    int32_t value = 0;
    float one = 1;
    auto broadcast = [&](int times, bool rootLate) {
      for (int i = 0; i < times; ++i) {
        if (ctx.rank == 0 && rootLate && i == times - 1)
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        value = ctx.rank == 0 ? 1000 + i : 0;
        ctx.checkNccl(ncclBroadcast(&value, &value, 1, ncclInt32, 0, comm, nullptr), "ncclBroadcast");
        ctx.check(value == 1000 + i, "a Broadcast delivered " + std::to_string(value));
      }
    };
    const chorus::DirectState& state = comm->direct;
    // A lone Broadcast (after an AllReduce) that the reader waits 100 ms for.
    ctx.checkNccl(ncclAllReduce(&one, &one, 1, ncclFloat32, ncclSum, comm, nullptr), "AllReduce");
    broadcast(1, true);
    if (ctx.rank == 1)
      ctx.check(state.stepBackRest == 0, "a lone Broadcast stepped back (and timed out)");
    // A run whose last Broadcast the reader waits 100 ms for: it steps back,
    // gives up, and rests (from that round, or from an earlier one of the
    // run where it caught up and the root did not get far enough ahead).
    broadcast(10, true);
    const uint32_t rest = state.stepBackRest;
    if (ctx.rank == 1)
      ctx.check(rest > 10 && rest <= chorus::kArenaLines,
                "a reader kept waiting 100 ms rests " + std::to_string(rest) + " rounds");
    // Each round of a run spends one round of rest.
    broadcast(10, false);
    if (ctx.rank == 1)
      ctx.check(state.stepBackRest == rest - 10, "10 rounds after " + std::to_string(rest) +
                                                     " rounds of rest, " +
                                                     std::to_string(state.stepBackRest) + " are left");
    ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A root may run kArenaLines - 1 one-way rounds ahead of a reader. Here
// the reader starts late, so the root waits for it at round 255 (and would
// rather wait until it is kReleaseSlackRounds further), but the reader
// stops after 30 Broadcasts to meet the root on a second communicator,
// which the root reaches only after 270 Broadcasts: the root must go on
// once the reader has released the line it needs, or both would wait
// until CHORUS_TIMEOUT.
TEST(BroadcastStream, ARootRunsAWholeArenaOfLinesAheadOfAReaderThatWaitsForIt) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "20");
  RankOptions options;
  options.idCount = 2;
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    ncclComm_t first = initRankComm(ctx);
    ncclComm_t second = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&second, ctx.nranks, ctx.ids[1], ctx.rank),
                       "ncclCommInitRank (second)") ||
        first == nullptr)
      return;
    constexpr int kAhead = 270, kBeforeMeeting = 30;
    static_assert(kAhead < chorus::kArenaLines + kBeforeMeeting, "within the lines");
    int32_t value = 0;
    auto broadcast = [&](int from, int to) {
      for (int i = from; i < to; ++i) {
        value = ctx.rank == 0 ? 5000 + i : 0;
        if (!ctx.checkNccl(ncclBroadcast(&value, &value, 1, ncclInt32, 0, first, nullptr),
                           "ncclBroadcast " + std::to_string(i)))
          return false;
        if (!ctx.check(value == 5000 + i, "Broadcast " + std::to_string(i) + " delivered " +
                                              std::to_string(value)))
          return false;
      }
      return true;
    };
    float one = 1;
    auto meet = [&] {
      return ctx.checkNccl(ncclAllReduce(&one, &one, 1, ncclFloat32, ncclSum, second, nullptr),
                           "AllReduce on the second communicator");
    };
    if (ctx.rank == 0) {
      if (broadcast(0, kAhead)) meet();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (broadcast(0, kBeforeMeeting) && meet()) broadcast(kBeforeMeeting, kAhead);
    }
    ctx.checkNccl(ncclCommDestroy(second), "ncclCommDestroy (second)");
    ctx.checkNccl(ncclCommDestroy(first), "ncclCommDestroy");
  }, options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
