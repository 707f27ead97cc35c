// Device communicators through the public API: every collective, Send/Recv
// and AlltoAll on device buffers, exact against a host reference, with 1, 2
// and 4 ranks that all share GPU 0 (ranks are communicators of this process,
// driven by one thread through groups). Counts 0, 1, 7 (odd) and 2^20+3;
// in place and out of place; roots 0 and last; float sum, int32 max, half
// sum, bfloat16 avg and float avg for the reductions. Stream ordering, groups,
// graph capture and errors are in device_comm_stream_gpu_test.cc.
// Skipped, with a message, where no CUDA device is usable or CHORUS_DEVICE=host.
#include <algorithm>

#include "gpu/device_comm_helpers.h"

using namespace chorus::gputest;

namespace {

constexpr size_t kCounts[] = {0, 1, 7, (size_t(1) << 20) + 3};

// avg stays exact because 1, 2 and 4 ranks divide by powers of two.
struct TypeOp {
  ncclDataType_t type;
  ncclRedOp_t op;
};
const TypeOp kReductions[] = {{ncclFloat32, ncclSum}, {ncclInt32, ncclMax}, {ncclFloat16, ncclSum},
                              {ncclBfloat16, ncclAvg}, {ncclFloat32, ncclAvg}};
// Collectives that only move data: 4-, 2- and 1-byte elements (7 int8s: odd bytes).
const ncclDataType_t kMoveTypes[] = {ncclFloat32, ncclFloat16, ncclInt8};

class DeviceCollectives : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_DEVICE_COMMS();
    ASSERT_TRUE(makeComms(GetParam(), InitWay::InitAll, &dc_));
  }

  // Every count, in place and out of place, from every root of interest;
  // stops at the first wrong result.
  void sweep(Kind kind, ncclDataType_t type, ncclRedOp_t op = ncclSum, bool inPlaceToo = true) {
    const int n = GetParam();
    const bool rooted = kind == Kind::Broadcast || kind == Kind::Reduce;
    for (size_t count : kCounts)
      for (bool inPlace : {false, true}) {
        if (inPlace && !inPlaceToo) continue;
        for (int root : {0, n - 1}) {
          if (root == n - 1 && (n == 1 || !rooted)) continue;
          ASSERT_TRUE(runJob(dc_, Spec{kind, type, op, count, root, inPlace}, ++seed_));
        }
      }
  }

  DeviceComms dc_;
  uint64_t seed_ = 0;
};

TEST_P(DeviceCollectives, EveryRankIsBoundToGpu0WithItsRank) {
  for (int r = 0; r < dc_.size(); ++r) {
    int count = 0, rank = -1;
    EXPECT_NCCL_OK(ncclCommCount(dc_.comms[r], &count));
    EXPECT_NCCL_OK(ncclCommUserRank(dc_.comms[r], &rank));
    EXPECT_EQ(count, GetParam());
    EXPECT_EQ(rank, r);
  }
}

TEST_P(DeviceCollectives, AllReduceIsExact) {
  for (const TypeOp& t : kReductions) {
    sweep(Kind::AllReduce, t.type, t.op);
    if (HasFailure()) return;
  }
}

TEST_P(DeviceCollectives, ReduceIsExactOnRootsFirstAndLast) {
  for (const TypeOp& t : kReductions) {
    sweep(Kind::Reduce, t.type, t.op);
    if (HasFailure()) return;
  }
}

TEST_P(DeviceCollectives, ReduceScatterIsExact) {
  for (const TypeOp& t : kReductions) {
    sweep(Kind::ReduceScatter, t.type, t.op);
    if (HasFailure()) return;
  }
}

TEST_P(DeviceCollectives, BroadcastFromRootsFirstAndLastIsExact) {
  for (ncclDataType_t type : kMoveTypes) {
    sweep(Kind::Broadcast, type);
    if (HasFailure()) return;
  }
}

TEST_P(DeviceCollectives, AllGatherIsExact) {
  for (ncclDataType_t type : kMoveTypes) {
    sweep(Kind::AllGather, type);
    if (HasFailure()) return;
  }
}

// Each rank sends to rank+1 and receives from rank-1 in one group (1 rank:
// to and from itself).
TEST_P(DeviceCollectives, SendRecvRingDeliversEveryBuffer) {
  for (ncclDataType_t type : kMoveTypes) {
    sweep(Kind::SendRecvRing, type, ncclSum, /*inPlaceToo=*/false);
    if (HasFailure()) return;
  }
}

// Send and receive buffers must differ (in place is not part of the API).
TEST_P(DeviceCollectives, AlltoAllDeliversEveryBlock) {
  for (ncclDataType_t type : kMoveTypes) {
    sweep(Kind::AlltoAll, type, ncclSum, /*inPlaceToo=*/false);
    if (HasFailure()) return;
  }
}

// The other way to make a clique on one GPU: one thread, ncclGroupStart,
// ncclCommInitRank per rank after cudaSetDevice(0), ncclGroupEnd.
TEST_P(DeviceCollectives, InitRankInAGroupFromOneThreadMakesAWorkingClique) {
  DeviceComms other;
  ASSERT_TRUE(makeComms(GetParam(), InitWay::GroupOfInitRank, &other));
  for (size_t count : kCounts) {
    ASSERT_TRUE(runJob(other, Spec{Kind::AllReduce, ncclFloat32, ncclSum, count, 0, false}, ++seed_));
    ASSERT_TRUE(runJob(other, Spec{Kind::AllGather, ncclFloat16, ncclSum, count, 0, true}, ++seed_));
  }
  // Both cliques live at once, on the same GPU, without disturbing each other.
  ASSERT_TRUE(runJob(dc_, Spec{Kind::ReduceScatter, ncclInt32, ncclMax, 4099, 0, false}, ++seed_));
}

// ncclCommSplit from one thread (a group): the children stay on the
// parents' device whatever device is current, and work.
TEST_P(DeviceCollectives, SplitChildrenStayOnTheParentsDeviceAndWork) {
  DeviceComms children;
  children.streams = dc_.streams;
  children.comms.assign(dc_.comms.size(), nullptr);
  ASSERT_NCCL_OK(ncclGroupStart());
  for (int r = 0; r < dc_.size(); ++r)
    ncclCommSplit(dc_.comms[r], 0, dc_.size() - 1 - r, &children.comms[r], nullptr);
  ASSERT_NCCL_OK(ncclGroupEnd());
  for (int r = 0; r < dc_.size(); ++r) {
    int device = -1, rank = -1;
    EXPECT_NCCL_OK(ncclCommCuDevice(children.comms[r], &device));
    EXPECT_NCCL_OK(ncclCommUserRank(children.comms[r], &rank));
    EXPECT_EQ(device, 0);
    EXPECT_EQ(rank, dc_.size() - 1 - r);  // ordered by key
  }
  // The children's ranks run in reverse order: put them back in rank order
  // for the job, which expects comms[r] to be rank r.
  std::reverse(children.comms.begin(), children.comms.end());
  std::reverse(children.streams.begin(), children.streams.end());
  ASSERT_TRUE(runJob(children, Spec{Kind::AllReduce, ncclFloat32, ncclSum, 4099, 0, false}, ++seed_));
  children.streams.clear();  // the parents' streams, destroyed with dc_
}

INSTANTIATE_TEST_SUITE_P(OnOneGpu, DeviceCollectives, ::testing::Values(1, 2, 4), ranksName);

}  // namespace
