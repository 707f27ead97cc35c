// Which mode a host operation of the direct algorithms runs in: the sizes
// that send it through the kernel, with a core per rank and with ranks
// sharing cores, and the cases that never go there.
#include "runtime/direct_mode.h"

#include <gtest/gtest.h>

namespace chorus {
namespace {

AgreedSettings kernelCopySettings(bool coreEach) {
  AgreedSettings settings;
  settings.crossMemory = true;
  settings.cma = kCmaAuto;
  settings.kernelCopiesPay = true;
  settings.coreEach = coreEach;
  settings.atMostTwoRanksPerCore = true;
  settings.cmaBytes = 8192;
  settings.cmaOneWayBytes = 32768;
  settings.cmaReduceMaxBytes = 16 << 20;
  settings.cmaSharedCoresBytes = 512 << 10;
  settings.cmaSharedCoresMaxBytes = 4 << 20;
  return settings;
}

DirectState stateFor(const AgreedSettings& settings) {
  DirectState state;
  setKernelCopyLimits(settings, &state);
  return state;
}

// The mode of an operation with `bytes` in both its input and its output.
DirectMode modeAt(const DirectState& state, OpKind kind, size_t bytes) {
  return directModeFor(state, kind, bytes, bytes, false);
}

TEST(DirectMode, WithACorePerRankKernelCopiesStartAtTheirThresholds) {
  const DirectState state = stateFor(kernelCopySettings(true));
  ASSERT_TRUE(state.crossMemory);
  for (OpKind kind : {OpKind::AllReduce, OpKind::AllGather, OpKind::ReduceScatter}) {
    EXPECT_EQ(modeAt(state, kind, 8191), DirectMode::Staged);
    EXPECT_EQ(modeAt(state, kind, 8192), DirectMode::CrossMemory);
  }
  for (OpKind kind : {OpKind::Broadcast, OpKind::Reduce}) {
    EXPECT_EQ(modeAt(state, kind, 32767), DirectMode::Staged);
    EXPECT_EQ(modeAt(state, kind, 32768), DirectMode::CrossMemory);
  }
  // Copies have no largest size; reductions stop at their input limit.
  EXPECT_EQ(modeAt(state, OpKind::AllGather, size_t{1} << 30), DirectMode::CrossMemory);
  EXPECT_EQ(modeAt(state, OpKind::Broadcast, size_t{1} << 30), DirectMode::CrossMemory);
  EXPECT_EQ(modeAt(state, OpKind::AllReduce, 16 << 20), DirectMode::CrossMemory);
  for (OpKind kind : {OpKind::AllReduce, OpKind::ReduceScatter, OpKind::Reduce})
    EXPECT_EQ(modeAt(state, kind, (16 << 20) + 1), DirectMode::Staged);
  // ReduceScatter's input is nranks times its output.
  EXPECT_EQ(directModeFor(state, OpKind::ReduceScatter, 32 << 20, 8 << 20, false),
            DirectMode::Staged);
}

TEST(DirectMode, WithRanksSharingCoresKernelCopiesRunInAWindowOfSizes) {
  const DirectState state = stateFor(kernelCopySettings(false));
  ASSERT_TRUE(state.crossMemory);
  for (OpKind kind : {OpKind::AllReduce, OpKind::AllGather, OpKind::ReduceScatter,
                      OpKind::Broadcast, OpKind::Reduce}) {
    EXPECT_EQ(modeAt(state, kind, 32768), DirectMode::Staged);
    EXPECT_EQ(modeAt(state, kind, (512 << 10) - 1), DirectMode::Staged);
    EXPECT_EQ(modeAt(state, kind, 512 << 10), DirectMode::CrossMemory);
    EXPECT_EQ(modeAt(state, kind, 4 << 20), DirectMode::CrossMemory);
    EXPECT_EQ(modeAt(state, kind, (4 << 20) + 1), DirectMode::Staged);
  }
}

TEST(DirectMode, OneShotThreadsAndSlowCrowdedOrRefusedKernelCopiesDecideFirst) {
  const AgreedSettings settings = kernelCopySettings(true);
  DirectState state = stateFor(settings);
  EXPECT_EQ(directModeFor(state, OpKind::AllReduce, 1 << 20, 1 << 20, true), DirectMode::Staged);
  state.allInThisProcess = true;
  EXPECT_EQ(modeAt(state, OpKind::AllReduce, 1 << 20), DirectMode::Shared);
  EXPECT_EQ(directModeFor(state, OpKind::AllReduce, 64, 64, true), DirectMode::Staged);

  AgreedSettings slow = settings;
  slow.kernelCopiesPay = false;
  EXPECT_FALSE(stateFor(slow).crossMemory);
  EXPECT_EQ(modeAt(stateFor(slow), OpKind::AllGather, 1 << 20), DirectMode::Staged);
  slow.cma = kCmaOn;  // forced: timing does not matter, sizes do
  EXPECT_TRUE(stateFor(slow).crossMemory);
  slow.coreEach = false;
  EXPECT_EQ(modeAt(stateFor(slow), OpKind::AllGather, 1 << 20), DirectMode::CrossMemory);
  EXPECT_EQ(modeAt(stateFor(slow), OpKind::AllGather, 64 << 10), DirectMode::Staged);
  EXPECT_EQ(modeAt(stateFor(slow), OpKind::AllGather, 8 << 20), DirectMode::Staged);
  AgreedSettings crowded = kernelCopySettings(false);
  crowded.atMostTwoRanksPerCore = false;
  EXPECT_FALSE(stateFor(crowded).crossMemory);
  crowded.cma = kCmaOn;
  EXPECT_EQ(modeAt(stateFor(crowded), OpKind::AllReduce, 1 << 20), DirectMode::CrossMemory);
  AgreedSettings unreachable = settings;
  unreachable.crossMemory = false;
  unreachable.cma = kCmaOn;
  EXPECT_FALSE(stateFor(unreachable).crossMemory);
}

// Ranks lend registered buffers through the kernel at every size, staged
// from their limits (one-way operations from theirs, judged by the larger
// buffer), and never without registrations.
TEST(DirectMode, LendingFollowsTheModeAndTheStagedLimits) {
  struct NoBuffers final : RegisteredBuffers {
    ArenaBufferRef find(const void*, size_t) override { return {}; }
    ncclResult_t resolve(int, const ArenaBufferRef&, const char**) override {
      return ncclInternalError;
    }
  } registered;
  DirectState state = stateFor(kernelCopySettings(true));
  EXPECT_FALSE(lendsBuffers(state, OpKind::AllGather, DirectMode::CrossMemory, 1 << 20, 1 << 20));
  state.registered = &registered;
  state.lendStagedBytes = 4096;
  state.lendStagedOneWayBytes = 131072;
  EXPECT_TRUE(lendsBuffers(state, OpKind::AllGather, DirectMode::CrossMemory, 8, 8));
  EXPECT_FALSE(lendsBuffers(state, OpKind::AllGather, DirectMode::Shared, 1 << 20, 1 << 20));
  EXPECT_FALSE(lendsBuffers(state, OpKind::AllGather, DirectMode::Staged, 4095, 4095));
  EXPECT_TRUE(lendsBuffers(state, OpKind::AllGather, DirectMode::Staged, 2048, 4096));
  EXPECT_TRUE(lendsBuffers(state, OpKind::ReduceScatter, DirectMode::Staged, 4096, 1024));
  EXPECT_FALSE(lendsBuffers(state, OpKind::Broadcast, DirectMode::Staged, 131071, 131071));
  EXPECT_TRUE(lendsBuffers(state, OpKind::Reduce, DirectMode::Staged, 131072, 131072));
  // AllReduce, one-shot or not, from the same size (a one-shot one lends
  // its input only where it is not its output: lentSides).
  EXPECT_TRUE(lendsBuffers(state, OpKind::AllReduce, DirectMode::Staged, 4096, 4096));
  EXPECT_FALSE(lendsBuffers(state, OpKind::AllReduce, DirectMode::Staged, 4095, 4095));
  EXPECT_TRUE(lendsBuffers(state, OpKind::AllReduce, DirectMode::Staged, 1 << 20, 1 << 20));
}

// One-shot AllReduce offers only an input that is not its output; every
// other operation offers both sides.
TEST(DirectMode, OneShotLendsOnlyAnInputThatIsNotItsOutput) {
  for (bool inPlace : {false, true}) {
    EXPECT_TRUE(lentSides(false, inPlace).input);
    EXPECT_TRUE(lentSides(false, inPlace).output);
    EXPECT_FALSE(lentSides(true, inPlace).output);
  }
  EXPECT_TRUE(lentSides(true, false).input);
  EXPECT_FALSE(lentSides(true, true).input);
}

}  // namespace
}  // namespace chorus
