// Bad input to collectives and point-to-point calls, and failed peers: a
// clear error on the caller, never a crash or a hang.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "harness/ranks.h"

using chorus::test::crossMemoryAllowed;
using chorus::test::initRankComm;
using chorus::test::joinFailures;
using chorus::test::lastErrorHas;
using chorus::test::RankContext;
using chorus::test::RankOptions;
using chorus::test::runRankProcesses;
using chorus::test::runRankThreads;
using chorus::test::ScopedEnv;
using chorus::test::ScopedKernelCopies;

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs `call` (named `what` in failures), which waits for a lost peer: it
// must end within 2 s with ncclRemoteError, its message holding `expected`.
template <typename Call>
void failsAtOnce(RankContext& ctx, ncclComm_t comm, const char* what, const char* expected,
                 Call call) {
  const auto start = std::chrono::steady_clock::now();
  const ncclResult_t r = call();
  const double seconds = secondsSince(start);
  ctx.check(r == ncclRemoteError, std::string(what) + " returned " + ncclGetErrorString(r));
  ctx.check(lastErrorHas(expected), ncclGetLastError(comm));
  ctx.check(seconds < 2.0, std::string(what) + " took " + std::to_string(seconds) + " s");
}

class OneRankComm : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(ncclCommInitAll(&comm, 1, nullptr), ncclSuccess); }
  void TearDown() override { ncclCommDestroy(comm); }
  ScopedEnv host{"CHORUS_DEVICE", "host"};
  ncclComm_t comm = nullptr;
  float a[4] = {1, 2, 3, 4}, b[4] = {};
};

TEST_F(OneRankComm, NullBuffersWithCountAreInvalidArguments) {
  EXPECT_EQ(ncclAllReduce(nullptr, b, 4, ncclFloat, ncclSum, comm, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("sendbuff is NULL"));
  EXPECT_EQ(ncclAllReduce(a, nullptr, 4, ncclFloat, ncclSum, comm, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("recvbuff is NULL"));
  EXPECT_EQ(ncclBroadcast(nullptr, b, 4, ncclFloat, 0, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAllGather(a, nullptr, 4, ncclFloat, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclReduceScatter(nullptr, b, 4, ncclFloat, ncclSum, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclSend(nullptr, 4, ncclFloat, 0, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclRecv(nullptr, 4, ncclFloat, 0, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAlltoAll(a, nullptr, 4, ncclFloat, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclGather(nullptr, b, 4, ncclFloat, 0, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclScatter(nullptr, b, 4, ncclFloat, 0, comm, nullptr), ncclInvalidArgument);
  // Count 0 with NULL buffers is a valid no-op.
  EXPECT_EQ(ncclAllReduce(nullptr, nullptr, 0, ncclFloat, ncclSum, comm, nullptr), ncclSuccess);
}

TEST_F(OneRankComm, BadDatatypeOpRootAndPeerAreInvalidArguments) {
  EXPECT_EQ(ncclAllReduce(a, b, 4, static_cast<ncclDataType_t>(12), ncclSum, comm, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("datatype 12"));
  EXPECT_EQ(ncclAllReduce(a, b, 4, static_cast<ncclDataType_t>(-1), ncclSum, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAllReduce(a, b, 4, ncclFloat, static_cast<ncclRedOp_t>(9), comm, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("operator 9"));
  EXPECT_EQ(ncclReduce(a, b, 4, ncclFloat, ncclSum, 1, comm, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("root 1"));
  EXPECT_EQ(ncclBroadcast(a, b, 4, ncclFloat, -1, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclSend(a, 4, ncclFloat, 1, comm, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("peer 1"));
  EXPECT_EQ(ncclRecv(b, 4, ncclFloat, -3, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAllReduce(a, b, 4, ncclFloat, ncclSum, nullptr, nullptr), ncclInvalidArgument);
  // Nothing was written by the rejected calls.
  for (float v : b) EXPECT_EQ(v, 0.0f);
}

// No buffer holds more than PTRDIFF_MAX bytes: a count of SIZE_MAX 1-byte
// elements (which does not overflow a size_t) is refused, not wrapped into
// a silent no-op.
TEST_F(OneRankComm, CountsBeyondAnyBufferAreInvalidArguments) {
  char bytes[4] = {};
  EXPECT_EQ(ncclAllReduce(bytes, bytes, SIZE_MAX, ncclInt8, ncclSum, comm, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("overflows the buffer size"));
  EXPECT_EQ(ncclBroadcast(bytes, bytes, SIZE_MAX / 2 + 1, ncclUint8, 0, comm, nullptr), ncclInvalidArgument);
}

// Buffers that overlap without NCCL's in-place layout are refused before
// anything moves (the copies would read what they had written); the
// in-place layouts still run.
TEST_F(OneRankComm, OverlappingBuffersThatAreNotInPlaceAreInvalidArguments) {
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const float before[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(ncclAllReduce(x, x + 1, 4, ncclFloat, ncclSum, comm, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("overlap but are not in place"));
  EXPECT_EQ(ncclBroadcast(x, x + 2, 4, ncclFloat, 0, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclReduce(x + 3, x, 4, ncclFloat, ncclSum, 0, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAllGather(x + 1, x, 4, ncclFloat, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclReduceScatter(x, x + 1, 4, ncclFloat, ncclSum, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclGather(x + 1, x, 4, ncclFloat, 0, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclScatter(x, x + 1, 4, ncclFloat, 0, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclAlltoAll(x, x + 1, 4, ncclFloat, comm, nullptr), ncclInvalidArgument);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(x[i], before[i]) << "element " << i;
  // In place (one rank: every block is this rank's) and disjoint are fine.
  EXPECT_EQ(ncclAllReduce(x, x, 4, ncclFloat, ncclSum, comm, nullptr), ncclSuccess);
  EXPECT_EQ(ncclAllGather(x, x, 4, ncclFloat, comm, nullptr), ncclSuccess);
  EXPECT_EQ(ncclReduceScatter(x, x, 4, ncclFloat, ncclSum, comm, nullptr), ncclSuccess);
  EXPECT_EQ(ncclAlltoAll(x, x, 4, ncclFloat, comm, nullptr), ncclSuccess);  // one rank: a copy
  EXPECT_EQ(ncclBroadcast(x, x + 4, 4, ncclFloat, 0, comm, nullptr), ncclSuccess);
  EXPECT_EQ(x[7], 4.0f);
}

// As in NCCL, a call refused inside a group fails the group: ncclGroupEnd
// returns its error and none of the group's operations runs. The next
// group is not affected.
TEST_F(OneRankComm, ARefusedCallFailsItsGroupAndNothingInItRuns) {
  float in[4] = {1, 2, 3, 4}, out[4] = {};
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(in, out, 4, ncclFloat, ncclSum, comm, nullptr), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(in, out, 4, static_cast<ncclDataType_t>(77), ncclSum, comm, nullptr),
            ncclInvalidArgument);
  EXPECT_EQ(ncclGroupEnd(), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("no operation of the group ran"));
  EXPECT_TRUE(lastErrorHas("datatype 77"));
  for (float v : out) EXPECT_EQ(v, 0.0f);
  // A refused init (nranks 0) fails its group too.
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclComm_t other = nullptr;
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(in, out, 4, ncclFloat, ncclSum, comm, nullptr), ncclSuccess);
  EXPECT_EQ(ncclCommInitRank(&other, 0, id, 0), ncclInvalidArgument);
  EXPECT_EQ(ncclGroupEnd(), ncclInvalidArgument);
  for (float v : out) EXPECT_EQ(v, 0.0f);
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(in, out, 4, ncclFloat, ncclSum, comm, nullptr), ncclSuccess);
  EXPECT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(out[3], 4.0f);
}

TEST_F(OneRankComm, RegistrationsBeyondAnyBufferAreInvalidArguments) {
  void* handle = nullptr;
  EXPECT_EQ(ncclCommRegister(comm, a, SIZE_MAX, &handle), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("is not a buffer"));
  EXPECT_EQ(handle, nullptr);
  ASSERT_EQ(ncclCommRegister(comm, a, sizeof a, &handle), ncclSuccess);
  EXPECT_EQ(ncclCommDeregister(comm, handle), ncclSuccess);
}

TEST_F(OneRankComm, PreMulSumOperatorsAreCheckedAndDestroyed) {
  float two = 2.0f;
  ncclRedOp_t op;
  ASSERT_EQ(ncclRedOpCreatePreMulSum(&op, &two, ncclFloat, ncclScalarHostImmediate, comm), ncclSuccess);
  EXPECT_EQ(ncclAllReduce(a, b, 4, ncclFloat, op, comm, nullptr), ncclSuccess);
  EXPECT_EQ(b[3], 8.0f);
  EXPECT_EQ(ncclAllReduce(a, b, 4, ncclDouble, op, comm, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("was made for datatype"));
  EXPECT_EQ(ncclRedOpDestroy(op, comm), ncclSuccess);
  EXPECT_EQ(ncclRedOpDestroy(op, comm), ncclInvalidArgument);
  EXPECT_EQ(ncclAllReduce(a, b, 4, ncclFloat, op, comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclRedOpDestroy(ncclSum, comm), ncclInvalidArgument);
  EXPECT_EQ(ncclRedOpCreatePreMulSum(&op, nullptr, ncclFloat, ncclScalarHostImmediate, comm), ncclInvalidArgument);
  // A "device" scalar on a host communicator is read when the op is posted.
  float scale = 3.0f;
  ASSERT_EQ(ncclRedOpCreatePreMulSum(&op, &scale, ncclFloat, ncclScalarDevice, comm), ncclSuccess);
  scale = 10.0f;
  EXPECT_EQ(ncclAllReduce(a, b, 4, ncclFloat, op, comm, nullptr), ncclSuccess);
  EXPECT_EQ(b[0], 10.0f);
  EXPECT_EQ(ncclRedOpDestroy(op, comm), ncclSuccess);
}

TEST(CollectiveArguments, InPlaceAlltoAllIsRejectedBeforeAnyDataMoves) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(2, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&comm, 2, ctx.id, ctx.rank), "init")) return;
    std::vector<int> data(8, ctx.rank);
    ctx.check(ncclAlltoAll(data.data(), data.data(), 4, ncclInt, comm, nullptr) == ncclInvalidArgument,
              "in-place alltoall accepted");
    ctx.check(lastErrorHas("in-place"), ncclGetLastError(nullptr));
    ncclCommDestroy(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A communicator whose work waits in this thread's open group: destroying
// it is refused (ncclGroupEnd would run the work on freed memory); aborting
// it drops the work, and the group ends cleanly.
TEST(GroupMisuse, DestroyInsideAGroupHoldingItsWorkIsRefusedAndAbortDropsTheWork) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ncclComm_t comm = nullptr;
  ASSERT_EQ(ncclCommInitAll(&comm, 1, nullptr), ncclSuccess);
  float in[4] = {1, 2, 3, 4}, out[4] = {};
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclAllReduce(in, out, 4, ncclFloat, ncclSum, comm, nullptr), ncclSuccess);
  EXPECT_EQ(ncclCommDestroy(comm), ncclInvalidUsage);
  EXPECT_TRUE(lastErrorHas("call ncclGroupEnd first"));
  EXPECT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(out[3], 4.0f) << "the queued AllReduce ran at ncclGroupEnd";

  float untouched[4] = {};
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclAllReduce(in, untouched, 4, ncclFloat, ncclSum, comm, nullptr), ncclSuccess);
  EXPECT_EQ(ncclCommAbort(comm), ncclSuccess);
  EXPECT_EQ(ncclGroupEnd(), ncclSuccess);
  EXPECT_EQ(untouched[0], 0.0f) << "the AllReduce of an aborted communicator ran";

  // A split of the communicator waiting in the group counts as its work:
  // destroying the parent is refused, aborting it fails the child.
  ncclComm_t parent = nullptr;
  ASSERT_EQ(ncclCommInitAll(&parent, 1, nullptr), ncclSuccess);
  ncclComm_t child = nullptr;
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclCommSplit(parent, 0, 0, &child, nullptr), ncclSuccess);
  EXPECT_EQ(ncclCommDestroy(parent), ncclInvalidUsage);
  EXPECT_EQ(ncclCommFinalize(parent), ncclInvalidUsage);
  EXPECT_EQ(ncclCommAbort(parent), ncclSuccess);
  EXPECT_EQ(ncclGroupEnd(), ncclSuccess);
  ASSERT_NE(child, nullptr);
  ncclResult_t childState = ncclSuccess;
  EXPECT_EQ(ncclCommGetAsyncError(child, &childState), ncclSuccess);
  EXPECT_EQ(childState, ncclInvalidUsage) << "the child of an aborted split";
  EXPECT_TRUE(lastErrorHas("aborted before this split ran"));
  EXPECT_EQ(ncclCommAbort(child), ncclSuccess);

  // An init deferred by a group, then aborted before the group ends.
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclComm_t deferred = nullptr;
  ASSERT_EQ(ncclGroupStart(), ncclSuccess);
  ASSERT_EQ(ncclCommInitRank(&deferred, 1, id, 0), ncclSuccess);
  EXPECT_EQ(ncclCommAbort(deferred), ncclSuccess);
  EXPECT_EQ(ncclGroupEnd(), ncclSuccess);
}

TEST(FailedPeers, ARankRejectedLocallyMakesTheOthersTimeOutWithoutWritingTheirBuffers) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "2");
  auto failures = runRankProcesses(3, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&comm, 3, ctx.id, ctx.rank), "init")) return;
    std::vector<float> in(1000, 1.0f), out(1000, -7.0f);
    // Rank 1 passes a bad datatype: its call is rejected and posts nothing.
    ncclDataType_t type = ctx.rank == 1 ? static_cast<ncclDataType_t>(99) : ncclFloat;
    ncclResult_t r = ncclAllReduce(in.data(), out.data(), 1000, type, ncclSum, comm, nullptr);
    if (ctx.rank == 1) ctx.check(r == ncclInvalidArgument, "rank 1's bad call");
    else ctx.check(r == ncclSystemError || r == ncclRemoteError, std::string("others got ") + ncclGetErrorString(r));
    if (ctx.rank == 1) ctx.check(out[0] == -7.0f && out[999] == -7.0f, "rank 1's buffer was written");
    // Its communicator is still usable: no failure is published, and the
    // others wait for it until their deadline (an abort would end their
    // waits at once: the next tests).
    if (ctx.rank == 1) usleep(3000000);
    else ctx.check(lastErrorHas("CHORUS_TIMEOUT"), ncclGetLastError(comm));
    ncclCommAbort(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A rank that aborts its communicator tells its peers on this host: their
// waits for it end with ncclRemoteError at once, long before CHORUS_TIMEOUT:
// a receive from it (its FIFO), two receives from it in a group (the
// polling loop of grouped point-to-point), and a collective (the arena),
// here one that waits for ranks whose receives failed that way (the
// failure is passed on).
TEST(FailedPeers, AnAbortedRankEndsItsPeersWaitsAtOnce) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");
  auto failures = runRankProcesses(4, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&comm, 4, ctx.id, ctx.rank), "init")) return;
    // A message from rank 1 to ranks 0 and 3 connects them, so that their
    // receives below wait in the FIFO rather than in a connection setup.
    std::vector<float> message(16, 1.0f);
    if (ctx.rank == 1) {
      ncclGroupStart();
      ncclSend(message.data(), 16, ncclFloat, 0, comm, nullptr);
      ncclSend(message.data(), 16, ncclFloat, 3, comm, nullptr);
      ctx.checkNccl(ncclGroupEnd(), "sends");
      ncclCommAbort(comm);
      usleep(3000000);  // alive, so that the others learn of the abort, not of an exit
      return;
    }
    if (ctx.rank != 2) ctx.checkNccl(ncclRecv(message.data(), 16, ncclFloat, 1, comm, nullptr), "recv");
    const auto start = std::chrono::steady_clock::now();
    std::vector<float> in(1000, 1.0f), out(1000, -7.0f);
    ncclResult_t r;
    if (ctx.rank == 0) {
      ncclGroupStart();
      ncclRecv(out.data(), 500, ncclFloat, 1, comm, nullptr);
      ncclRecv(out.data() + 500, 500, ncclFloat, 1, comm, nullptr);
      r = ncclGroupEnd();
    } else if (ctx.rank == 3) {
      r = ncclRecv(out.data(), 1000, ncclFloat, 1, comm, nullptr);
    } else {
      r = ncclAllReduce(in.data(), out.data(), 1000, ncclFloat, ncclSum, comm, nullptr);
    }
    const double seconds = secondsSince(start);
    ctx.check(r == ncclRemoteError, std::string("returned ") + ncclGetErrorString(r));
    // Rank 2 hears it from rank 0, whose message quotes rank 1's.
    ctx.check(lastErrorHas("rank 1: its communicator was aborted (ncclCommAbort)"),
              ncclGetLastError(comm));
    if (ctx.rank == 2)
      ctx.check(lastErrorHas("rank 0: its communicator failed (ncclRemoteError)"), ncclGetLastError(comm));
    ctx.check(out[0] == -7.0f && out[999] == -7.0f, "the output was written");
    ctx.check(seconds < 2.0, "the wait took " + std::to_string(seconds) + " s");
    ncclCommAbort(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Rank 0's and rank 1's parts of a call that rank 1 rejects (rank 0's part
// succeeds): a Send of 100 floats that rank 1 receives as 50, or a
// Broadcast whose count rank 1 does not share.
using RejectedCall = ncclResult_t (*)(int rank, ncclComm_t comm, std::vector<float>& data);

ncclResult_t mismatchedSendRecv(int rank, ncclComm_t comm, std::vector<float>& data) {
  return rank == 0 ? ncclSend(data.data(), 100, ncclFloat, 1, comm, nullptr)
                   : ncclRecv(data.data(), 50, ncclFloat, 0, comm, nullptr);
}

ncclResult_t mismatchedBroadcast(int rank, ncclComm_t comm, std::vector<float>& data) {
  return ncclBroadcast(data.data(), data.data(), rank == 0 ? 100 : 200, ncclFloat, 0, comm, nullptr);
}

// Rank 0's call after that: an AllReduce (it waits for rank 1 in a meeting
// or on a FIFO), or a first Send to rank 1 (it waits for rank 1's half of
// the connection setup, through the bootstrap).
using NextCall = ncclResult_t (*)(ncclComm_t comm, std::vector<float>& data);

ncclResult_t allReduce(ncclComm_t comm, std::vector<float>& data) {
  return ncclAllReduce(data.data(), data.data(), data.size(), ncclFloat, ncclSum, comm, nullptr);
}

ncclResult_t firstSendToRank1(ncclComm_t comm, std::vector<float>& data) {
  return ncclSend(data.data(), data.size(), ncclFloat, 1, comm, nullptr);
}

// Two ranks on `id`: after `call`, rank 1's communicator has failed; it
// stays alive (no abort, no exit) for 2.5 s. Rank 0's next call must end
// within 2 s with ncclRemoteError, its message holding `expected`.
void nextCallOfThePeerFailsAtOnce(RankContext& ctx, const ncclUniqueId& id, RejectedCall call,
                                  const char* expected, NextCall next = allReduce) {
  ncclComm_t comm = nullptr;
  if (!ctx.checkNccl(ncclCommInitRank(&comm, 2, id, ctx.rank), "init")) return;
  std::vector<float> data(200, 1.0f);
  ncclResult_t r = call(ctx.rank, comm, data);
  if (ctx.rank == 1) {
    ctx.check(r == ncclInvalidUsage, std::string("rank 1 got ") + ncclGetErrorString(r));
    usleep(2500000);  // neither aborts nor exits while rank 0 finds out
    ncclCommDestroy(comm);
    return;
  }
  ctx.check(r == ncclSuccess, std::string("rank 0's first call: ") + ncclGetErrorString(r));
  failsAtOnce(ctx, comm, "the next call", expected, [&] { return next(comm, data); });
  ncclCommDestroy(comm);
}

// A rank whose operation failed (here a receive of the wrong size) cannot
// take part again: its peers' next waits for it end at once with its reason.
// Before, the sender learned of it only at CHORUS_TIMEOUT. The same for a
// Broadcast whose readers reject the root's count, and for a first Send to
// the failed rank, which waits for it to set up its end of the connection.
TEST(FailedPeers, ARankWhoseOperationFailedEndsItsPeersWaitsAtOnce) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");
  RankOptions options;
  options.idCount = 3;
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    const char* reason = "rank 1: its communicator failed (ncclInvalidUsage): rank 1";
    nextCallOfThePeerFailsAtOnce(ctx, ctx.ids[0], mismatchedSendRecv, reason);
    nextCallOfThePeerFailsAtOnce(ctx, ctx.ids[1], mismatchedBroadcast, reason);
    nextCallOfThePeerFailsAtOnce(ctx, ctx.ids[2], mismatchedBroadcast, reason, firstSendToRank1);
  }, options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Without the arena of the direct algorithms (CHORUS_HOST_ALGO=ring here;
// ranks of one host in a communicator that spans hosts), a failed rank's
// shared-memory FIFOs carry its reason to their other ends. Before, the
// sender waited until CHORUS_TIMEOUT, or until the failed rank destroyed
// its communicator.
TEST(FailedPeers, ARankWhoseOperationFailedShutsItsSharedMemoryFifosDown) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv ring("CHORUS_HOST_ALGO", "ring");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    nextCallOfThePeerFailsAtOnce(ctx, ctx.id, mismatchedSendRecv,
                                 "rank 1: its communicator failed (ncclInvalidUsage): rank 1");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A first Send to a rank that has aborted its communicator (whose bootstrap
// listener may already be closed) ends at once too.
TEST(FailedPeers, AFirstSendToAnAbortedRankEndsAtOnce) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&comm, 2, ctx.id, ctx.rank), "init")) return;
    if (ctx.rank == 1) {
      ncclCommAbort(comm);
      usleep(2500000);  // alive, so that rank 0 learns of the abort, not of an exit
      return;
    }
    usleep(200000);  // rank 1 has aborted: its listener is closed
    std::vector<float> data(200, 1.0f);
    failsAtOnce(ctx, comm, "the send", "rank 1: its communicator was aborted (ncclCommAbort)",
                [&] { return firstSendToRank1(comm, data); });
    ncclCommAbort(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A rank that fails in the middle of a connection setup (rank 1's Sends to
// rank 0 and to rank 2, which has aborted) has handed rank 0 its half but
// registered nothing it could mark: rank 0's Recv from it ends at once all
// the same, since its wait also watches rank 1's arena slot.
TEST(FailedPeers, ARankThatFailsInAConnectionSetupEndsItsOtherPeersWaitsAtOnce) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");
  auto failures = runRankProcesses(3, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&comm, 3, ctx.id, ctx.rank), "init")) return;
    std::vector<float> data(200, 1.0f);
    if (ctx.rank == 2) {
      ncclCommAbort(comm);
      usleep(3000000);  // alive: the others learn of the abort, not of an exit
      return;
    }
    usleep(300000);  // rank 2 has aborted
    if (ctx.rank == 1) {
      ncclGroupStart();
      ncclSend(data.data(), 200, ncclFloat, 0, comm, nullptr);
      ncclSend(data.data(), 200, ncclFloat, 2, comm, nullptr);
      ncclResult_t r = ncclGroupEnd();
      ctx.check(r == ncclRemoteError, std::string("rank 1's sends: ") + ncclGetErrorString(r));
      usleep(2500000);  // failed, but neither aborts nor exits while rank 0 finds out
      ncclCommDestroy(comm);
      return;
    }
    failsAtOnce(ctx, comm, "the recv", "rank 1: its communicator failed (ncclRemoteError)",
                [&] { return ncclRecv(data.data(), 200, ncclFloat, 1, comm, nullptr); });
    ncclCommDestroy(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// ncclCommAbort ends a first Send that waits for its peer's half of the
// connection setup (on a non-blocking communicator, in the background).
TEST(FailedPeers, AbortEndsAFirstSendThatWaitsForItsPeer) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = nullptr;
    ncclResult_t r = ncclCommInitRankConfig(&comm, 2, ctx.id, ctx.rank, &config);
    ncclResult_t state = r;
    while (state == ncclInProgress) {
      usleep(1000);
      ncclCommGetAsyncError(comm, &state);
    }
    if (!ctx.checkNccl(state, "init")) return;
    if (ctx.rank == 1) {  // posts nothing
      usleep(3000000);
      ncclCommAbort(comm);
      return;
    }
    std::vector<float> data(200, 1.0f);
    r = ncclSend(data.data(), 200, ncclFloat, 1, comm, nullptr);
    ctx.check(r == ncclSuccess || r == ncclInProgress, std::string("send: ") + ncclGetErrorString(r));
    usleep(300000);  // the send waits for rank 1
    const auto start = std::chrono::steady_clock::now();
    ncclCommAbort(comm);
    const double seconds = secondsSince(start);
    ctx.check(seconds < 2.0, "the abort took " + std::to_string(seconds) + " s");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// ncclCommDestroy waits (bounded) until its receivers have taken what it
// sent; a receiver that has exited never will: the destroy returns at once.
// Before, it waited until CHORUS_TIMEOUT.
TEST(FailedPeers, DestroyDoesNotWaitForAReceiverThatHasExited) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (!ctx.checkNccl(ncclCommInitRank(&comm, 2, ctx.id, ctx.rank), "init")) return;
    std::vector<float> data(100, 1.0f);
    if (ctx.rank == 1) {
      // Takes the first message only, then exits without a destroy.
      ctx.checkNccl(ncclRecv(data.data(), 100, ncclFloat, 0, comm, nullptr), "recv");
      return;
    }
    ctx.checkNccl(ncclSend(data.data(), 100, ncclFloat, 1, comm, nullptr), "first send");
    ctx.checkNccl(ncclSend(data.data(), 100, ncclFloat, 1, comm, nullptr), "second send");
    usleep(500000);  // rank 1 has exited
    const auto start = std::chrono::steady_clock::now();
    ncclCommDestroy(comm);
    const double seconds = secondsSince(start);
    ctx.check(seconds < 2.0, "the destroy took " + std::to_string(seconds) + " s");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Over sockets (here NCCL_SHM_DISABLE=1, as between hosts) there is no
// arena: a rank whose operation failed shuts its connections down, and its
// peers' waits on them end at once. Before, the sender waited until
// CHORUS_TIMEOUT, or until the failed rank destroyed its communicator.
TEST(FailedPeers, ARankWhoseOperationFailedShutsItsSocketsDown) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv sockets("NCCL_SHM_DISABLE", "1");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    nextCallOfThePeerFailsAtOnce(ctx, ctx.id, mismatchedSendRecv, "closed by the peer");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(FailedPeers, KillingOneRankMakesTheOthersReturnAnError) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");  // the error must come from the death, not the deadline
  RankOptions options;
  options.timeoutSeconds = 40;
  auto start = std::chrono::steady_clock::now();
  auto failures = runRankProcesses(
      4,
      [](RankContext& ctx) {
        ncclComm_t comm = nullptr;
        if (!ctx.checkNccl(ncclCommInitRank(&comm, 4, ctx.id, ctx.rank), "init")) return;
        std::vector<float> data(1 << 20, 1.0f);
        ctx.checkNccl(ncclAllReduce(data.data(), data.data(), data.size(), ncclFloat, ncclSum, comm, nullptr),
                      "first allreduce");
        if (ctx.rank == 2) raise(SIGKILL);
        ncclResult_t r = ncclAllReduce(data.data(), data.data(), data.size(), ncclFloat, ncclSum, comm, nullptr);
        ctx.check(r == ncclRemoteError || r == ncclSystemError,
                  std::string("after a peer died, allreduce returned ") + ncclGetErrorString(r));
        ncclCommAbort(comm);
      },
      options);
  // Rank 2 dies of SIGKILL on purpose; every other rank must have succeeded.
  std::vector<std::string> unexpected;
  for (const std::string& f : failures)
    if (f != "rank 2: died of signal 9") unexpected.push_back(f);
  EXPECT_TRUE(unexpected.empty()) << joinFailures(unexpected);
  EXPECT_LT(secondsSince(start), 30.0);
}

// A non-blocking communicator with many operations queued behind one that
// waits for a peer that never comes: ncclCommAbort ends the waiting one and
// drops the rest at once, instead of running each of them into its wait.
TEST(FailedPeers, AbortDropsTheOperationsQueuedOnANonBlockingCommunicator) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");  // the end must come from the abort
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = nullptr;
    ncclResult_t r = ncclCommInitRankConfig(&comm, 2, ctx.id, ctx.rank, &config);
    if (!ctx.check(r == ncclSuccess || r == ncclInProgress, std::string("init returned ") + ncclGetErrorString(r)))
      return;
    ncclResult_t state = ncclInProgress;
    for (int i = 0; i < 30000 && state == ncclInProgress; ++i) {
      ncclCommGetAsyncError(comm, &state);
      if (state == ncclInProgress) usleep(1000);
    }
    if (!ctx.check(state == ncclSuccess, std::string("init ended with ") + ncclGetErrorString(state)))
      return;
    if (ctx.rank == 1) {
      usleep(3000000);  // calls nothing while rank 0 queues and aborts
      ncclCommAbort(comm);
      return;
    }
    constexpr int kQueued = 100;  // at ~0.15 s of waiting each, 15 s without dropping
    std::vector<float> data(1024, 1.0f);
    for (int i = 0; i < kQueued; ++i) {
      r = ncclAllReduce(data.data(), data.data(), data.size(), ncclFloat, ncclSum, comm, nullptr);
      ctx.check(r == ncclSuccess || r == ncclInProgress, std::string("allreduce ") + std::to_string(i) +
                " returned " + ncclGetErrorString(r));
    }
    usleep(500000);
    ncclCommGetAsyncError(comm, &state);
    ctx.check(state == ncclInProgress, std::string("with no peer, the queue is ") + ncclGetErrorString(state));
    const auto start = std::chrono::steady_clock::now();
    ctx.checkNccl(ncclCommAbort(comm), "ncclCommAbort");
    const double seconds = secondsSince(start);
    ctx.check(seconds < 5.0, "ncclCommAbort took " + std::to_string(seconds) + " s with " +
              std::to_string(kQueued) + " operations queued");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Through the kernel, an output that cannot be touched fails a collective
// on both ranks instead of crashing one: the kernel makes the copies, and
// refuses them. `run(comm, buffer)` runs it on 2 ranks, on rank 1 over
// `bytes` of memory without access (the range stays reserved, so that no
// later mapping takes it), on rank 0 over readable memory. Either rank may
// fail first: each gets the kernel's refusal, or its peer's failure quoting
// it, well before the deadline.
template <typename Run>
void expectInaccessibleOutputFailsBothRanks(size_t bytes, const char* what, Run run) {
  std::string why;
  if (!crossMemoryAllowed(&why)) GTEST_SKIP() << "cross-memory attach is forbidden here: " << why;
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedKernelCopies kernelCopies;
  ScopedEnv timeout("CHORUS_TIMEOUT", "20");
  auto failures = runRankProcesses(2, [&](RankContext& ctx) {
    ncclComm_t comm = initRankComm(ctx);
    if (comm == nullptr) return;
    std::vector<char> data(bytes, 1);
    char* buffer = data.data();
    if (ctx.rank == 1) {
      void* reserved = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (ctx.check(reserved != MAP_FAILED, "mmap of the inaccessible output"))
        buffer = static_cast<char*>(reserved);
    }
    const auto start = std::chrono::steady_clock::now();
    const ncclResult_t r = run(ctx, comm, buffer);
    const double seconds = secondsSince(start);
    ctx.check(seconds < 10.0, std::string("the ") + what + " took " + std::to_string(seconds) + " s");
    ctx.check(r == ncclInvalidUsage || r == ncclRemoteError,
              std::string("the ") + what + " returned " + ncclGetErrorString(r));
    ctx.check(lastErrorHas("cannot be written") || lastErrorHas("cannot be read"),
              ncclGetLastError(comm));
    ncclCommAbort(comm);
    if (buffer != data.data()) munmap(buffer, bytes);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Rank 1 reads the root's blocks into its output; the root, in place,
// writes rank 1's block into it.
TEST(CrossMemoryErrors, ABroadcastIntoAnInaccessibleOutputFailsBothRanksWithoutACrash) {
  const size_t count = 64 * 1024;
  expectInaccessibleOutputFailsBothRanks(
      count * sizeof(float), "broadcast", [&](RankContext&, ncclComm_t comm, char* buffer) {
        return ncclBroadcast(buffer, buffer, count, ncclFloat, 0, comm, nullptr);
      });
}

// AllGather ranks write their input into every peer's output. Rank 1
// gathers in place: rank 0 writes its block into rank 1's output, and rank
// 1 reads its own input (a block of that output) to write it into rank 0's.
TEST(CrossMemoryErrors, AnAllGatherIntoAnInaccessibleOutputFailsBothRanksWithoutACrash) {
  const size_t count = 64 * 1024;  // per rank
  expectInaccessibleOutputFailsBothRanks(
      2 * count * sizeof(float), "allgather", [&](RankContext& ctx, ncclComm_t comm, char* output) {
        const char* input = output + ctx.rank * count * sizeof(float);  // in place
        return ncclAllGather(input, output, count, ncclFloat, comm, nullptr);
      });
}

// Ranks of one host meet before moving data, so ranks that disagree on the
// operation all fail at once with a message, instead of reading the wrong
// amount or waiting for the deadline: a different count (small and large
// messages, and, where the kernel may copy, counts on either side of the
// smallest and the largest size it copies, so that ranks disagree on the
// mode too) and a different collective.
TEST(MismatchedCalls, EveryRankReportsInvalidUsageAtOnce) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "30");
  // The same limits whether or not ranks have cores of their own: 512 KiB
  // to 4 MiB of output per rank.
  ScopedEnv cma("CHORUS_CMA", "1");
  ScopedEnv cmaBytes("CHORUS_CMA_BYTES", "524288");
  ScopedEnv cmaSharedCoresBytes("CHORUS_CMA_SHARED_CORES_BYTES", "524288");
  ScopedEnv reduceMax("CHORUS_CMA_REDUCE_MAX_BYTES", "4194304");
  ScopedEnv sharedCoresMax("CHORUS_CMA_SHARED_CORES_MAX_BYTES", "4194304");
  constexpr int kCases = 5;
  RankOptions options;
  options.idCount = kCases;
  auto start = std::chrono::steady_clock::now();
  auto failures = runRankProcesses(3, [](RankContext& ctx) {
    // Rank 2 reduces half the count: 1 MiB against 2 MiB of floats, then
    // 256 against 512 KiB, then 4 against 8 MiB.
    const size_t counts[kCases] = {100, size_t{1} << 19, size_t{1} << 17, size_t{1} << 21, 1000};
    for (int c = 0; c < kCases; ++c) {
      ncclComm_t comm = nullptr;
      if (!ctx.checkNccl(ncclCommInitRank(&comm, 3, ctx.ids[c], ctx.rank), "init")) return;
      const size_t count = counts[c];
      std::vector<float> in(count, 1.0f), out(count, 0.0f);
      ncclResult_t r;
      if (c < kCases - 1)
        r = ncclAllReduce(in.data(), out.data(), ctx.rank == 2 ? count / 2 : count, ncclFloat,
                          ncclSum, comm, nullptr);
      else if (ctx.rank == 2)
        r = ncclBroadcast(in.data(), out.data(), count, ncclFloat, 0, comm, nullptr);
      else
        r = ncclAllReduce(in.data(), out.data(), count, ncclFloat, ncclSum, comm, nullptr);
      ctx.check(r == ncclInvalidUsage, "case " + std::to_string(c) + " gave " + ncclGetErrorString(r));
      ctx.check(lastErrorHas("differs from rank"), "case " + std::to_string(c) + ": message names the mismatch");
      ncclCommAbort(comm);
    }
  }, options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
  EXPECT_LT(secondsSince(start), 20.0);
}

}  // namespace
