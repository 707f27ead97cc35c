// The measurement loop of one thread, as nccl-tests runs it: for every
// datatype, operator and root, warm up, then sweep the sizes; at each size
// time the operation out of place and in place, check the result, and agree
// with every other rank on the time (-a) and the number of wrong elements.
#pragma once

#include <cstddef>
#include <cstdint>

#include "collective.h"
#include "report.h"
#include "thread_ranks.h"

namespace perf {

class Bench {
 public:
  // `report` is non-null only on global rank 0's thread.
  Bench(ThreadRanks& ranks, const Collective& collective, const Options& options,
        const World& world, Report* report);
  void run();
  // Whether any result, on any rank, had wrong elements.
  bool anyWrong() const { return anyWrong_; }

 private:
  struct Point {
    ncclDataType_t type;
    Reduction reduction;
    int root;
    size_t eltSize;
    Layout layout;
  };
  Point point(ncclDataType_t type, Reduction reduction, int root, size_t bytes) const;

  void sweep(ncclDataType_t type, Reduction reduction, int root);
  Cell measure(const Point& p, bool inPlace);
  // `repeat` operations on every rank of this thread, in one group when > 1.
  void start(const Point& p, bool inPlace, int repeat);
  void fill(const Point& p, bool inPlace, uint64_t seed);
  double check(const Point& p, bool inPlace, uint64_t seed);
  void makeOps(ncclDataType_t type, Reduction reduction);
  void freeOps();
  size_t nextSize(size_t size) const;

  ThreadRanks& ranks_;
  const Collective& collective_;
  const Options& options_;
  const World& world_;
  Report* report_;
  int nranks_;
  uint64_t rep_ = 0;  // advances identically on every rank, so all agree on the data
  bool anyWrong_ = false;
  bool corrupt_;      // CHORUS_PERF_CORRUPT=1: the checker's test hook
  int mismatchesShown_ = 0;
};

}  // namespace perf
