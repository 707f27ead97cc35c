// Throughput of the device reduce-copy kernel (launchReduceCopy) next to
// cudaMemcpyAsync device to device, on the current GPU, timed with CUDA
// events (Google Benchmark's manual time).
//
// "bytes" in a name is the size of one buffer. A reduction reads two buffers
// and writes one, so it is credited with 3x that many bytes; a copy reads and
// writes one each (2x). GB/s (10^9 bytes per second) is therefore memory
// traffic and compares directly, and the reductions report vs_copy: their
// GB/s over the copy's at the same size (1.0: the reduction runs at copy
// bandwidth). The console prints counters with SI prefixes (GB/s=2.9k is
// 2.9 TB/s); --benchmark_format=json gives the plain numbers.
//
//   ./perf/device_reduce_bench
//   ./perf/device_reduce_bench --benchmark_filter=256MiB
//
// Without a usable CUDA device it says so and exits 0.
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <map>
#include <string>

#include "collectives/reduce_ops.h"
#include "common/result.h"
#include "device/reduce_copy_kernel.h"

using namespace chorus;

namespace {

constexpr size_t kSizes[] = {1u << 20, 16u << 20, 256u << 20};
// Operations per timed batch: small sizes are batched so that a batch moves
// at least 64 MiB and the events' resolution (~0.5 us) does not matter.
constexpr size_t kBatchBytes = 64u << 20;

cudaStream_t stream = nullptr;
// Copy GB/s per buffer size, from the memcpy benchmark (or measured on demand
// when a filter left that out), for the reductions' vs_copy.
std::map<size_t, double> copyRates;

struct Buffers {
  void* peer = nullptr;
  void* local = nullptr;
  void* dst = nullptr;
  cudaError_t err = cudaSuccess;
  explicit Buffers(size_t bytes) {
    for (void** p : {&peer, &local, &dst}) {
      if (err == cudaSuccess) err = cudaMalloc(p, bytes);
      // Finite, normal values in float, half and bf16 (0x3c3c...).
      if (err == cudaSuccess) err = cudaMemset(*p, 0x3c, bytes);
    }
  }
  ~Buffers() {
    cudaFree(peer);
    cudaFree(local);
    cudaFree(dst);
  }
};

// Runs op `reps` times between two events; the seconds it took, or -1 (with
// the benchmark failed) on an error. op returns true on success.
template <typename Op>
double timeBatch(benchmark::State& state, int reps, Op&& op) {
  cudaEvent_t start = nullptr, stop = nullptr;
  float ms = 0;
  bool ok = cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess &&
            cudaEventRecord(start, stream) == cudaSuccess;
  for (int r = 0; ok && r < reps; ++r) ok = op();
  ok = ok && cudaEventRecord(stop, stream) == cudaSuccess &&
       cudaEventSynchronize(stop) == cudaSuccess &&
       cudaEventElapsedTime(&ms, start, stop) == cudaSuccess;
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  if (!ok) {
    const std::string what = lastError().empty() ? cudaGetErrorString(cudaGetLastError()) : lastError();
    state.SkipWithError(what.c_str());
    return -1;
  }
  return ms / 1e3;
}

// Times batches of op for as long as Google Benchmark asks, and returns GB/s
// for `moved` bytes per operation (0 after an error).
template <typename Op>
double run(benchmark::State& state, size_t moved, Op&& op) {
  const int reps = int(kBatchBytes / moved > 0 ? kBatchBytes / moved : 1);
  if (timeBatch(state, 1, op) < 0) return 0;  // warm-up: module loading, first touch
  double seconds = 0;
  for (auto _ : state) {
    const double s = timeBatch(state, reps, op);
    if (s < 0) return 0;
    state.SetIterationTime(s);
    seconds += s;
  }
  const double gbs = seconds > 0 ? double(moved) * reps * double(state.iterations()) / seconds / 1e9 : 0;
  state.counters["GB/s"] = gbs;
  return gbs;
}

bool copyOnce(const Buffers& b, size_t bytes) {
  return cudaMemcpyAsync(b.dst, b.local, bytes, cudaMemcpyDeviceToDevice, stream) == cudaSuccess;
}

void benchCopy(benchmark::State& state, size_t bytes) {
  Buffers b(bytes);
  if (b.err != cudaSuccess) return state.SkipWithError(cudaGetErrorString(b.err));
  const double gbs = run(state, 2 * bytes, [&] { return copyOnce(b, bytes); });
  if (gbs > 0) copyRates[bytes] = gbs;
}

void benchReduce(benchmark::State& state, RedOpArgs op, size_t bytes) {
  Buffers b(bytes);
  if (b.err != cudaSuccess) return state.SkipWithError(cudaGetErrorString(b.err));
  const size_t count = bytes / elementSize(op.type);
  const double gbs = run(state, 3 * bytes, [&] {
    return launchReduceCopy(op, b.peer, b.local, false, b.dst, false, count, stream) == ncclSuccess;
  });
  if (gbs <= 0) return;
  if (!copyRates.count(bytes)) {  // the copy benchmark was filtered out: a quick measurement
    const double s = timeBatch(state, 20, [&] { return copyOnce(b, bytes); });
    if (s > 0) copyRates[bytes] = 2.0 * double(bytes) * 20 / s / 1e9;
  }
  if (copyRates.count(bytes)) state.counters["vs_copy"] = gbs / copyRates[bytes];
}

std::string sizeName(size_t bytes) { return std::to_string(bytes >> 20) + "MiB"; }

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  const cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess || devices == 0) {
    std::printf("device_reduce_bench: no CUDA device (%s); nothing to measure\n",
                err != cudaSuccess ? cudaGetErrorString(err) : "cudaGetDeviceCount returned 0");
    return 0;
  }
  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess || cudaGetDeviceProperties(&prop, device) != cudaSuccess ||
      cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) {
    std::fprintf(stderr, "device_reduce_bench: CUDA setup failed: %s\n",
                 cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  benchmark::AddCustomContext("device", std::to_string(device) + ": " + prop.name);

  struct Case {
    const char* name;
    ncclDataType_t type;
  };
  const Case cases[] = {{"fp32_sum", ncclFloat32}, {"bf16_sum", ncclBfloat16}, {"fp16_sum", ncclFloat16}};
  for (size_t bytes : kSizes) {
    benchmark::RegisterBenchmark(("memcpy_d2d/" + sizeName(bytes)).c_str(), benchCopy, bytes)
        ->UseManualTime()->Unit(benchmark::kMicrosecond);
    for (const Case& c : cases) {
      benchmark::RegisterBenchmark((std::string(c.name) + "/" + sizeName(bytes)).c_str(), benchReduce,
                                   builtinRedOp(ncclSum, c.type, 2), bytes)
          ->UseManualTime()->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  cudaStreamDestroy(stream);
  return 0;
}
