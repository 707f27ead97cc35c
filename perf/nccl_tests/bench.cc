#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "buffer_io.h"
#include "pattern.h"
#include "perf_types.h"

namespace perf {

namespace {

using Clock = std::chrono::steady_clock;

struct Sample {  // what each rank contributes after a measurement
  double seconds;
  double wrong;
};

ncclRedOp_t builtin(Reduction r) {
  switch (r) {
    case Reduction::Prod: return ncclProd;
    case Reduction::Max: return ncclMax;
    case Reduction::Min: return ncclMin;
    case Reduction::Avg: return ncclAvg;
    default: return ncclSum;
  }
}

}  // namespace

Bench::Bench(ThreadRanks& ranks, const Collective& collective, const Options& options,
             const World& world, Report* report)
    : ranks_(ranks), collective_(collective), options_(options), world_(world), report_(report),
      nranks_(world.nranks()) {
  const char* c = getenv("CHORUS_PERF_CORRUPT");
  corrupt_ = c != nullptr && strcmp(c, "1") == 0;
}

void Bench::run() {
  if (collective_.unsupported != nullptr) {
    if (const char* why = collective_.unsupported(nranks_)) {
      if (report_ != nullptr)
        report_->note(std::string(collective_.name) + " skipped with " + std::to_string(nranks_) +
                      " ranks: " + why);
      return;
    }
  }
  std::vector<int> roots{-1};
  if (collective_.rooted) {
    roots.clear();
    for (int r = 0; r < nranks_; ++r)
      if (options_.root < 0 || options_.root == r) roots.push_back(r);
  }
  const std::vector<Reduction> ops =
      collective_.reduces ? options_.ops : std::vector<Reduction>{Reduction::Sum};
  for (ncclDataType_t type : options_.types)
    for (Reduction reduction : ops)
      for (int root : roots) sweep(type, reduction, root);
}

Bench::Point Bench::point(ncclDataType_t type, Reduction reduction, int root, size_t bytes) const {
  Point p{type, reduction, root < 0 ? 0 : root, typeInfo(type).size, {}};
  p.layout = collective_.layout(bytes / p.eltSize, p.eltSize, nranks_);
  return p;
}

size_t Bench::nextSize(size_t size) const {
  if (options_.stepFactor > 1) return size == 0 ? 1 : size * options_.stepFactor;
  return size + options_.stepBytes;
}

void Bench::sweep(ncclDataType_t type, Reduction reduction, int root) {
  makeOps(type, reduction);
  ranks_.barrier();
  for (size_t bytes : {options_.maxBytes, options_.minBytes}) {  // warm up, as nccl-tests does
    const Point p = point(type, reduction, root, bytes);
    for (int i = 0; i < options_.warmupIters; ++i) start(p, false, 1);
    ranks_.finish("warm-up");
  }
  const char* typeName = typeInfo(type).name;
  const char* opName = collective_.reduces ? reductionName(reduction) : "none";
  for (int cycle = 0; options_.runCycles == 0 || cycle < options_.runCycles; ++cycle) {
    for (size_t bytes = options_.minBytes; bytes <= options_.maxBytes; bytes = nextSize(bytes)) {
      const Point p = point(type, reduction, root, bytes);
      const Cell out = measure(p, false);
      const Cell in = measure(p, true);
      if (report_ != nullptr) {
        const size_t shown = std::max(p.layout.sendCount, p.layout.recvCount) * p.eltSize;
        report_->row(shown, p.layout.paramCount, typeName, opName, collective_.rooted ? root : -1,
                     out, in);
      }
      if (nextSize(bytes) <= bytes) break;  // the next size would wrap around
    }
  }
  freeOps();
}

void Bench::makeOps(ncclDataType_t type, Reduction reduction) {
  for (Slot& s : ranks_.slots()) {
    s.opIsUser = false;
    s.op = builtin(reduction);
    if (!collective_.reduces || reduction != Reduction::PreMulSum) continue;
    // The scalar, in the datatype, on the host: 1 or 2 per rank keeps every sum exact.
    alignas(8) unsigned char scalar[8] = {0};
    const double value = Pattern::scalar(s.rank);
    encode(type, &value, 1, scalar);
    ranks_.check(ncclRedOpCreatePreMulSum(&s.op, scalar, type, ncclScalarHostImmediate, s.comm),
                 "ncclRedOpCreatePreMulSum", s.comm);
    s.opIsUser = true;
  }
}

void Bench::freeOps() {
  for (Slot& s : ranks_.slots()) {
    if (s.opIsUser) ranks_.check(ncclRedOpDestroy(s.op, s.comm), "ncclRedOpDestroy", s.comm);
    s.opIsUser = false;
  }
}

void Bench::start(const Point& p, bool inPlace, int repeat) {
  const int steps = collective_.steps != nullptr ? collective_.steps(nranks_) : 1;
  const Layout& l = p.layout;
  for (int step = 0; step < steps; ++step) {
    ranks_.issue(collective_.name, [&](Slot& s) {
      char* recv = static_cast<char*>(s.recv);
      const size_t me = static_cast<size_t>(s.rank);
      Call call{inPlace ? recv + l.sendInplaceOffset * me * p.eltSize : s.send,
                recv + (inPlace ? l.recvInplaceOffset * me * p.eltSize : 0),
                l.paramCount, p.type, s.op, p.root, s.rank, nranks_, s.comm, s.memory->stream(),
                s.memory.get(), step};
      ncclResult_t r = ncclSuccess;
      for (int i = 0; i < repeat && (r == ncclSuccess || r == ncclInProgress); ++i)
        r = collective_.run(call);
      return r;
    }, repeat > 1 || steps > 1);
  }
}

Cell Bench::measure(const Point& p, bool inPlace) {
  Cell cell;
  if (inPlace && collective_.inPlace == InPlace::Skipped) return cell;
  cell.ran = true;
  const bool checking = options_.checkIters > 0 &&
                        !(inPlace && collective_.inPlace == InPlace::Unchecked);
  if (options_.checkIters > 0) fill(p, inPlace, ++rep_);  // time real data, as nccl-tests does
  start(p, inPlace, 1);
  ranks_.finish(collective_.name);
  ranks_.barrier();

  const Clock::time_point begin = Clock::now();
  for (int i = 0; i < options_.iters; ++i) {
    start(p, inPlace, options_.aggIters);
    if (options_.blocking) {
      ranks_.finish(collective_.name);
      ranks_.barrier();
    }
  }
  ranks_.finish(collective_.name);
  const double seconds = std::chrono::duration<double>(Clock::now() - begin).count() /
                         (static_cast<double>(options_.iters) * options_.aggIters);

  double wrong = 0;
  for (int c = 0; checking && c < options_.checkIters; ++c) {
    const uint64_t seed = ++rep_;
    fill(p, inPlace, seed);
    start(p, inPlace, 1);
    ranks_.finish(collective_.name);
    wrong += check(p, inPlace, seed);
  }

  // Every rank learns every rank's time and wrong count.
  std::vector<std::string> mine;
  for (size_t k = 0; k < ranks_.slots().size(); ++k) {
    const Sample sample{seconds, k == 0 ? wrong : 0};  // wrong counts this thread's ranks once
    mine.emplace_back(reinterpret_cast<const char*>(&sample), sizeof sample);
  }
  std::vector<char> all;
  ranks_.exchange(mine, sizeof(Sample), &all);
  double time = 0, totalWrong = 0;
  for (int r = 0; r < nranks_; ++r) {
    Sample s;
    memcpy(&s, all.data() + static_cast<size_t>(r) * sizeof s, sizeof s);
    totalWrong += s.wrong;
    if (options_.average == 0 && r == 0) time = s.seconds;
    if (options_.average == 1) time += s.seconds / nranks_;
    if (options_.average == 2) time = r == 0 ? s.seconds : std::min(time, s.seconds);
    if (options_.average == 3) time = std::max(time, s.seconds);
  }
  const size_t shown = std::max(p.layout.sendCount, p.layout.recvCount) * p.eltSize;
  const double bytes = collective_.algBytes != nullptr
                           ? collective_.algBytes(p.layout, p.eltSize, nranks_)
                           : static_cast<double>(shown);
  cell.timeUs = time * 1e6;
  cell.algBw = time > 0 ? bytes / 1e9 / time : 0;
  cell.busBw = cell.algBw * collective_.busFactor(nranks_);
  cell.checked = checking;
  cell.wrong = totalWrong;
  if (checking && totalWrong > 0) anyWrong_ = true;
  return cell;
}

void Bench::fill(const Point& p, bool inPlace, uint64_t seed) {
  const Pattern pattern(p.type, collective_.reduces, p.reduction, nranks_, seed);
  const double sentinel = perf::sentinel(p.type);
  const Layout& l = p.layout;
  std::string error;
  for (Slot& s : ranks_.slots()) {
    const int rank = s.rank;
    Memory& m = *s.memory;
    if (!inPlace) {
      ranks_.checkMemory(writeElements(m, s.send, p.type, l.sendCount,
                                       [&](size_t i) { return pattern.input(rank, i); }, &error),
                         error);
      ranks_.checkMemory(writeElements(m, s.recv, p.type, l.recvCount,
                                       [&](size_t) { return sentinel; }, &error),
                         error);
      continue;
    }
    // In place: the input sits where the send pointer will point, the rest is sentinel.
    const size_t from = l.sendInplaceOffset * static_cast<size_t>(rank);
    const size_t view = std::max(l.sendCount, l.recvCount);
    ranks_.checkMemory(writeElements(m, s.recv, p.type, view, [&](size_t i) {
                         return i >= from && i < from + l.sendCount ? pattern.input(rank, i - from)
                                                                    : sentinel;
                       }, &error),
                       error);
  }
}

double Bench::check(const Point& p, bool inPlace, uint64_t seed) {
  const Pattern pattern(p.type, collective_.reduces, p.reduction, nranks_, seed);
  const Layout& l = p.layout;
  std::string error;
  double wrong = 0;
  for (Slot& s : ranks_.slots()) {
    const Expect e{pattern, l, s.rank, nranks_, p.root, inPlace, sentinel(p.type)};
    const size_t view = inPlace ? std::max(l.sendCount, l.recvCount) : l.recvCount;
    if (corrupt_ && s.rank == 0 && view > 0)
      ranks_.checkMemory(corruptFirst(*s.memory, s.recv, &error), error);
    size_t bad = 0;
    std::vector<Mismatch> first;
    ranks_.checkMemory(countWrong(*s.memory, s.recv, p.type, view,
                                  [&](size_t i) { return collective_.expected(e, i); }, &bad,
                                  &first, &error),
                       error);
    wrong += static_cast<double>(bad);
    if (!inPlace) {  // the send buffer must come back as it went in
      size_t changed = 0;
      const int rank = s.rank;
      ranks_.checkMemory(countWrong(*s.memory, s.send, p.type, l.sendCount, [&](size_t i) {
                           return Want{pattern.input(rank, i), 0};
                         }, &changed, &first, &error),
                         error);
      if (changed > 0)
        printError("rank %d: %s changed %zu elements of its send buffer", s.rank,
                   collective_.name, changed);
      wrong += static_cast<double>(changed);
    }
    for (const Mismatch& m : first) {
      if (mismatchesShown_ >= 8) break;  // enough to see the pattern, not a flood
      ++mismatchesShown_;
      printError("rank %d: %s %s %s %zu elements %s: element %zu is %.17g, expected %.17g",
                 s.rank, collective_.name, typeInfo(p.type).name,
                 collective_.reduces ? reductionName(p.reduction) : "", l.paramCount,
                 inPlace ? "in place" : "out of place", m.index, m.got, m.want);
    }
  }
  return wrong;
}

}  // namespace perf
