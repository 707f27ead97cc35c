// Lifetimes around device communicators' operations, ranks sharing GPU 0:
// - captured graphs give their gate slots back when destroyed: 1100 graphs
//   (a communicator keeps 1024 slots), each captured, launched once, checked
//   and destroyed, on a 2-rank clique;
// - ncclCommDestroy right after posting an AllReduce, the stream not
//   synchronised, waits for the operation: the results are exact (1, 2 and
//   4 ranks);
// - ncclCommAbort releases a stream held by an AllReduce that the peer never
//   posts (2 ranks). Waits there are bounded (20 s): a bug fails the test
//   instead of hanging it.
// Skipped, with a message, where no CUDA device is usable or CHORUS_DEVICE=host.
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <thread>

#include "gpu/device_comm_helpers.h"

using namespace chorus::gputest;

namespace {

constexpr size_t kCount = (size_t(1) << 20) + 3;  // floats per rank
constexpr double kDeadlineSeconds = 20;

// Events made with cudaEventDisableTiming, destroyed with the holder.
struct Events {
  std::vector<cudaEvent_t> events;
  explicit Events(int n) {
    for (int i = 0; i < n; ++i) {
      cudaEvent_t e = nullptr;
      if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess) return;
      events.push_back(e);
    }
  }
  ~Events() {
    for (cudaEvent_t e : events) cudaEventDestroy(e);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
};

// One thread captures every rank's float sum AllReduce (send -> recv) into
// one graph: rank 0's stream begins the capture, the others fork from it and
// join back through `events` (as in device_comm_stream_gpu_test.cc). On
// failure *graph is null.
::testing::AssertionResult captureAllReduce(const DeviceComms& dc,
                                            const std::vector<DeviceBuffer>& send,
                                            const std::vector<DeviceBuffer>& recv, size_t count,
                                            const Events& events, cudaGraph_t* graph) {
  *graph = nullptr;
  cudaStream_t s0 = dc.streams[0];
  const cudaError_t began = cudaStreamBeginCapture(s0, cudaStreamCaptureModeThreadLocal);
  if (began != cudaSuccess)
    return ::testing::AssertionFailure() << "cudaStreamBeginCapture: " << cudaText(began);
  cudaEventRecord(events.events[0], s0);  // fork
  for (int r = 1; r < dc.size(); ++r) cudaStreamWaitEvent(dc.streams[r], events.events[0], 0);
  const auto captured = onEveryRank(dc, [&](int r) {
    return ncclAllReduce(send[r].p, recv[r].p, count, ncclFloat32, ncclSum, dc.comms[r], dc.streams[r]);
  });
  for (int r = 1; r < dc.size(); ++r) {  // join, even after a failure, so that the capture can end
    cudaEventRecord(events.events[r], dc.streams[r]);
    cudaStreamWaitEvent(s0, events.events[r], 0);
  }
  const cudaError_t ended = cudaStreamEndCapture(s0, graph);
  if (captured && ended == cudaSuccess) return ::testing::AssertionSuccess();
  if (*graph != nullptr) cudaGraphDestroy(*graph);
  *graph = nullptr;
  if (!captured) return captured;
  return ::testing::AssertionFailure() << "cudaStreamEndCapture: " << cudaText(ended);
}

// inputValue(ncclFloat32, r, i, seed) for i < count, and their sum over n ranks.
std::vector<float> inputsOf(int rank, size_t count, uint64_t seed) {
  std::vector<float> in(count);
  for (size_t i = 0; i < count; ++i) in[i] = float(inputValue(ncclFloat32, rank, i, seed));
  return in;
}
std::vector<float> sumsOf(int n, size_t count, uint64_t seed) {
  std::vector<float> want(count, 0.0f);
  for (int r = 0; r < n; ++r)
    for (size_t i = 0; i < count; ++i) want[i] += float(inputValue(ncclFloat32, r, i, seed));
  return want;  // small integers: exact in any order
}

// New inputs for `seed` on every rank, one launch of `exec` on rank 0's
// stream, and the results checked.
::testing::AssertionResult launchOnce(const DeviceComms& dc, cudaGraphExec_t exec,
                                      const std::vector<DeviceBuffer>& send,
                                      const std::vector<DeviceBuffer>& recv, size_t count, uint64_t seed) {
  const int n = dc.size();
  cudaStream_t s0 = dc.streams[0];
  std::vector<std::vector<float>> in(n), out(n, std::vector<float>(count));
  cudaError_t e = cudaSuccess;
  for (int r = 0; r < n && e == cudaSuccess; ++r) {
    in[r] = inputsOf(r, count, seed);
    e = cudaMemcpyAsync(send[r].p, in[r].data(), count * sizeof(float), cudaMemcpyHostToDevice, s0);
  }
  if (e == cudaSuccess) e = cudaGraphLaunch(exec, s0);
  for (int r = 0; r < n && e == cudaSuccess; ++r)
    e = cudaMemcpyAsync(out[r].data(), recv[r].p, count * sizeof(float), cudaMemcpyDeviceToHost, s0);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s0);
  if (e != cudaSuccess) return ::testing::AssertionFailure() << cudaText(e);
  const std::vector<float> want = sumsOf(n, count, seed);
  for (int r = 0; r < n; ++r) {
    auto same = sameFloats(out[r].data(), want, "rank " + std::to_string(r));
    if (!same) return same;
  }
  return ::testing::AssertionSuccess();
}

TEST(DeviceGraphSlots, CapturingAndDestroying1100GraphsGivesTheirSlotsBack) {
  SKIP_WITHOUT_DEVICE_COMMS();
  constexpr int kGraphs = 1100;  // more than the 1024 slots a communicator keeps
  constexpr size_t kSmall = 257;
  DeviceComms dc;
  ASSERT_TRUE(makeComms(2, InitWay::InitAll, &dc));
  std::vector<DeviceBuffer> send, recv;
  for (int r = 0; r < 2; ++r) {
    send.emplace_back(kSmall * sizeof(float));
    recv.emplace_back(kSmall * sizeof(float));
    ASSERT_TRUE(send[r].p && recv[r].p) << "cudaMalloc failed";
  }
  Events events(2);
  ASSERT_EQ(events.events.size(), 2u) << "cudaEventCreateWithFlags failed";
  for (int g = 0; g < kGraphs; ++g) {
    cudaGraph_t graph = nullptr;
    ASSERT_TRUE(captureAllReduce(dc, send, recv, kSmall, events, &graph)) << "graph " << g;
    cudaGraphExec_t exec = nullptr;
    const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
    ::testing::AssertionResult ran =
        ::testing::AssertionFailure() << "cudaGraphInstantiate: " << cudaText(made);
    if (made == cudaSuccess) ran = launchOnce(dc, exec, send, recv, kSmall, 1000 + g);
    if (exec != nullptr) {
      EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess) << "graph " << g;
    }
    EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess) << "graph " << g;
    ASSERT_TRUE(ran) << "graph " << g;
  }
  // Eager operations still run after them.
  EXPECT_TRUE(runJob(dc, Spec{Kind::AllReduce, ncclFloat32, ncclSum, 1001, 0, false}, 3000));
}

class DeviceCommEnding : public CliqueOnGpu0 {};

// On each rank's stream: a 50 ms hold, the input copy, the AllReduce, the
// copy back into pinned memory; then every communicator is destroyed at
// once, while the hold keeps the streams from reaching any of it.
TEST_P(DeviceCommEnding, DestroyRightAfterPostingWaitsForTheOperation) {
  const int n = GetParam();
  std::vector<DeviceBuffer> send, recv;
  std::vector<PinnedFloats> in, out;
  for (int r = 0; r < n; ++r) {
    for (auto* v : {&send, &recv}) v->emplace_back(kCount * sizeof(float));
    for (auto* v : {&in, &out}) v->emplace_back(kCount);
    ASSERT_TRUE(send[r].p && recv[r].p && in[r].p && out[r].p) << "allocation failed";
    const std::vector<float> values = inputsOf(r, kCount, 700);
    std::copy(values.begin(), values.end(), in[r].p);
  }
  for (int r = 0; r < n; ++r) {
    cudaStream_t s = dc_.streams[r];
    ASSERT_CUDA_OK(cudaLaunchHostFunc(s, holdTheStream, nullptr));
    ASSERT_CUDA_OK(cudaMemcpyAsync(send[r].p, in[r].p, kCount * sizeof(float), cudaMemcpyHostToDevice, s));
  }
  ASSERT_TRUE(onEveryRank(dc_, [&](int r) {
    return ncclAllReduce(send[r].p, recv[r].p, kCount, ncclFloat32, ncclSum, dc_.comms[r], dc_.streams[r]);
  }));
  for (int r = 0; r < n; ++r)
    ASSERT_CUDA_OK(cudaMemcpyAsync(out[r].p, recv[r].p, kCount * sizeof(float), cudaMemcpyDeviceToHost,
                                   dc_.streams[r]));
  for (int r = 0; r < n; ++r) {
    const ncclResult_t destroyed = ncclCommDestroy(dc_.comms[r]);
    dc_.comms[r] = nullptr;
    EXPECT_EQ(destroyed, ncclSuccess) << "rank " << r << ": " << ncclText(destroyed);
  }
  for (int r = 0; r < n; ++r) ASSERT_CUDA_OK(cudaStreamSynchronize(dc_.streams[r]));
  const std::vector<float> want = sumsOf(n, kCount, 700);
  for (int r = 0; r < n; ++r) EXPECT_TRUE(sameFloats(out[r].p, want, "rank " + std::to_string(r)));
}

INSTANTIATE_TEST_SUITE_P(OnOneGpu, DeviceCommEnding, ::testing::Values(1, 2, 4), ranksName);

// Runs call() on a thread of its own and waits up to kDeadlineSeconds for it
// to return; *result is its result when it did. A call that never returns is
// left running on its thread.
bool returnsInTime(std::function<ncclResult_t()> call, ncclResult_t* result) {
  auto done = std::make_shared<std::promise<ncclResult_t>>();
  std::future<ncclResult_t> returned = done->get_future();
  std::thread([done, call] { done->set_value(call()); }).detach();
  if (returned.wait_for(std::chrono::duration<double>(kDeadlineSeconds)) != std::future_status::ready)
    return false;
  *result = returned.get();
  return true;
}

// Polls cudaStreamQuery until the stream has drained (its result) or
// kDeadlineSeconds pass (cudaErrorNotReady).
cudaError_t drainsInTime(cudaStream_t s) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(kDeadlineSeconds));
  for (;;) {
    const cudaError_t e = cudaStreamQuery(s);
    if (e != cudaErrorNotReady || Clock::now() >= deadline) return e;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// A stream held for good (or an abort stuck with it) would hang the rest of
// the process: teardown synchronises streams, and cudaFree waits for the
// device. The failures are printed already; end the process so that it
// shows as failed rather than hung.
[[noreturn]] void endStuckProcess(const char* what) {
  std::fprintf(stderr, "DeviceCommAbort: %s; ending the process, which would otherwise hang\n", what);
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(1);
}

TEST(DeviceCommAbort, AbortReleasesAStreamHeldByAnAllReduceThePeerNeverPosts) {
  SKIP_WITHOUT_DEVICE_COMMS();
  constexpr size_t kSmall = 1024;
  DeviceComms dc;
  ASSERT_TRUE(makeComms(2, InitWay::InitAll, &dc));
  DeviceBuffer send(kSmall * sizeof(float)), recv(kSmall * sizeof(float));
  ASSERT_TRUE(send.p && recv.p) << "cudaMalloc failed";
  cudaStream_t s0 = dc.streams[0];
  // Rank 0 only (its inputs do not matter: the result is never read).
  ASSERT_NCCL_OK(ncclAllReduce(send.p, recv.p, kSmall, ncclFloat32, ncclSum, dc.comms[0], s0));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(cudaStreamQuery(s0), cudaErrorNotReady)
      << "rank 0's stream went past an AllReduce that rank 1 never posted";

  ncclResult_t aborted = ncclInternalError;
  const bool returned = returnsInTime([c = dc.comms[0]] { return ncclCommAbort(c); }, &aborted);
  dc.comms[0] = nullptr;
  if (!returned) {
    ADD_FAILURE() << "ncclCommAbort(rank 0) did not return within " << kDeadlineSeconds << " s";
    endStuckProcess("ncclCommAbort(rank 0) is stuck");
  }
  EXPECT_EQ(aborted, ncclSuccess) << "ncclCommAbort(rank 0): " << ncclText(aborted);
  const cudaError_t drained = drainsInTime(s0);
  if (drained == cudaErrorNotReady) {
    ADD_FAILURE() << "rank 0's stream was still held " << kDeadlineSeconds << " s after ncclCommAbort";
    endStuckProcess("rank 0's stream is held for good");
  }
  EXPECT_EQ(drained, cudaSuccess) << "cudaStreamQuery(rank 0's stream): " << cudaText(drained);
  EXPECT_EQ(cudaStreamSynchronize(s0), cudaSuccess);

  // Rank 1, which posted nothing, goes too.
  ncclResult_t aborted1 = ncclInternalError;
  const bool returned1 = returnsInTime([c = dc.comms[1]] { return ncclCommAbort(c); }, &aborted1);
  dc.comms[1] = nullptr;
  if (!returned1) {
    ADD_FAILURE() << "ncclCommAbort(rank 1) did not return within " << kDeadlineSeconds << " s";
    endStuckProcess("ncclCommAbort(rank 1) is stuck");
  }
  EXPECT_EQ(aborted1, ncclSuccess) << "ncclCommAbort(rank 1): " << ncclText(aborted1);
  EXPECT_EQ(cudaStreamSynchronize(dc.streams[1]), cudaSuccess);
}

}  // namespace
