// Every collective against the reference of harness/collective_check.h:
// rank counts as processes and as threads, every datatype and operator,
// sizes 0, 1, odd and large, every root, in place and out of place, one and
// several channels, shared memory and sockets.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "harness/collective_check.h"
#include "harness/ranks.h"
#include "runtime/comm.h"
#include "runtime/lent_registrations.h"
#include "transport/shm/node_arena.h"

using namespace chorus::test;

namespace {

const ncclDataType_t kAllTypes[] = {ncclInt8,    ncclUint8,   ncclInt32,      ncclUint32,
                                    ncclInt64,   ncclUint64,  ncclFloat16,    ncclFloat32,
                                    ncclFloat64, ncclBfloat16, ncclFloat8e4m3, ncclFloat8e5m2};
const int kAllOps[] = {ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg, kPreMulSumTwo};
const Coll kAllColls[] = {Coll::AllReduce, Coll::Broadcast, Coll::Reduce,  Coll::AllGather,
                          Coll::ReduceScatter, Coll::AlltoAll, Coll::Gather, Coll::Scatter};

bool supportsInPlace(Coll coll) { return coll != Coll::AlltoAll; }
bool hasRoot(Coll coll) {
  return coll == Coll::Broadcast || coll == Coll::Reduce || coll == Coll::Gather || coll == Coll::Scatter;
}

// The cases one communicator runs: every datatype and operator at small odd
// sizes, every root at one size, both placements; large sizes for fewer
// combinations. The quick matrix trims sizes as ranks grow (more ranks than
// cores make each step a context switch); the full one (label "full") does not.
std::vector<CollCase> matrix(int nranks, bool full) {
  std::vector<CollCase> cases;
  std::vector<size_t> smallCounts{0, 1, 7, 1023, 4099};
  if (!full) smallCounts = nranks <= 4 ? std::vector<size_t>{0, 1, 7, 1023} : std::vector<size_t>{0, 7};
  for (Coll coll : kAllColls) {
    std::vector<int> roots{0};
    if (hasRoot(coll))
      for (int r = 1; r < nranks; ++r) roots.push_back(r);
    const std::vector<int> ops = isReduction(coll) ? std::vector<int>(std::begin(kAllOps), std::end(kAllOps))
                                                   : std::vector<int>{ncclSum};
    for (ncclDataType_t type : kAllTypes)
      for (int op : ops)
        for (size_t count : smallCounts)
          for (bool inPlace : {false, true}) {
            if (inPlace && !supportsInPlace(coll)) continue;
            for (int root : roots) {
              if (count != 7 && root != 0 && root != nranks - 1) continue;
              cases.push_back(CollCase{coll, type, op, count, root, inPlace});
            }
          }
    // Large: 1 MiB + 5 elements; 64 MiB of floats in the full matrix.
    std::vector<ncclDataType_t> largeTypes{ncclFloat32};
    if (full || nranks <= 4) largeTypes = {ncclFloat32, ncclBfloat16, ncclInt64};
    for (ncclDataType_t type : largeTypes)
      cases.push_back(CollCase{coll, type, ncclSum, (1u << 20) + 5, nranks - 1, false});
    // 64 MiB buffers: AllReduce's per rank, AllGather's output in total.
    if (full && coll == Coll::AllReduce)
      cases.push_back(CollCase{coll, ncclFloat32, ncclSum, (64u << 20) / 4, 0, true});
    if (full && coll == Coll::AllGather)
      cases.push_back(CollCase{coll, ncclFloat32, ncclSum, (64u << 20) / 4 / static_cast<size_t>(nranks), 0, true});
  }
  return cases;
}

// For tests of thousands of small hand-offs between more ranks than cores:
// each may cost a context switch, which a loaded machine or the sanitizers
// make several times slower (17 s alone under ASan, over 120 s beside three
// busy loops). ctest's own limit for these tests is 300 s.
RankOptions manyHandOffs() {
  RankOptions options;
  options.timeoutSeconds = 280;
  return options;
}

// Runs body(comm) on a communicator of every rank of ctx, then destroys it.
template <typename Body>
void onComm(RankContext& ctx, Body body) {
  ncclComm_t comm = nullptr;
  if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "ncclCommInitRank")) return;
  body(comm);
  ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
}

void runMatrix(RankContext& ctx, bool full) {
  onComm(ctx, [&](ncclComm_t comm) {
    for (const CollCase& c : matrix(ctx.nranks, full)) {
      runAndCheck(ctx, comm, c);
      if (ctx.failures.size() > 5) break;
    }
  });
}

class CollectivesOnProcesses : public ::testing::TestWithParam<int> {};

TEST_P(CollectivesOnProcesses, EveryCollectiveTypeAndOpIsExact) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankProcesses(GetParam(), [](RankContext& ctx) { runMatrix(ctx, false); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Ranks, CollectivesOnProcesses, ::testing::Values(1, 2, 3, 4, 5, 7, 8));

class CollectivesOnThreads : public ::testing::TestWithParam<int> {};

TEST_P(CollectivesOnThreads, EveryCollectiveTypeAndOpIsExact) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankThreads(GetParam(), [](RankContext& ctx) { runMatrix(ctx, false); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Ranks, CollectivesOnThreads, ::testing::Values(1, 2, 6, 11, 16));

class FullCollectivesOnProcesses : public ::testing::TestWithParam<int> {};

TEST_P(FullCollectivesOnProcesses, EveryCollectiveTypeAndOpIsExact) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankProcesses(GetParam(), [](RankContext& ctx) { runMatrix(ctx, true); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Ranks, FullCollectivesOnProcesses, ::testing::Values(2, 3, 4, 5, 7, 8));

class FullCollectivesOnThreads : public ::testing::TestWithParam<int> {};

TEST_P(FullCollectivesOnThreads, EveryCollectiveTypeAndOpIsExact) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  // Past 8 threads on a 2-core machine every ring step is a context switch:
  // those counts run the quick matrix, to keep CI's full run in minutes.
  const bool full = GetParam() <= 8;
  auto failures = runRankThreads(GetParam(), [full](RankContext& ctx) { runMatrix(ctx, full); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Together with the quick suite (1, 2, 6, 11, 16): every count from 1 to 16.
INSTANTIATE_TEST_SUITE_P(Ranks, FullCollectivesOnThreads,
                         ::testing::Values(3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15));

TEST(FullCollectivesSockets, EveryCollectiveIsExactWithShmDisabled) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv shm("NCCL_SHM_DISABLE", "1");
  auto failures = runRankProcesses(4, [](RankContext& ctx) { runMatrix(ctx, true); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(CollectivesSockets, EveryCollectiveIsExactWithShmDisabled) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv shm("NCCL_SHM_DISABLE", "1");
  auto failures = runRankProcesses(3, [](RankContext& ctx) { runMatrix(ctx, false); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(CollectivesChannels, FourChannelsGiveTheSameResults) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv ring("CHORUS_HOST_ALGO", "ring");
  ScopedEnv channels("NCCL_MIN_NCHANNELS", "4");
  ScopedEnv maxChannels("NCCL_MAX_NCHANNELS", "4");
  auto failures = runRankProcesses(3, [](RankContext& ctx) { runMatrix(ctx, false); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(CollectivesSmallSlots, ManySlotsPerChunkAndWrapAroundTheFifo) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv ring("CHORUS_HOST_ALGO", "ring");
  ScopedEnv buff("NCCL_BUFFSIZE", "16384");  // 2 KiB slots
  auto failures = runRankProcesses(4, [](RankContext& ctx) { runMatrix(ctx, false); }, manyHandOffs());
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// The ring on threads of one process (processes are covered above).
TEST(CollectivesRing, EveryCollectiveIsExactOnThreads) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv ring("CHORUS_HOST_ALGO", "ring");
  auto failures = runRankThreads(5, [](RankContext& ctx) { runMatrix(ctx, false); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Direct algorithms with every AllReduce split into blocks (no one-shot), in
// processes (staged rounds) and threads (buffers shared in place, each
// rank writing its block into its peers' outputs).
TEST(CollectivesDirect, SplitAllReduceForEverySizeOnProcesses) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv cma("CHORUS_CMA", "0");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "0");
  auto failures = runRankProcesses(3, [](RankContext& ctx) { runMatrix(ctx, false); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(CollectivesDirect, SplitAllReduceForEverySizeOnThreads) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "0");
  auto failures = runRankThreads(4, [](RankContext& ctx) { runMatrix(ctx, false); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Every output copied into with stores that bypass the caches: staged
// rounds between processes, buffers read in place between threads.
TEST(CollectivesDirect, OutputsWrittenPastTheCachesAreExactOnProcesses) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv cma("CHORUS_CMA", "0");
  ScopedEnv stream("CHORUS_STREAM_BYTES", "1");
  auto failures = runRankProcesses(3, [](RankContext& ctx) { runMatrix(ctx, false); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(CollectivesDirect, OutputsWrittenPastTheCachesAreExactOnThreads) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv stream("CHORUS_STREAM_BYTES", "1");
  auto failures = runRankThreads(3, [](RankContext& ctx) { runMatrix(ctx, false); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A staging area of 4 KiB: hundreds of rounds per large operation, pieces
// that do not divide the message, and both parities reused many times
// (AllGather and Broadcast too: not through the kernel).
TEST(CollectivesDirect, ManyRoundsThroughASmallStagingArea) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv cma("CHORUS_CMA", "0");
  ScopedEnv stage("CHORUS_STAGE_BYTES", "4160");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "1024");
  auto failures = runRankProcesses(4, [](RankContext& ctx) { runMatrix(ctx, false); }, manyHandOffs());
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// The quick matrix, and in-place AllReduce and ReduceScatter of blocks of
// many chunks: each chunk a rank writes into a peer (through the kernel, or
// a mapping of its buffer) is one it has just read there.
constexpr size_t kLargeCount = (1u << 20) + 5;
std::vector<CollCase> matrixWithLargeInPlaceReductions(int nranks) {
  std::vector<CollCase> cases = matrix(nranks, false);
  for (int op : {int{ncclSum}, kPreMulSumTwo}) {
    cases.push_back(CollCase{Coll::AllReduce, ncclFloat32, op, kLargeCount, 0, true});
    cases.push_back(CollCase{Coll::ReduceScatter, ncclFloat32, op, kLargeCount / 4, 0, true});
  }
  return cases;
}

// Every collective of every size reaches peers' buffers through the
// kernel: an AllGather rank writes its input into every peer's output,
// Broadcast readers copy, a Broadcast root writes a block into each
// reader's output, reductions read peers' pieces into a cached copy, and
// AllReduce (every size split into blocks) writes each rank's block into
// its peers' outputs. Every type, op, size, root and placement exact, as
// processes.
void runThroughTheKernel(int nranks, const char* reduceMaxBytes) {
  std::string why;
  if (!crossMemoryAllowed(&why)) GTEST_SKIP() << "cross-memory attach is forbidden here: " << why;
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedKernelCopies kernelCopies;
  ScopedEnv reduceMax("CHORUS_CMA_REDUCE_MAX_BYTES", reduceMaxBytes);
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "0");
  auto failures = runRankProcesses(nranks, [](RankContext& ctx) {
    onComm(ctx, [&](ncclComm_t comm) {
      if (!ctx.check(copiesEverySizeThroughTheKernel(comm->direct),
                     "the communicator does not copy every size through the kernel"))
        return;
      for (const CollCase& c : matrixWithLargeInPlaceReductions(ctx.nranks)) {
        runAndCheck(ctx, comm, c);
        if (ctx.failures.size() > 5) break;
      }
    });
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

class CollectivesThroughTheKernel : public ::testing::TestWithParam<int> {};

TEST_P(CollectivesThroughTheKernel, EveryCollectiveTypeAndOpIsExact) {
  runThroughTheKernel(GetParam(), "1099511627776");
}

INSTANTIATE_TEST_SUITE_P(Ranks, CollectivesThroughTheKernel, ::testing::Values(2, 3, 4, 5));

// Every rank registers an ncclMemAlloc block for input and one for output
// and waits until every peer has mapped both (they are then lent).
struct LentBlocks {
  void* send = nullptr;
  void* recv = nullptr;
  void* handles[2] = {};
  size_t bytes = 0;
};

bool lendBlocks(RankContext& ctx, ncclComm_t comm, size_t bytes, LentBlocks* blocks) {
  blocks->bytes = bytes;
  if (!ctx.checkNccl(ncclMemAlloc(&blocks->send, bytes), "ncclMemAlloc") ||
      !ctx.checkNccl(ncclMemAlloc(&blocks->recv, bytes), "ncclMemAlloc") ||
      !ctx.checkNccl(ncclCommRegister(comm, blocks->send, bytes, &blocks->handles[0]), "register") ||
      !ctx.checkNccl(ncclCommRegister(comm, blocks->recv, bytes, &blocks->handles[1]), "register"))
    return false;
  chorus::LentRegistrations& lending = *comm->lentRegistrations;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto lent = [&] {
    return lending.find(blocks->send, bytes).id != 0 && lending.find(blocks->recv, bytes).id != 0;
  };
  while (!lent() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return ctx.check(lent(), "peers did not map the registered blocks within 20 s");
}

void releaseBlocks(RankContext& ctx, ncclComm_t comm, LentBlocks* blocks) {
  for (void*& handle : blocks->handles)
    if (handle != nullptr) ctx.checkNccl(ncclCommDeregister(comm, handle), "deregister");
  blocks->handles[0] = blocks->handles[1] = nullptr;
  ctx.checkNccl(ncclMemFree(blocks->send), "ncclMemFree");
  ctx.checkNccl(ncclMemFree(blocks->recv), "ncclMemFree");
}

// Lent buffers read in place by every rank together, per collective, while
// `cases` run on `given` (an AllReduce of each rank's counts).
std::map<Coll, uint64_t> runCountingLentReads(RankContext& ctx, ncclComm_t comm,
                                              const std::vector<CollCase>& cases,
                                              const GivenBuffers& given) {
  const Coll direct[] = {Coll::AllReduce, Coll::Broadcast, Coll::Reduce, Coll::AllGather,
                         Coll::ReduceScatter};
  uint64_t reads[5] = {};
  for (const CollCase& c : cases) {
    const uint64_t before = comm->lentRegistrations->resolvedCount();
    runAndCheck(ctx, comm, c, &given);
    for (int k = 0; k < 5; ++k)
      if (direct[k] == c.coll) reads[k] += comm->lentRegistrations->resolvedCount() - before;
    if (!ctx.failures.empty()) {
      ctx.fail("at " + describe(c));
      return {};
    }
  }
  ctx.checkNccl(ncclAllReduce(reads, reads, 5, ncclUint64, ncclSum, comm, nullptr), "AllReduce");
  std::map<Coll, uint64_t> total;
  for (int k = 0; k < 5; ++k) total[direct[k]] = reads[k];
  return total;
}

// Registered host blocks (ncclMemAlloc) are lent: peers map them and read
// and write them in place, instead of through the kernel (`throughKernel`:
// every size) or of staged copies (CHORUS_CMA=0: operations from 4 KiB per
// rank, 64 KiB with more ranks than cores, 128 KiB one-way; the large cases
// lend either way). The whole matrix, with large in-place reductions whose
// ranks write into the mappings they read, with every rank's buffers lent,
// then with every rank's but rank 0's (reached as before while the others
// are read in place, in the same operations): exact, and while every rank
// lends, every collective reads lent buffers.
void runWithLentBlocks(int nranks, bool throughKernel) {
  std::string why;
  if (throughKernel && !crossMemoryAllowed(&why))
    GTEST_SKIP() << "cross-memory attach is forbidden here: " << why;
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedKernelCopies kernelCopies;
  ScopedEnv cma("CHORUS_CMA", throughKernel ? "1" : "0");
  ScopedEnv reduceMax("CHORUS_CMA_REDUCE_MAX_BYTES", "1099511627776");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "0");
  auto failures = runRankProcesses(nranks, [throughKernel](RankContext& ctx) {
    onComm(ctx, [&](ncclComm_t comm) {
      if (!ctx.check(comm->lentRegistrations != nullptr, "the communicator lends nothing") ||
          !ctx.check(copiesEverySizeThroughTheKernel(comm->direct) == throughKernel,
                     "the communicator does not copy as asked"))
        return;
      const std::vector<CollCase> cases = matrixWithLargeInPlaceReductions(ctx.nranks);
      // The largest case: 1 MiB + 5 int64 elements per rank and block.
      const size_t bytes = kLargeCount * 8 * static_cast<size_t>(ctx.nranks);
      LentBlocks blocks;
      if (!lendBlocks(ctx, comm, bytes, &blocks)) return releaseBlocks(ctx, comm, &blocks);
      const GivenBuffers given{blocks.send, blocks.recv, bytes};
      for (bool rankZeroLends : {true, false}) {
        const std::string lenders = rankZeroLends ? "every rank" : "every rank but rank 0";
        barrier(ctx, comm);
        const std::map<Coll, uint64_t> reads = runCountingLentReads(ctx, comm, cases, given);
        if (!ctx.failures.empty()) {
          ctx.fail("lent by " + lenders);
          return releaseBlocks(ctx, comm, &blocks);
        }
        for (const auto& [coll, count] : reads)
          ctx.check(count > 0 || (!rankZeroLends && ctx.nranks == 2),
                    "lent by " + lenders + ": " + collName(coll) +
                        " read no peer's block in place");
        if (ctx.rank == 0 && blocks.handles[0] != nullptr)
          for (void*& handle : blocks.handles) {
            ctx.checkNccl(ncclCommDeregister(comm, handle), "deregister");
            handle = nullptr;
          }
      }
      releaseBlocks(ctx, comm, &blocks);
    });
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

class CollectivesOnLentHostBlocks : public ::testing::TestWithParam<int> {};

TEST_P(CollectivesOnLentHostBlocks, ThroughTheKernelEveryCollectiveIsExact) {
  runWithLentBlocks(GetParam(), true);
}
TEST_P(CollectivesOnLentHostBlocks, StagedEveryCollectiveIsExact) {
  runWithLentBlocks(GetParam(), false);
}
INSTANTIATE_TEST_SUITE_P(Ranks, CollectivesOnLentHostBlocks, ::testing::Values(2, 3, 4));

// One-shot AllReduce (up to CHORUS_ONESHOT_BYTES) reads every rank's input
// while each rank writes its output: a rank lends its input only where it
// is not its output. Out of place, peers read the lent inputs in place (from
// 4 KiB; 64 KiB with more ranks than cores); in place, nothing is lent; the
// results are exact either way, and with one rank in place and one not.
TEST(CollectivesOnLentHostBlocksOneShot, AllReduceLendsOnlyInputsThatAreNotOutputs) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "65536");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    onComm(ctx, [&](ncclComm_t comm) {
      if (!ctx.check(comm->lentRegistrations != nullptr, "the communicator lends nothing")) return;
      LentBlocks blocks;
      // (The check fits every case in count x ranks elements, as AllGather.)
      if (!lendBlocks(ctx, comm, 2 * 65536, &blocks)) return releaseBlocks(ctx, comm, &blocks);
      const GivenBuffers given{blocks.send, blocks.recv, blocks.bytes};
      for (bool inPlace : {false, true}) {
        std::vector<CollCase> cases;
        for (size_t count : {1000, 1024, 4099, 16384})
          for (int op : {ncclSum, ncclMax, ncclProd})
            cases.push_back(CollCase{Coll::AllReduce, ncclFloat32, op, count, 0, inPlace});
        const uint64_t reads = runCountingLentReads(ctx, comm, cases, given)[Coll::AllReduce];
        if (!ctx.failures.empty()) break;
        ctx.check(inPlace ? reads == 0 : reads > 0,
                  std::string(inPlace ? "in place, " : "out of place, ") + std::to_string(reads) +
                      " lent inputs read");
      }
      // Rank 0 in place (staged), rank 1 out of place (lent), in one operation.
      constexpr size_t kCount = 16384;  // 64 KiB: lent whether or not ranks share cores
      float* send = static_cast<float*>(blocks.send);
      float* recv = static_cast<float*>(blocks.recv);
      float* input = ctx.rank == 0 ? recv : send;
      for (size_t i = 0; i < kCount; ++i) {
        input[i] = static_cast<float>(ctx.rank * 1000 + i % 997);
        if (ctx.rank != 0) recv[i] = -1;
      }
      const uint64_t before = comm->lentRegistrations->resolvedCount();
      ctx.checkNccl(ncclAllReduce(input, recv, kCount, ncclFloat32, ncclSum, comm, nullptr),
                    "AllReduce, one rank in place");
      size_t wrong = 0;
      for (size_t i = 0; i < kCount; ++i)
        wrong += recv[i] != static_cast<float>(1000 + 2 * (i % 997));
      ctx.check(wrong == 0, "one rank in place: " + std::to_string(wrong) + " wrong elements");
      // Rank 0 reads rank 1's input in place; rank 1 reads rank 0's copy.
      const uint64_t read = comm->lentRegistrations->resolvedCount() - before;
      ctx.check(ctx.rank == 0 ? read > 0 : read == 0,
                "one rank in place: " + std::to_string(read) + " lent inputs read");
      releaseBlocks(ctx, comm, &blocks);
    });
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Reductions of more than 4 KiB of input per rank stay staged while the
// smaller ones, AllGather and Broadcast go through the kernel: one
// communicator switching between the two from one operation to the next.
TEST(CollectivesThroughTheKernelUpToALimit, LargerReductionsStayStagedAndAllAreExact) {
  runThroughTheKernel(3, "4096");
}

// Small operations travel in the ranks' operation lines (up to 32 bytes) or
// in the slots that go with them (up to 8 KiB in one-way rounds, 1 KiB in
// rounds where every rank publishes), which a publishing rank (a Broadcast
// root, Reduce's other ranks) may run several rounds ahead through; runs of
// them, with roots and sizes changing (up to and past every limit) and
// larger staged ones between, are all exact.
TEST(CollectivesDirect, RunsOfSmallOperationsWithPublishersAhead) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankProcesses(3, [](RankContext& ctx) {
    onComm(ctx, [&](ncclComm_t comm) {
      const Coll colls[] = {Coll::Broadcast, Coll::Reduce, Coll::Broadcast, Coll::AllReduce,
                            Coll::AllGather, Coll::ReduceScatter};
      for (int i = 0; i < 240 && ctx.failures.empty(); ++i) {
        const Coll coll = colls[i % 6];
        // int32 counts straddle the 32 inline bytes and the 1 KiB and 8 KiB
        // slot limits (a ReduceScatter round stages twice as much: 4/5 and
        // 128/129); every 19th is staged. 17 counts: every collective meets
        // every count.
        const size_t counts[] = {1,   4,   5,   8,   9,   10,   60,   85,  86,
                                 128, 129, 255, 256, 257, 2047, 2048, 2049};
        const size_t count = i % 19 == 18 ? 3001 : counts[i % 17];
        const CollCase c{coll, ncclInt32, ncclSum, count, (i / 6) % ctx.nranks, i % 4 == 0};
        runAndCheck(ctx, comm, c);
        if (!ctx.failures.empty()) ctx.fail("at operation " + std::to_string(i) + ": " + describe(c));
      }
    });
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Broadcast and Reduce of up to 64 KiB run in rounds of one 8 KiB slot
// each, the publishers running ahead of their readers: messages just
// under, at and over a slot, of several slots, and at and over 64 KiB
// (where one staged round takes over), every root, both placements, one
// after another in one communicator.
TEST(CollectivesDirect, OneWayMessagesOfSeveralSlotsAreExact) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv cma("CHORUS_CMA", "0");
  auto failures = runRankProcesses(3, [](RankContext& ctx) {
    onComm(ctx, [&](ncclComm_t comm) {
      const size_t floatCounts[] = {2047, 2048, 2049, 6000, 16383, 16384, 16385};
      for (Coll coll : {Coll::Broadcast, Coll::Reduce})
        for (size_t count : floatCounts)
          for (int root = 0; root < ctx.nranks; ++root)
            for (bool inPlace : {false, true}) {
              runAndCheck(ctx, comm, CollCase{coll, ncclFloat32, ncclSum, count, root, inPlace});
              // The same bytes in int8: four times the elements.
              runAndCheck(ctx, comm, CollCase{coll, ncclInt8, ncclSum, count * 4, root, inPlace});
              if (ctx.failures.size() > 5) return;
            }
    });
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// How big a round is depends on whether every rank has a core of its own,
// which each process learns from its CPU affinity: ranks agree on it (the
// smaller rounds unless all have a core). Here rank 1 is bound to one CPU,
// rank 0 is not; multi-round operations of every collective stay exact.
TEST(CollectivesDirect, RanksWithDifferentAffinitiesAgreeOnTheirRounds) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "30");
  auto failures = runRankProcesses(2, [](RankContext& ctx) {
    if (ctx.rank == 1) {
      cpu_set_t set;
      CPU_ZERO(&set);
      if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int first = 0;
        while (first < CPU_SETSIZE && !CPU_ISSET(first, &set)) ++first;
        CPU_ZERO(&set);
        CPU_SET(first, &set);
        ctx.check(sched_setaffinity(0, sizeof(set), &set) == 0, "binding rank 1 to one CPU");
      }
    }
    onComm(ctx, [&](ncclComm_t comm) {
      // 1.2 MB per rank: several rounds of either size.
      for (Coll coll : {Coll::AllReduce, Coll::AllGather, Coll::ReduceScatter, Coll::Broadcast,
                        Coll::Reduce})
        runAndCheck(ctx, comm, CollCase{coll, ncclFloat32, ncclSum, 300001, 1, false});
    });
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A Broadcast root and Reduce's other ranks only publish: they run ahead of
// slow readers through the operation lines and their slots, never further
// than the lines they have. Each operation carries values of its own, so a line reused
// too early would show. The readers stop at the start of each run, long
// enough for the publisher to fill every line and wait.
TEST(CollectivesDirect, PublishersRunAheadOfSlowReadersWithoutOverwritingThem) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  auto failures = runRankProcesses(3, [](RankContext& ctx) {
    onComm(ctx, [&](ncclComm_t comm) {
      const int root = 1;
      const int run = chorus::kArenaLines + 60;  // operations of one kind in a row
      for (int i = 0; i < 3 * run && ctx.failures.empty(); ++i) {
        const bool broadcast = (i / run) % 2 == 0;  // Broadcasts, Reduces, Broadcasts
        // int32: 4..32 bytes (in the line), 36..8192 bytes (in its slot)
        const size_t count = static_cast<size_t>(i % 2 == 0 ? 1 + i % 8 : 9 + (i * 37) % 2040);
        const bool reader = broadcast ? ctx.rank != root : ctx.rank == root;
        if (reader && (i % run == 3 || i % run == run / 2)) usleep(50000);
        std::vector<int32_t> in(count), out(count, -1);
        for (size_t j = 0; j < count; ++j) in[j] = i * 1000 + ctx.rank * 100 + static_cast<int32_t>(j);
        ncclResult_t r = broadcast
            ? ncclBroadcast(in.data(), out.data(), count, ncclInt32, root, comm, nullptr)
            : ncclReduce(in.data(), out.data(), count, ncclInt32, ncclSum, root, comm, nullptr);
        if (!ctx.checkNccl(r, "operation " + std::to_string(i))) break;
        if (!broadcast && ctx.rank != root) continue;
        for (size_t j = 0; j < count; ++j) {
          const int32_t element = i * 1000 + static_cast<int32_t>(j);
          const int32_t expected = broadcast ? element + root * 100
                                             : ctx.nranks * element + 100 * (ctx.nranks * (ctx.nranks - 1) / 2);
          if (!ctx.check(out[j] == expected, "operation " + std::to_string(i) + " element " +
                                                 std::to_string(j) + ": " + std::to_string(out[j]) +
                                                 ", expected " + std::to_string(expected)))
            break;
        }
      }
    });
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
