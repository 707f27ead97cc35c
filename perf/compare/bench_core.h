// The benchmark core shared by every backend of perf/compare (Chorus, Open
// MPI, MPICH, Gloo). Everything that decides what a number means lives here,
// once: the sizes, the input values, the warm-up, the iteration count, the
// timing, busbw, and the check of every result. A backend only says how to
// start, how to run one collective on the buffers it is given, and how to stop.
//
// One program = one backend, one collective, one rank count; it sweeps sizes.
// Rank 0 prints one machine-readable line per size on stdout:
//   RESULT,<lib>,<op>,<nranks>,<bytes>,<count>,<warmup>,<iters>,<time_us>,<algbw>,<busbw>,<ok|FAIL>,<wrong>
// Mismatches and errors go to stderr on the rank that saw them.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace compare {

enum class Op { AllReduce, AllGather, Broadcast, ReduceScatter };

inline const char* opName(Op op) {
  switch (op) {
    case Op::AllReduce: return "allreduce";
    case Op::AllGather: return "allgather";
    case Op::Broadcast: return "broadcast";
    case Op::ReduceScatter: return "reducescatter";
  }
  return "?";
}

inline bool parseOp(const char* s, Op* op) {
  for (Op o : {Op::AllReduce, Op::AllGather, Op::Broadcast, Op::ReduceScatter})
    if (strcmp(s, opName(o)) == 0) {
      *op = o;
      return true;
    }
  return false;
}

// What a library must provide. Every call returns false after printing a
// message to stderr; the core then stops this rank with a non-zero status.
//
// run() semantics, the same for every library (float, sum, root 0):
//   AllReduce      send[count]          -> recv[count]
//   AllGather      send[count]          -> recv[count * nranks]
//   ReduceScatter  send[count * nranks] -> recv[count]
//   Broadcast      recv[count] in place: root 0's recv is the data (MPI_Bcast
//                  has one buffer only, so every library broadcasts in place)
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual std::string version() const = 0;
  virtual bool init(int* rank, int* nranks) = 0;
  // Called before the warm-up of each size and after its check; not timed.
  // Libraries whose algorithm objects are bound to buffers build them here.
  virtual bool prepare(Op, const float* /*send*/, float* /*recv*/, size_t /*count*/) { return true; }
  virtual void release(Op) {}
  virtual bool run(Op op, const float* send, float* recv, size_t count) = 0;
  // False when run() overwrites `send` (Gloo's in-place reduce-scatter): the
  // core then refills the input and runs once more before checking.
  virtual bool keepsInput(Op) const { return true; }
  // --register: buffers of `bytes` from the library's own allocator,
  // registered with its communicator and zero-filled (nccl-tests' -R 1);
  // null, after a message, where it cannot.
  virtual float* allocateRegistered(size_t /*bytes*/) {
    fprintf(stderr, "%s cannot register buffers\n", name());
    return nullptr;
  }
  virtual void freeRegistered(float* /*buffer*/) {}
  // *value becomes its maximum over all ranks. Used outside the timed loops,
  // to agree on iteration counts, times and error counts, and as a barrier.
  virtual bool maxOverRanks(double* value) = 0;
  virtual void finalize() = 0;
};

struct Options {
  Op op = Op::AllReduce;
  size_t minBytes = 8;
  size_t maxBytes = size_t(128) << 20;
  std::vector<size_t> sizes;  // --sizes: these nominal sizes instead of every power of 2
  // The iteration count is scaled with size: dataPerSize / bytes, clamped to
  // [minIters, maxIters]; then lowered (not below minIters) so that the timed
  // loop lasts about `budget` seconds, judged from the slowest rank's median
  // warm-up iteration. All ranks agree on it because it comes from a max.
  // Small sizes run many iterations: a sub-microsecond operation timed 200
  // times measures one scheduler tick more than the library.
  size_t dataPerSize = size_t(1) << 30;
  int minIters = 3, maxIters = 20000, maxWarmup = 5;
  // The first size of a sweep warms up longer: connections, lazily built
  // state and caches are all cold then, and it is the size of the latency.
  int firstWarmup = 20;
  // ...and its timed loop may fill the whole budget: 20000 runs of a 0.1 us
  // operation last 2 ms, and two ranks that start such a window in lock
  // step may stay so for all of it, while over a longer loop they settle
  // into their steady pace.
  int firstMaxIters = 2000000;
  double budget = 1.0;
  bool registerBuffers = false;  // --register: Backend::allocateRegistered
};

inline void usage(const char* prog) {
  fprintf(stderr,
          "usage: %s --op allreduce|allgather|broadcast|reducescatter [--min-bytes B] [--max-bytes B]\n"
          "          [--quick] [--data-per-size B] [--min-iters N] [--max-iters N] [--max-warmup N]\n"
          "          [--budget SECONDS] [--sizes B,B,...] [--register]\n",
          prog);
}

inline bool parseOptions(int argc, char** argv, Options* o) {
  bool haveOp = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&](const char** v) {
      if (i + 1 >= argc) return false;
      *v = argv[++i];
      return true;
    };
    const char* v = nullptr;
    if (a == "--quick") {
      o->dataPerSize = size_t(256) << 20;
      o->minIters = 2;
      o->maxIters = 2000;
      o->maxWarmup = 2;
      o->firstWarmup = 5;
      o->firstMaxIters = 500000;
      o->budget = 0.25;
    } else if (a == "--register") {
      o->registerBuffers = true;
    } else if (a == "--op" && next(&v)) {
      if (!parseOp(v, &o->op)) return false;
      haveOp = true;
    } else if (a == "--min-bytes" && next(&v)) {
      o->minBytes = strtoull(v, nullptr, 0);
    } else if (a == "--max-bytes" && next(&v)) {
      o->maxBytes = strtoull(v, nullptr, 0);
    } else if (a == "--data-per-size" && next(&v)) {
      o->dataPerSize = strtoull(v, nullptr, 0);
    } else if (a == "--min-iters" && next(&v)) {
      o->minIters = atoi(v);
    } else if (a == "--max-iters" && next(&v)) {
      o->maxIters = o->firstMaxIters = atoi(v);  // a cap asked for holds at every size
    } else if (a == "--max-warmup" && next(&v)) {
      o->maxWarmup = atoi(v);
    } else if (a == "--budget" && next(&v)) {
      o->budget = atof(v);
    } else if (a == "--sizes" && next(&v)) {
      for (const char* p = v; *p != '\0';) {
        char* end = nullptr;
        o->sizes.push_back(strtoull(p, &end, 0));
        if (end == p) return false;
        p = (*end == ',') ? end + 1 : end;
      }
    } else {
      return false;
    }
  }
  if (o->sizes.empty())
    for (size_t b = o->minBytes; b <= o->maxBytes && b >= 4; b *= 2) o->sizes.push_back(b);
  std::sort(o->sizes.begin(), o->sizes.end());
  return haveOp && !o->sizes.empty() && o->sizes.front() >= 4 && o->minIters >= 1 && o->maxIters >= o->minIters &&
         o->firstMaxIters >= o->minIters &&
         o->maxWarmup >= 1;
}

// nccl-tests' bus bandwidth factors: busbw = algbw * factor, the per-rank
// traffic of a bandwidth-optimal algorithm relative to the buffer size.
inline double busFactor(Op op, int n) {
  switch (op) {
    case Op::AllReduce: return 2.0 * (n - 1) / n;
    case Op::AllGather:
    case Op::ReduceScatter: return double(n - 1) / n;
    case Op::Broadcast: return 1.0;
  }
  return 1.0;
}

// Per-rank element count for a nominal size, as in nccl-tests (the size is
// the whole buffer: allgather's output, reduce-scatter's input), but never 0:
// with 4 ranks the smallest allgather/reduce-scatter moves one float each.
inline size_t countFor(Op op, size_t bytes, int n) {
  size_t floats = bytes / sizeof(float);
  if (op == Op::AllGather || op == Op::ReduceScatter) floats /= size_t(n);
  return std::max<size_t>(floats, 1);
}

inline size_t bytesFor(Op op, size_t count, int n) {
  size_t b = count * sizeof(float);
  return (op == Op::AllGather || op == Op::ReduceScatter) ? b * size_t(n) : b;
}

// Integer-valued inputs that depend on rank and index: sums of up to
// thousands of ranks stay far below 2^24, so every result is exact in float
// whatever order a library reduces in. 1009 is prime, so a chunk put in the
// wrong place shows up as a different value.
inline float inputValue(int rank, size_t index) {
  return float((index * 7 + size_t(rank) * 101 + 3) % 1009);
}

inline float sumOverRanks(int n, size_t index) {
  uint64_t s = 0;
  for (int r = 0; r < n; ++r) s += uint64_t(inputValue(r, index));
  return float(s);
}

constexpr float kSentinel = -1.0f;  // never a valid result: inputs are >= 0

// Writes this rank's input for one size and marks the output as not written.
inline void fillBuffers(Op op, int rank, int n, size_t count, float* send, float* recv) {
  switch (op) {
    case Op::AllReduce:
      for (size_t i = 0; i < count; ++i) send[i] = inputValue(rank, i);
      std::fill(recv, recv + count, kSentinel);
      break;
    case Op::AllGather:
      for (size_t i = 0; i < count; ++i) send[i] = inputValue(rank, size_t(rank) * count + i);
      std::fill(recv, recv + count * size_t(n), kSentinel);
      break;
    case Op::ReduceScatter:
      for (size_t i = 0; i < count * size_t(n); ++i) send[i] = inputValue(rank, i);
      std::fill(recv, recv + count, kSentinel);
      break;
    case Op::Broadcast:
      for (size_t i = 0; i < count; ++i) recv[i] = rank == 0 ? inputValue(0, i) : kSentinel;
      break;
  }
}

// Counts wrong elements of the output; prints the first few.
inline size_t verify(const char* lib, Op op, int rank, int n, size_t count, const float* recv) {
  size_t total = (op == Op::AllGather) ? count * size_t(n) : count;
  size_t wrong = 0;
  for (size_t i = 0; i < total; ++i) {
    float want = 0;
    switch (op) {
      case Op::AllReduce: want = sumOverRanks(n, i); break;
      case Op::AllGather: want = inputValue(int(i / count), i); break;
      case Op::ReduceScatter: want = sumOverRanks(n, size_t(rank) * count + i); break;
      case Op::Broadcast: want = inputValue(0, i); break;
    }
    if (recv[i] != want) {
      if (wrong < 5)
        fprintf(stderr, "MISMATCH %s %s nranks=%d bytes=%zu rank=%d index=%zu: got %.1f, expected %.1f\n", lib,
                opName(op), n, bytesFor(op, count, n), rank, i, double(recv[i]), double(want));
      ++wrong;
    }
  }
  if (wrong > 5)
    fprintf(stderr, "MISMATCH %s %s nranks=%d bytes=%zu rank=%d: %zu of %zu elements wrong\n", lib, opName(op), n,
            bytesFor(op, count, n), rank, wrong, total);
  return wrong;
}

// Page-aligned, touched once here so that no page is first touched while timed.
inline float* allocTouched(size_t bytes) {
  size_t rounded = (bytes + 4095) / 4096 * 4096;
  void* p = aligned_alloc(4096, rounded);
  if (p != nullptr) memset(p, 0, rounded);
  return static_cast<float*>(p);
}

inline double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs the sweep for one backend; returns the process exit status.
inline int benchMain(Backend& b, int argc, char** argv) {
  Options o;
  if (!parseOptions(argc, argv, &o)) {
    usage(argv[0]);
    return 2;
  }
  int rank = -1, n = 0;
  if (!b.init(&rank, &n)) return 1;
  const char* lib = b.name();
  auto fail = [&](const char* what, size_t bytes) {
    fprintf(stderr, "ERROR %s %s nranks=%d bytes=%zu rank=%d: %s failed\n", lib, opName(o.op), n, bytes, rank, what);
    fflush(stderr);
    return 1;  // no finalize: peers may be stuck inside the library
  };

  // The largest buffers of the sweep, for every op: allocated and touched once.
  size_t maxCount = countFor(o.op, o.sizes.back(), n);
  size_t sendBytes = maxCount * sizeof(float) * ((o.op == Op::ReduceScatter) ? size_t(n) : 1);
  size_t recvBytes = maxCount * sizeof(float) * ((o.op == Op::AllGather) ? size_t(n) : 1);
  float* send = o.registerBuffers ? b.allocateRegistered(sendBytes) : allocTouched(sendBytes);
  float* recv = o.registerBuffers ? b.allocateRegistered(recvBytes) : allocTouched(recvBytes);
  if (send == nullptr || recv == nullptr) {
    fprintf(stderr, "rank %d: cannot allocate %zu + %zu bytes\n", rank, sendBytes, recvBytes);
    return 1;
  }
  if (rank == 0) {
    printf("# lib=%s version=\"%s\" op=%s nranks=%d\n", lib, b.version().c_str(), opName(o.op), n);
    fflush(stdout);
  }

  int failures = 0;
  size_t lastCount = 0;
  for (size_t nominal : o.sizes) {
    size_t count = countFor(o.op, nominal, n);
    if (count == lastCount) continue;  // several nominal sizes round to one float per rank
    lastCount = count;
    size_t bytes = bytesFor(o.op, count, n);
    fillBuffers(o.op, rank, n, count, send, recv);
    if (!b.prepare(o.op, send, recv, count)) return fail("prepare", bytes);
    // Everyone has prepared before anyone sends: Gloo's algorithm objects
    // register their receive buffers in prepare().
    double zero = 0;
    if (!b.maxOverRanks(&zero)) return fail("barrier", bytes);

    size_t scaled = o.dataPerSize / bytes;
    const bool latencySize = lastCount == countFor(o.op, o.sizes.front(), n);
    const size_t maxIters = size_t(latencySize ? o.firstMaxIters : o.maxIters);
    int iters = int(std::min<size_t>(std::max<size_t>(scaled, size_t(o.minIters)), maxIters));
    int warmup = std::max(1, std::min(o.maxWarmup, iters / 4));
    if (latencySize) warmup = std::max(warmup, o.firstWarmup);
    std::vector<double> warmTimes;
    for (int i = 0; i < warmup; ++i) {
      double t0 = now();
      if (!b.run(o.op, send, recv, count)) return fail("warm-up run", bytes);
      warmTimes.push_back(now() - t0);
    }
    // The median: one warm-up run that lost the core to another process
    // would otherwise cut a fast operation's count a thousandfold.
    std::nth_element(warmTimes.begin(), warmTimes.begin() + warmTimes.size() / 2, warmTimes.end());
    double warm = warmTimes[warmTimes.size() / 2];
    if (!b.maxOverRanks(&warm)) return fail("max over ranks", bytes);
    // Back-to-back runs can be slower than single ones (a root that runs
    // ahead fills its readers' queues): a batch of a tenth of the budget,
    // run untimed by the result, bounds the count too. Every rank derives
    // the batch from the same maximum, so all run the same number.
    if (warm > 0 && iters > 10) {
      const int batch = int(std::max(1.0, std::min(double(iters / 10), 0.1 * o.budget / warm)));
      double t0 = now();
      for (int i = 0; i < batch; ++i)
        if (!b.run(o.op, send, recv, count)) return fail("warm-up run", bytes);
      double batchTime = (now() - t0) / batch;
      if (!b.maxOverRanks(&batchTime)) return fail("max over ranks", bytes);
      warm = std::max(warm, batchTime);
    }
    if (warm > 0 && warm * iters > o.budget) iters = std::max(o.minIters, int(o.budget / warm));

    // The max above ended with every rank leaving the same collective: the
    // timed loops start together.
    double t0 = now();
    for (int i = 0; i < iters; ++i)
      if (!b.run(o.op, send, recv, count)) return fail("timed run", bytes);
    double avg = (now() - t0) / iters;
    if (!b.maxOverRanks(&avg)) return fail("max over ranks", bytes);

    // The check, after the timed runs. Libraries that keep their input are
    // checked on the output of the last timed run; the others run once more
    // on fresh input.
    if (!b.keepsInput(o.op)) {
      fillBuffers(o.op, rank, n, count, send, recv);
      if (!b.run(o.op, send, recv, count)) return fail("check run", bytes);
    }
    double wrong = double(verify(lib, o.op, rank, n, count, recv));
    if (!b.maxOverRanks(&wrong)) return fail("max over ranks", bytes);
    b.release(o.op);
    if (wrong > 0) ++failures;

    if (rank == 0) {
      double algbw = double(bytes) / avg / 1e9;
      printf("RESULT,%s,%s,%d,%zu,%zu,%d,%d,%.3f,%.4f,%.4f,%s,%.0f\n", lib, opName(o.op), n, bytes, count, warmup,
             iters, avg * 1e6, algbw, algbw * busFactor(o.op, n), wrong > 0 ? "FAIL" : "ok", wrong);
      fflush(stdout);
    }
  }
  for (float* buffer : {send, recv})
    if (o.registerBuffers)
      b.freeRegistered(buffer);
    else
      free(buffer);
  b.finalize();
  return failures == 0 ? 0 : 3;
}

}  // namespace compare
