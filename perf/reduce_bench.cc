// Throughput of the host reduction loops (reduceCopy), with memcpy as the
// baseline, at sizes from L1-resident to far beyond the last-level cache.
//
// "bytes" in the name is the size of one buffer. reduceCopy reads peer and
// local and writes dst, so it is credited with 3x that many bytes; memcpy
// reads and writes one buffer each and is credited with 2x. Both rates are
// therefore memory traffic per second and compare directly: a reduction that
// runs at memcpy's rate is limited by memory, not by arithmetic.
//
//   ./perf/reduce_bench --benchmark_min_time=0.05
//   ./perf/reduce_bench --baseline   # only the baseline (SSE2) loops, no AVX2/F16C
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "collectives/datatypes.h"
#include "collectives/reduce_copy.h"

using namespace chorus;

namespace {

constexpr size_t kSizes[] = {4u << 10, 256u << 10, 8u << 20, 64u << 20};

// Buffers are allocated and filled once per benchmark, outside the timing:
// the loop must not measure page faults.
struct Buffers {
  std::vector<unsigned char> peer, local, dst;
  explicit Buffers(size_t bytes) : peer(bytes), local(bytes), dst(bytes) {}
};

// Small normal values (no denormals, which are slow on some CPUs).
struct Fill {
  void* p;
  size_t count;
  int salt;
  template <typename T>
  void operator()() const {
    T* t = static_cast<T*>(p);
    for (size_t i = 0; i < count; ++i) t[i] = fromCompute<T>(ComputeType<T>((i * 7 + salt) % 13 + 1));
  }
};

void benchReduce(benchmark::State& state, RedOpArgs op, bool applyPre, size_t bytes) {
  const size_t count = bytes / elementSize(op.type);
  Buffers b(bytes);
  dispatchType(op.type, Fill{b.peer.data(), count, 1});
  dispatchType(op.type, Fill{b.local.data(), count, 2});
  std::memset(b.dst.data(), 0, bytes);
  for (auto _ : state) {
    reduceCopy(op, b.peer.data(), b.local.data(), applyPre, b.dst.data(), false, count);
    benchmark::DoNotOptimize(b.dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(3 * bytes));
}

void benchMemcpy(benchmark::State& state, size_t bytes) {
  Buffers b(bytes);
  std::memset(b.local.data(), 1, bytes);
  std::memset(b.dst.data(), 0, bytes);
  for (auto _ : state) {
    std::memcpy(b.dst.data(), b.local.data(), bytes);
    benchmark::DoNotOptimize(b.dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(2 * bytes));
}

std::string sizeName(size_t bytes) {
  return bytes >= (1u << 20) ? std::to_string(bytes >> 20) + "MiB"
                             : std::to_string(bytes >> 10) + "KiB";
}

}  // namespace

int main(int argc, char** argv) {
  struct Case {
    const char* name;
    RedOpArgs op;
    bool pre;
  };
  const float scale = 0.5f;
  const Case cases[] = {
      {"fp32_sum", builtinRedOp(ncclSum, ncclFloat32, 2), false},
      {"fp16_sum", builtinRedOp(ncclSum, ncclFloat16, 2), false},
      {"bf16_sum", builtinRedOp(ncclSum, ncclBfloat16, 2), false},
      {"fp64_sum", builtinRedOp(ncclSum, ncclFloat64, 2), false},
      {"int32_sum", builtinRedOp(ncclSum, ncclInt32, 2), false},
      {"fp32_premulsum", preMulSumOp(ncclFloat32, &scale), true},
      {"fp8e4m3_sum", builtinRedOp(ncclSum, ncclFloat8e4m3, 2), false},
  };
  for (size_t bytes : kSizes) {
    benchmark::RegisterBenchmark(("memcpy/" + sizeName(bytes)).c_str(), benchMemcpy, bytes);
    for (const Case& c : cases) {
      benchmark::RegisterBenchmark((std::string(c.name) + "/" + sizeName(bytes)).c_str(),
                                   benchReduce, c.op, c.pre, bytes);
    }
  }
  // Our own flag, removed before Google Benchmark sees the arguments.
  bool baseline = !reduceCopyHasWideLoops();
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--baseline") == 0) {
      baseline = true;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  reduceCopyForceBaseline(baseline);
  benchmark::AddCustomContext("reduce_loops", baseline ? "baseline (SSE2)" : "AVX2, F16C for half");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
