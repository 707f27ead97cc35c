// Device communicators on the kinds of stream callers use besides their own
// non-blocking ones, 1, 2 and 4 ranks sharing GPU 0:
// - blocking streams (plain cudaStreamCreate, ordered against the legacy
//   default stream) on every rank;
// - the legacy default stream (stream 0) on a single-rank communicator, its
//   synchronous cudaMemcpy calls around the collective;
// - one stream shared by every rank of a group posted from one thread (the
//   library opens every rank's gate before any holds the stream), a created
//   stream and the legacy default stream.
// Every result exact (device_comm_helpers.h's Job).
// Skipped, with a message, where no CUDA device is usable or CHORUS_DEVICE=host.
#include <memory>

#include "gpu/device_comm_helpers.h"

using namespace chorus::gputest;

namespace {

constexpr size_t kBig = (size_t(1) << 20) + 3;

// Puts other streams in dc.streams (which the Job helpers use) for a scope,
// then the communicators' own back: DeviceComms destroys what it holds, and
// must not destroy these. The borrowed streams are drained first.
class BorrowedStreams {
 public:
  BorrowedStreams(DeviceComms& dc, std::vector<cudaStream_t> streams) : dc_(dc), own_(dc.streams) {
    dc_.streams = std::move(streams);
  }
  ~BorrowedStreams() {
    for (cudaStream_t s : dc_.streams) cudaStreamSynchronize(s);
    dc_.streams = own_;
  }
  BorrowedStreams(const BorrowedStreams&) = delete;
  BorrowedStreams& operator=(const BorrowedStreams&) = delete;

 private:
  DeviceComms& dc_;
  std::vector<cudaStream_t> own_;
};

// Streams made with cudaStreamCreate (blocking), destroyed after draining.
struct BlockingStreams {
  std::vector<cudaStream_t> streams;
  explicit BlockingStreams(int n) {
    for (int i = 0; i < n; ++i) {
      cudaStream_t s = nullptr;
      if (cudaStreamCreate(&s) != cudaSuccess) return;  // streams.size() < n tells
      streams.push_back(s);
    }
  }
  ~BlockingStreams() {
    for (cudaStream_t s : streams) {
      cudaStreamSynchronize(s);
      cudaStreamDestroy(s);
    }
  }
  BlockingStreams(const BlockingStreams&) = delete;
  BlockingStreams& operator=(const BlockingStreams&) = delete;
};

class DeviceStreamKinds : public CliqueOnGpu0 {};

// Reductions, data movement, and Send/Recv (which goes through host memory).
TEST_P(DeviceStreamKinds, BlockingStreamOnEveryRankGivesExactResults) {
  const int n = GetParam();
  BlockingStreams blocking(n);
  ASSERT_EQ(int(blocking.streams.size()), n) << "cudaStreamCreate failed";
  BorrowedStreams use(dc_, blocking.streams);
  const Spec specs[] = {
      {Kind::AllReduce, ncclFloat32, ncclSum, kBig, 0, false},
      {Kind::AllReduce, ncclInt32, ncclMax, 7, 0, true},
      {Kind::Broadcast, ncclInt8, ncclSum, 4097, n - 1, true},
      {Kind::Reduce, ncclBfloat16, ncclAvg, 65537, 0, false},
      {Kind::AllGather, ncclFloat16, ncclSum, 777, 0, false},
      {Kind::ReduceScatter, ncclInt32, ncclMax, 12345, 0, false},
      {Kind::SendRecvRing, ncclFloat32, ncclSum, 1001, 0, false},
  };
  uint64_t seed = 400;
  for (const Spec& spec : specs) ASSERT_TRUE(runJob(dc_, spec, ++seed));
  // Two in a row, the second posted while the first may still hold the streams.
  Job a(specs[0], n, 410), b(specs[5], n, 411);
  ASSERT_TRUE(a.upload(dc_));
  ASSERT_TRUE(b.upload(dc_));
  ASSERT_TRUE(onEveryRank(dc_, [&](int r) { return a.issue(dc_, r); }));
  ASSERT_TRUE(onEveryRank(dc_, [&](int r) { return b.issue(dc_, r); }));
  EXPECT_TRUE(a.check(dc_));
  EXPECT_TRUE(b.check(dc_));
}

// One stream for every rank, one thread, one group: each rank's gate opens
// before any holds the stream, so no rank waits on a peer stuck behind it.
void sharedStreamGivesExactResults(DeviceComms& dc, cudaStream_t shared) {
  const int n = dc.size();
  BorrowedStreams use(dc, std::vector<cudaStream_t>(n, shared));
  uint64_t seed = 500;
  for (size_t count : {size_t(1), size_t(7), kBig})
    for (bool inPlace : {false, true})
      ASSERT_TRUE(runJob(dc, Spec{Kind::AllReduce, ncclFloat32, ncclSum, count, 0, inPlace}, ++seed));
  ASSERT_TRUE(runJob(dc, Spec{Kind::AllReduce, ncclInt32, ncclMax, 4099, 0, false}, ++seed));
  // Several groups posted before the stream reaches the first.
  std::vector<std::unique_ptr<Job>> jobs;
  for (int k = 0; k < 3; ++k) {
    jobs.emplace_back(new Job(Spec{Kind::AllReduce, ncclFloat32, ncclSum, 100003, 0, false}, n, 520 + k));
    ASSERT_TRUE(jobs.back()->upload(dc));
  }
  ASSERT_EQ(cudaLaunchHostFunc(shared, holdTheStream, nullptr), cudaSuccess);
  for (const auto& job : jobs) ASSERT_TRUE(onEveryRank(dc, [&](int r) { return job->issue(dc, r); }));
  for (const auto& job : jobs) EXPECT_TRUE(job->check(dc));
}

TEST_P(DeviceStreamKinds, OneStreamSharedByEveryRankInAGroupGivesExactResults) {
  cudaStream_t shared = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&shared, cudaStreamNonBlocking), cudaSuccess);
  sharedStreamGivesExactResults(dc_, shared);
  cudaStreamSynchronize(shared);
  cudaStreamDestroy(shared);
}

TEST_P(DeviceStreamKinds, LegacyDefaultStreamSharedByEveryRankInAGroupGivesExactResults) {
  sharedStreamGivesExactResults(dc_, nullptr);
}

INSTANTIATE_TEST_SUITE_P(OnOneGpu, DeviceStreamKinds, ::testing::Values(1, 2, 4), ranksName);

// A single-rank communicator's operations on stream 0, with the caller's
// synchronous copies (themselves on stream 0) before and after: no stream
// synchronisation of its own is needed to read the result.
TEST(DeviceLegacyStream, SingleRankCommunicatorOnStream0IsOrderedWithSynchronousCopies) {
  SKIP_WITHOUT_DEVICE_COMMS();
  DeviceComms dc;
  ASSERT_TRUE(makeComms(1, InitWay::InitAll, &dc));
  DeviceBuffer send(kBig * sizeof(float)), recv(kBig * sizeof(float));
  ASSERT_TRUE(send.p && recv.p) << "cudaMalloc failed";
  std::vector<float> in(kBig), out(kBig, -1.0f);
  for (size_t i = 0; i < kBig; ++i) in[i] = float(inputValue(ncclFloat32, 0, i, 600));
  ASSERT_CUDA_OK(cudaMemset(recv.p, 0, kBig * sizeof(float)));
  ASSERT_CUDA_OK(cudaMemcpy(send.p, in.data(), kBig * sizeof(float), cudaMemcpyHostToDevice));
  ASSERT_NCCL_OK(ncclAllReduce(send.p, recv.p, kBig, ncclFloat32, ncclSum, dc.comms[0], nullptr));
  ASSERT_CUDA_OK(cudaMemcpy(out.data(), recv.p, kBig * sizeof(float), cudaMemcpyDeviceToHost));
  EXPECT_TRUE(sameFloats(out.data(), in, "AllReduce on stream 0"));
  // Every other operation too, through the Job helpers on stream 0.
  BorrowedStreams use(dc, {nullptr});
  const Spec specs[] = {
      {Kind::AllReduce, ncclBfloat16, ncclAvg, 65537, 0, true},
      {Kind::Broadcast, ncclInt8, ncclSum, 4097, 0, false},
      {Kind::Reduce, ncclFloat16, ncclSum, 777, 0, false},
      {Kind::AllGather, ncclFloat32, ncclSum, 12345, 0, true},
      {Kind::ReduceScatter, ncclInt32, ncclMax, 12345, 0, false},
      {Kind::SendRecvRing, ncclFloat32, ncclSum, 1001, 0, false},
      {Kind::AlltoAll, ncclFloat16, ncclSum, 1001, 0, false},
  };
  uint64_t seed = 610;
  for (const Spec& spec : specs) EXPECT_TRUE(runJob(dc, spec, ++seed));
}

}  // namespace
