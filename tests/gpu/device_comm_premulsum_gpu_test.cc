// Device communicators with a PreMulSum operator whose scalar lives in device
// memory (ncclRedOpCreatePreMulSum with ncclScalarDevice), 1, 2 and 4 ranks
// sharing GPU 0:
// - each rank's input is scaled by that rank's own scalar (rank r: r + 1);
// - the scalar is read when the operation runs on its stream, not when the
//   call is posted: a value written on the stream between two calls is the
//   second call's, and not the first's.
// Inputs -8..8 and scalars small integers: the float sums are exact.
// Skipped, with a message, where no CUDA device is usable or CHORUS_DEVICE=host.
#include "gpu/device_comm_helpers.h"

using namespace chorus::gputest;

namespace {

constexpr size_t kCounts[] = {1, 7, (size_t(1) << 20) + 3};
constexpr size_t kMaxCount = (size_t(1) << 20) + 3;

// The sum over ranks of scalars[r] times rank r's input (inputValue).
std::vector<float> weightedSums(size_t count, uint64_t seed, const std::vector<float>& scalars) {
  std::vector<float> want(count);
  for (size_t i = 0; i < count; ++i) {
    double s = 0;
    for (size_t r = 0; r < scalars.size(); ++r) s += scalars[r] * inputValue(ncclFloat32, int(r), i, seed);
    want[i] = float(s);
  }
  return want;
}

// Per rank: a float scalar in device memory and the PreMulSum operator made
// on it, plus a send and two receive buffers of kMaxCount floats.
class DevicePreMulSum : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_DEVICE_COMMS();
    ASSERT_TRUE(makeComms(GetParam(), InitWay::InitAll, &dc_));
    for (int r = 0; r < GetParam(); ++r) {
      scalars_.emplace_back(sizeof(float));
      for (auto* v : {&send_, &recv_, &recv2_}) v->emplace_back(kMaxCount * sizeof(float));
      ASSERT_TRUE(scalars_[r].p && send_[r].p && recv_[r].p && recv2_[r].p) << "cudaMalloc failed";
      ncclRedOp_t op;
      ASSERT_NCCL_OK(ncclRedOpCreatePreMulSum(&op, scalars_[r].p, ncclFloat32, ncclScalarDevice,
                                              dc_.comms[r]));
      ops_.push_back(op);
    }
  }

  // Operators go once nothing that uses them is left on the streams.
  void TearDown() override {
    for (cudaStream_t s : dc_.streams) EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    for (size_t r = 0; r < ops_.size(); ++r) EXPECT_NCCL_OK(ncclRedOpDestroy(ops_[r], dc_.comms[r]));
  }

  // Rank r's inputs for `seed` into send_[r], on its stream (pageable: the
  // copy may finish before the call returns, which is all this needs).
  ::testing::AssertionResult upload(size_t count, uint64_t seed) {
    for (int r = 0; r < dc_.size(); ++r) {
      std::vector<float> host(count);
      for (size_t i = 0; i < count; ++i) host[i] = float(inputValue(ncclFloat32, r, i, seed));
      const cudaError_t e = cudaMemcpyAsync(send_[r].p, host.data(), count * sizeof(float),
                                            cudaMemcpyHostToDevice, dc_.streams[r]);
      if (e != cudaSuccess) return ::testing::AssertionFailure() << "cudaMemcpyAsync: " << cudaText(e);
    }
    return ::testing::AssertionSuccess();
  }

  // Every rank's AllReduce with its own operator, as one group.
  ::testing::AssertionResult allReduce(const std::vector<DeviceBuffer>& recv, size_t count, bool inPlace) {
    return onEveryRank(dc_, [&](int r) {
      const void* from = inPlace ? recv[r].p : send_[r].p;
      return ncclAllReduce(from, recv[r].p, count, ncclFloat32, ops_[r], dc_.comms[r], dc_.streams[r]);
    });
  }

  // Copies `recv` back on each rank's stream, waits, and compares with `want`.
  ::testing::AssertionResult check(const std::vector<DeviceBuffer>& recv, const std::vector<float>& want,
                                   const std::string& what) {
    for (int r = 0; r < dc_.size(); ++r) {
      std::vector<float> got(want.size());
      cudaMemcpyAsync(got.data(), recv[r].p, want.size() * sizeof(float), cudaMemcpyDeviceToHost,
                      dc_.streams[r]);
      const cudaError_t e = cudaStreamSynchronize(dc_.streams[r]);
      if (e != cudaSuccess) return ::testing::AssertionFailure() << what << ": " << cudaText(e);
      auto same = sameFloats(got.data(), want, what + ", rank " + std::to_string(r));
      if (!same) return same;
    }
    return ::testing::AssertionSuccess();
  }

  std::vector<DeviceBuffer> scalars_, send_, recv_, recv2_;
  std::vector<ncclRedOp_t> ops_;
  DeviceComms dc_;  // destroyed first: its streams drain before the buffers go
};

TEST_P(DevicePreMulSum, EachRankScalesItsInputByItsOwnDeviceScalar) {
  const int n = GetParam();
  std::vector<float> scalars(n);
  for (int r = 0; r < n; ++r) {
    scalars[r] = float(r + 1);
    ASSERT_CUDA_OK(cudaMemcpy(scalars_[r].p, &scalars[r], sizeof(float), cudaMemcpyHostToDevice));
  }
  uint64_t seed = 200;
  for (size_t count : kCounts)
    for (bool inPlace : {false, true}) {
      const std::string what = "count " + std::to_string(count) + (inPlace ? " in place" : " out of place");
      ASSERT_TRUE(upload(count, ++seed)) << what;
      // In place: the input goes into the receive buffer first.
      if (inPlace)
        for (int r = 0; r < n; ++r)
          ASSERT_CUDA_OK(cudaMemcpyAsync(recv_[r].p, send_[r].p, count * sizeof(float),
                                         cudaMemcpyDeviceToDevice, dc_.streams[r]));
      ASSERT_TRUE(allReduce(recv_, count, inPlace)) << what;
      ASSERT_TRUE(check(recv_, weightedSums(count, seed, scalars), what));
    }
}

// On each rank's stream: a 50 ms hold, the first AllReduce (scalar r + 1,
// written with cudaMemcpy before), an asynchronous write of the new scalar
// -(r + 2) from pinned memory, the second AllReduce. Both calls are posted
// while the hold keeps the stream from reaching either, so a scalar read at
// posting would give the second call the old value; a read after the write
// would give the first call the new one.
TEST_P(DevicePreMulSum, ScalarIsReadWhenTheOperationRunsOnItsStream) {
  const int n = GetParam();
  const size_t count = kMaxCount;
  std::vector<float> first(n), second(n);
  PinnedFloats next(n);
  ASSERT_TRUE(next.p) << "cudaMallocHost failed";
  for (int r = 0; r < n; ++r) {
    first[r] = float(r + 1);
    second[r] = next.p[r] = -float(r + 2);
    ASSERT_CUDA_OK(cudaMemcpy(scalars_[r].p, &first[r], sizeof(float), cudaMemcpyHostToDevice));
  }
  ASSERT_TRUE(upload(count, 300));
  for (int r = 0; r < n; ++r) ASSERT_CUDA_OK(cudaLaunchHostFunc(dc_.streams[r], holdTheStream, nullptr));
  ASSERT_TRUE(allReduce(recv_, count, false)) << "first AllReduce";
  for (int r = 0; r < n; ++r)
    ASSERT_CUDA_OK(cudaMemcpyAsync(scalars_[r].p, &next.p[r], sizeof(float), cudaMemcpyHostToDevice,
                                   dc_.streams[r]));
  ASSERT_TRUE(allReduce(recv2_, count, false)) << "second AllReduce";
  EXPECT_TRUE(check(recv_, weightedSums(count, 300, first), "first AllReduce (scalars r + 1)"));
  EXPECT_TRUE(check(recv2_, weightedSums(count, 300, second), "second AllReduce (scalars -(r + 2))"));
}

INSTANTIATE_TEST_SUITE_P(OnOneGpu, DevicePreMulSum, ::testing::Values(1, 2, 4), ranksName);

}  // namespace
