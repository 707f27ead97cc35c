// What every rank puts in its buffers, and what a reduction over all ranks
// must give, chosen so that every result is exact in every datatype.
//
// Exactness, whatever order a library reduces in:
// - sum, avg, premulsum: each element has at most two contributing ranks
//   (the others send 0), with values of magnitude <= 3 (<= 2 for premulsum,
//   whose scalar is 1 or 2). Every partial sum is one of 0, v, w, v+w, all
//   integers of magnitude <= 8, which even fp8 e5m2 holds.
// - prod: at most two ranks send +-1 or +-2, the others 1: partial products
//   have magnitude <= 4.
// - max/min: one rank holds the extreme, the others values 1..3 below (above)
//   it; max and min never round.
// - integer avg is the sum divided by nranks, truncated toward zero (NCCL's
//   rule), which the reference reproduces exactly. Floating avg is computed
//   by Chorus (as by NCCL) as a pre-multiplication by 1/nranks rounded to the
//   datatype, so it alone is compared with a tolerance of a few units in the
//   last place (see tolerance()).
// Data-movement collectives use wider values (the whole range of
// TypeInfo::range) so that a misplaced block is seen.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nccl.h"
#include "options.h"
#include "perf_types.h"

namespace perf {

class Pattern {
 public:
  // `reduction` is ignored when `reducing` is false (data movement).
  Pattern(ncclDataType_t type, bool reducing, Reduction reduction, int nranks, uint64_t seed);

  // Element i of rank `rank`'s input.
  double input(int rank, size_t i) const;
  // Element i of the reduction of all ranks' inputs.
  double reduced(size_t i) const;
  // How far a result may be from reduced(i): 0 except floating avg.
  double tolerance(size_t i) const;
  // The premulsum scalar of a rank (1 or 2).
  static double scalar(int rank) { return 1 + rank % 2; }

  const TypeInfo& info() const { return *info_; }

 private:
  struct Pair {
    int r1, r2;     // contributing ranks (r2 < 0 with one rank)
    double v1, v2;  // their values
  };
  Pair pair(size_t i) const;
  uint64_t hash(size_t i, uint64_t salt) const;
  double spread(size_t i, int rank) const;  // a value in the type's whole range

  const TypeInfo* info_;
  bool reducing_;
  Reduction reduction_;
  int nranks_;
  uint64_t seed_;
};

}  // namespace perf
