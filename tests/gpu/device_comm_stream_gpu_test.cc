// Device communicators and CUDA streams, groups and graphs, through the
// public API, with 1, 2 and 4 ranks sharing GPU 0:
// - a collective sees the work enqueued before it on the caller's stream and
//   the work enqueued after it sees its result (only the order is checked,
//   never whether the call returned before the stream finished);
// - several collectives in one group give what the same calls give one by one;
// - an AllReduce captured in a CUDA graph (a thread and a graph per rank, and
//   one thread capturing every rank into one graph) replays correctly with
//   new inputs written before each launch;
// - host pointers, and pointers of another GPU, are ncclInvalidArgument with
//   a message naming the argument; ncclMemAlloc gives device memory that
//   collectives use; registered buffers give exact results.
// Skipped, with a message, where no CUDA device is usable or CHORUS_DEVICE=host.
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "gpu/device_comm_helpers.h"

using namespace chorus::gputest;

namespace {

constexpr size_t kCount = (size_t(1) << 20) + 3;  // floats per rank
// Floats per rank of an AllReduce within CHORUS_ONESHOT_BYTES' default
// (64 KiB), and odd.
constexpr size_t kOneShotCount = 4099;

// inputValue(ncclFloat32, r, i, seed) for rank r, and the sum over n ranks.
void inputs(PinnedFloats& host, int rank, uint64_t seed) {
  for (size_t i = 0; i < kCount; ++i) host.p[i] = float(inputValue(ncclFloat32, rank, i, seed));
}
std::vector<float> sums(int n, uint64_t seed, float factor = 1, size_t count = kCount) {
  std::vector<float> want(count);
  for (size_t i = 0; i < count; ++i) {
    double s = 0;
    for (int r = 0; r < n; ++r) s += inputValue(ncclFloat32, r, i, seed);
    want[i] = float(s * factor);
  }
  return want;
}

// A float sum AllReduce of `count` elements over the given device buffers
// (send == recv: in place), filled, run and fetched on each rank's stream.
::testing::AssertionResult allReduceOn(const DeviceComms& dc, const std::vector<void*>& send,
                                       const std::vector<void*>& recv, uint64_t seed,
                                       size_t count = kCount) {
  const int n = dc.size();
  std::vector<std::vector<float>> host(n, std::vector<float>(count));
  for (int r = 0; r < n; ++r) {
    for (size_t i = 0; i < count; ++i) host[r][i] = float(inputValue(ncclFloat32, r, i, seed));
    const cudaError_t e =
        cudaMemcpyAsync(send[r], host[r].data(), count * 4, cudaMemcpyHostToDevice, dc.streams[r]);
    if (e != cudaSuccess) return ::testing::AssertionFailure() << "cudaMemcpyAsync: " << cudaText(e);
  }
  auto ok = onEveryRank(dc, [&](int r) {
    return ncclAllReduce(send[r], recv[r], count, ncclFloat32, ncclSum, dc.comms[r], dc.streams[r]);
  });
  if (!ok) return ok;
  const std::vector<float> want = sums(n, seed, 1, count);
  for (int r = 0; r < n; ++r) {
    cudaMemcpyAsync(host[r].data(), recv[r], count * 4, cudaMemcpyDeviceToHost, dc.streams[r]);
    const cudaError_t e = cudaStreamSynchronize(dc.streams[r]);
    if (e != cudaSuccess) return ::testing::AssertionFailure() << "rank " << r << ": " << cudaText(e);
    ok = sameFloats(host[r].data(), want, "rank " + std::to_string(r));
    if (!ok) return ok;
  }
  return ::testing::AssertionSuccess();
}

class DeviceStreams : public CliqueOnGpu0 {};

TEST_P(DeviceStreams, CollectiveSeesEarlierWorkOnItsStreamAndLaterWorkSeesItsResult) {
  const int n = GetParam();
  std::vector<DeviceBuffer> send, recv, twice;
  std::vector<PinnedFloats> in, out, out2;
  for (int r = 0; r < n; ++r) {
    for (auto* v : {&send, &recv, &twice}) v->emplace_back(kCount * 4);
    for (auto* v : {&in, &out, &out2}) v->emplace_back(kCount);
    ASSERT_TRUE(send[r].p && recv[r].p && twice[r].p) << "cudaMalloc failed";
    ASSERT_TRUE(in[r].p && out[r].p && out2[r].p) << "cudaMallocHost failed";
    ASSERT_CUDA_OK(cudaMemset(send[r].p, 0, kCount * 4));  // the stale input
    inputs(in[r], r, 7);
  }
  ASSERT_CUDA_OK(cudaDeviceSynchronize());
  // Held streams: a collective that did not wait for the copy enqueued
  // behind the hold would read the stale input.
  for (int r = 0; r < n; ++r) {
    ASSERT_CUDA_OK(cudaLaunchHostFunc(dc_.streams[r], holdTheStream, nullptr));
    ASSERT_CUDA_OK(cudaMemcpyAsync(send[r].p, in[r].p, kCount * 4, cudaMemcpyHostToDevice, dc_.streams[r]));
  }
  // The second AllReduce reads what the first wrote: the sum of n sums.
  ASSERT_TRUE(onEveryRank(dc_, [&](int r) {
    return ncclAllReduce(send[r].p, recv[r].p, kCount, ncclFloat32, ncclSum, dc_.comms[r], dc_.streams[r]);
  }));
  ASSERT_TRUE(onEveryRank(dc_, [&](int r) {
    return ncclAllReduce(recv[r].p, twice[r].p, kCount, ncclFloat32, ncclSum, dc_.comms[r], dc_.streams[r]);
  }));
  for (int r = 0; r < n; ++r) {
    cudaStream_t s = dc_.streams[r];
    ASSERT_CUDA_OK(cudaMemcpyAsync(out[r].p, recv[r].p, kCount * 4, cudaMemcpyDeviceToHost, s));
    ASSERT_CUDA_OK(cudaMemcpyAsync(out2[r].p, twice[r].p, kCount * 4, cudaMemcpyDeviceToHost, s));
  }
  for (int r = 0; r < n; ++r) ASSERT_CUDA_OK(cudaStreamSynchronize(dc_.streams[r]));
  const std::vector<float> want = sums(n, 7), want2 = sums(n, 7, float(n));
  for (int r = 0; r < n; ++r) {
    EXPECT_TRUE(sameFloats(out[r].p, want, "first AllReduce, rank " + std::to_string(r)));
    EXPECT_TRUE(sameFloats(out2[r].p, want2, "second AllReduce, rank " + std::to_string(r)));
  }
}

TEST_P(DeviceStreams, SeveralCollectivesInOneGroupMatchTheSameCallsOneByOne) {
  const int n = GetParam();
  const std::vector<Spec> specs = {
      {Kind::AllReduce, ncclFloat32, ncclSum, 100003, 0, false},
      {Kind::Broadcast, ncclInt8, ncclSum, 4097, n - 1, false},
      {Kind::Reduce, ncclBfloat16, ncclMin, 65537, 0, false},
      {Kind::AllGather, ncclFloat16, ncclSum, 777, 0, false},
      {Kind::ReduceScatter, ncclInt32, ncclMax, 12345, 0, false},
      {Kind::AllReduce, ncclInt32, ncclMax, 7, 0, true},
  };
  // Grouped: every job's call on every rank between one ncclGroupStart/End.
  std::vector<std::unique_ptr<Job>> jobs;
  for (size_t k = 0; k < specs.size(); ++k) {
    jobs.emplace_back(new Job(specs[k], n, 100 + k));
    ASSERT_TRUE(jobs.back()->upload(dc_));
  }
  ASSERT_TRUE(onEveryRank(dc_, [&](int r) {
    for (const auto& job : jobs)
      if (const ncclResult_t res = job->issue(dc_, r); res != ncclSuccess) return res;
    return ncclSuccess;
  }));
  for (const auto& job : jobs) EXPECT_TRUE(job->check(dc_)) << "(grouped)";
  // One by one, same inputs: the same (exact) results.
  for (size_t k = 0; k < specs.size(); ++k) EXPECT_TRUE(runJob(dc_, specs[k], 100 + k)) << "(one by one)";
}

// Every thread arrives with whether it is fine; all learn whether all are, so
// no rank launches a collective that a failed peer will never join.
class Rendezvous {
 public:
  explicit Rendezvous(int n) : n_(n) {}
  bool allOk(bool ok) {
    std::unique_lock<std::mutex> lock(mutex_);
    const int gen = generation_;
    good_ &= ok;
    if (++arrived_ == n_) {
      result_ = good_, arrived_ = 0, good_ = true, ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
    return result_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int n_, arrived_ = 0, generation_ = 0;
  bool good_ = true, result_ = true;
};

// A thread per rank, each capturing its own stream. ThreadLocal, not Global:
// the captures overlap in time, and under Global one thread's capture would
// forbid the others' cudaMalloc and other unsafe calls (the library's
// included) and invalidate the capture. ThreadLocal still forbids them on the
// capturing thread, as PyTorch's capture does.
TEST_P(DeviceStreams, AllReduceCapturedByEachRanksThreadReplaysWithNewInputs) {
  const int n = GetParam();
  Rendezvous meet(n);
  auto rank = [&](int r) {
    cudaSetDevice(0);
    cudaStream_t s = dc_.streams[r];
    DeviceBuffer send(kCount * 4), recv(kCount * 4);
    PinnedFloats in(kCount), out(kCount);
    bool ok = send.p && recv.p && in.p && out.p;
    EXPECT_TRUE(ok) << "rank " << r << ": allocation failed";
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    if (ok) {
      EXPECT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
      const ncclResult_t res = ncclAllReduce(send.p, recv.p, kCount, ncclFloat32, ncclSum, dc_.comms[r], s);
      EXPECT_EQ(res, ncclSuccess) << "rank " << r << ", captured ncclAllReduce: " << ncclText(res);
      const cudaError_t end = cudaStreamEndCapture(s, &graph);
      EXPECT_EQ(end, cudaSuccess) << "rank " << r << ": " << cudaText(end);
      ok = res == ncclSuccess && end == cudaSuccess && cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess;
      EXPECT_TRUE(ok) << "rank " << r << ": capture or instantiation failed";
    }
    for (int launch = 0; launch < 3 && meet.allOk(ok); ++launch) {
      inputs(in, r, 20 + launch);
      ok = cudaMemcpyAsync(send.p, in.p, kCount * 4, cudaMemcpyHostToDevice, s) == cudaSuccess &&
           cudaGraphLaunch(exec, s) == cudaSuccess &&
           cudaMemcpyAsync(out.p, recv.p, kCount * 4, cudaMemcpyDeviceToHost, s) == cudaSuccess &&
           cudaStreamSynchronize(s) == cudaSuccess;
      EXPECT_TRUE(ok) << "rank " << r << ", launch " << launch << ": " << cudaText(cudaGetLastError());
      const std::string what = "rank " + std::to_string(r) + ", launch " + std::to_string(launch);
      ok = ok && sameFloats(out.p, sums(n, 20 + launch), what);
      EXPECT_TRUE(ok) << what;
    }
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (graph != nullptr) cudaGraphDestroy(graph);
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) threads.emplace_back(rank, r);
  for (std::thread& t : threads) t.join();
}

// One thread captures every rank: stream 0 begins the capture, the other
// ranks' streams join it through an event, the group of AllReduces is
// captured, and the streams join back. One graph, launched on stream 0.
TEST_P(DeviceStreams, OneThreadCapturesEveryRankIntoOneGraph) {
  const int n = GetParam();
  cudaStream_t s0 = dc_.streams[0];
  std::vector<DeviceBuffer> send, recv;
  std::vector<PinnedFloats> in, out;
  std::vector<cudaEvent_t> events(n);
  for (int r = 0; r < n; ++r) {
    for (auto* v : {&send, &recv}) v->emplace_back(kCount * 4);
    for (auto* v : {&in, &out}) v->emplace_back(kCount);
    ASSERT_TRUE(send[r].p && recv[r].p && in[r].p && out[r].p) << "allocation failed";
    ASSERT_CUDA_OK(cudaEventCreateWithFlags(&events[r], cudaEventDisableTiming));
  }
  ASSERT_CUDA_OK(cudaStreamBeginCapture(s0, cudaStreamCaptureModeThreadLocal));
  cudaEventRecord(events[0], s0);  // fork
  for (int r = 1; r < n; ++r) cudaStreamWaitEvent(dc_.streams[r], events[0], 0);
  const auto captured = onEveryRank(dc_, [&](int r) {
    return ncclAllReduce(send[r].p, recv[r].p, kCount, ncclFloat32, ncclSum, dc_.comms[r], dc_.streams[r]);
  });
  for (int r = 1; r < n; ++r) {  // join, even after a failure, so that the capture can end
    cudaEventRecord(events[r], dc_.streams[r]);
    cudaStreamWaitEvent(s0, events[r], 0);
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(s0, &graph);
  EXPECT_TRUE(captured);
  ASSERT_EQ(end, cudaSuccess) << cudaText(end);
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  EXPECT_EQ(made, cudaSuccess) << cudaText(made);
  for (int launch = 0; made == cudaSuccess && captured && launch < 3 && !HasFailure(); ++launch) {
    for (int r = 0; r < n; ++r) {
      inputs(in[r], r, 30 + launch);
      ASSERT_CUDA_OK(cudaMemcpyAsync(send[r].p, in[r].p, kCount * 4, cudaMemcpyHostToDevice, s0));
    }
    ASSERT_CUDA_OK(cudaGraphLaunch(exec, s0));
    for (int r = 0; r < n; ++r)
      ASSERT_CUDA_OK(cudaMemcpyAsync(out[r].p, recv[r].p, kCount * 4, cudaMemcpyDeviceToHost, s0));
    ASSERT_CUDA_OK(cudaStreamSynchronize(s0));
    const std::vector<float> want = sums(n, 30 + launch);
    for (int r = 0; r < n; ++r)
      EXPECT_TRUE(sameFloats(out[r].p, want, "launch " + std::to_string(launch) + ", rank " +
                                                 std::to_string(r)));
  }
  if (exec != nullptr) cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  for (cudaEvent_t e : events) cudaEventDestroy(e);
}

// The call returned ncclInvalidArgument and ncclGetLastError names `argument`.
void expectRejectedNaming(ncclResult_t result, ncclComm_t comm, const char* argument) {
  EXPECT_EQ(result, ncclInvalidArgument) << ncclText(result, comm);
  const std::string text = ncclGetLastError(comm);
  EXPECT_NE(text.find(argument), std::string::npos) << "ncclGetLastError: " << text;
}

TEST_P(DeviceStreams, HostPointerIsInvalidArgumentNamingTheArgument) {
  // Plain malloc: pageable, never registered with CUDA.
  std::unique_ptr<void, decltype(&free)> host(calloc(1024, sizeof(float)), free);
  DeviceBuffer dev(1024 * 4);
  ASSERT_TRUE(host && dev.p);
  auto allReduce = [&](const void* send, void* recv) {
    return ncclAllReduce(send, recv, 1024, ncclFloat32, ncclSum, dc_.comms[0], dc_.streams[0]);
  };
  expectRejectedNaming(allReduce(host.get(), dev.p), dc_.comms[0], "sendbuff");
  expectRejectedNaming(allReduce(dev.p, host.get()), dc_.comms[0], "recvbuff");
  // Nothing was enqueued, and the communicators still work.
  EXPECT_TRUE(runJob(dc_, Spec{Kind::AllReduce, ncclFloat32, ncclSum, 1024, 0, false}, 40));
}

// A suite of its own: scripts/gpu_check.sh accepts its skip on a one-GPU
// machine (any other skip there means no usable device).
TEST(DeviceCommTwoGpus, PointerOfTheOtherGpuIsInvalidArgumentNamingTheArgument) {
  SKIP_WITHOUT_DEVICE_COMMS();
  int devices = 0;
  ASSERT_CUDA_OK(cudaGetDeviceCount(&devices));
  if (devices < 2) GTEST_SKIP() << "needs 2 GPUs; this machine has " << devices;
  ASSERT_CUDA_OK(cudaSetDevice(1));
  DeviceBuffer elsewhere(1024 * 4);
  DeviceComms dc;
  ASSERT_TRUE(makeComms(1, InitWay::InitAll, &dc));  // on GPU 0
  DeviceBuffer here(1024 * 4);
  ASSERT_TRUE(elsewhere.p && here.p);
  auto allReduce = [&](const void* send, void* recv) {
    return ncclAllReduce(send, recv, 1024, ncclFloat32, ncclSum, dc.comms[0], dc.streams[0]);
  };
  expectRejectedNaming(allReduce(elsewhere.p, here.p), dc.comms[0], "sendbuff");
  expectRejectedNaming(allReduce(here.p, elsewhere.p), dc.comms[0], "recvbuff");
}

TEST_P(DeviceStreams, MemAllocGivesDeviceMemoryThatCollectivesUse) {
  const int n = GetParam();
  std::vector<void*> buffers(n, nullptr);
  for (int r = 0; r < n; ++r) {
    ASSERT_NCCL_OK(ncclMemAlloc(&buffers[r], kCount * 4));
    cudaPointerAttributes attr{};
    ASSERT_CUDA_OK(cudaPointerGetAttributes(&attr, buffers[r]));
    EXPECT_EQ(attr.type, cudaMemoryTypeDevice);
    EXPECT_EQ(attr.device, 0);
  }
  EXPECT_TRUE(allReduceOn(dc_, buffers, buffers, 50));  // in place
  for (void* p : buffers) EXPECT_NCCL_OK(ncclMemFree(p));
}

// Out of place on registered buffers, twice (a registration is reused), from
// cudaMalloc and from ncclMemAlloc; then an AllReduce small enough to run in
// one shot (every rank reads every input, which it may lend when it is not
// its output: runtime/direct_mode.h, lentSides), out of place and in place.
TEST_P(DeviceStreams, RegisteredBuffersGiveExactResults) {
  const int n = GetParam();
  for (bool memAlloc : {false, true}) {
    SCOPED_TRACE(memAlloc ? "ncclMemAlloc buffers" : "cudaMalloc buffers");
    std::vector<void*> send(n, nullptr), recv(n, nullptr), sendHandle(n, nullptr), recvHandle(n, nullptr);
    for (int r = 0; r < n; ++r) {
      for (void** p : {&send[r], &recv[r]}) {
        if (memAlloc) ASSERT_NCCL_OK(ncclMemAlloc(p, kCount * 4));
        else ASSERT_CUDA_OK(cudaMalloc(p, kCount * 4));
      }
      EXPECT_NCCL_OK(ncclCommRegister(dc_.comms[r], send[r], kCount * 4, &sendHandle[r]));
      EXPECT_NCCL_OK(ncclCommRegister(dc_.comms[r], recv[r], kCount * 4, &recvHandle[r]));
    }
    EXPECT_TRUE(allReduceOn(dc_, send, recv, 60));
    EXPECT_TRUE(allReduceOn(dc_, send, recv, 61));
    EXPECT_TRUE(allReduceOn(dc_, send, recv, 62, kOneShotCount));
    EXPECT_TRUE(allReduceOn(dc_, send, send, 63, kOneShotCount));
    for (int r = 0; r < n; ++r) {
      EXPECT_NCCL_OK(ncclCommDeregister(dc_.comms[r], sendHandle[r]));
      EXPECT_NCCL_OK(ncclCommDeregister(dc_.comms[r], recvHandle[r]));
      for (void* p : {send[r], recv[r]}) {
        if (memAlloc) EXPECT_NCCL_OK(ncclMemFree(p));
        else EXPECT_EQ(cudaFree(p), cudaSuccess);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(OnOneGpu, DeviceStreams, ::testing::Values(1, 2, 4), ranksName);

}  // namespace
