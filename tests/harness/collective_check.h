// Runs one collective on every rank with inputs chosen so that the result is
// exact in every datatype, and compares each rank's output with a reference
// computed in double precision.
#pragma once

#include <string>

#include "harness/ranks.h"
#include "nccl.h"

namespace chorus::test {

enum class Coll { AllReduce, Broadcast, Reduce, AllGather, ReduceScatter, AlltoAll, Gather, Scatter };

// ncclRedOp_t values, plus this one for PreMulSum with a scalar per rank
// (2 on even ranks, 1 on odd ones: each rank scales only its own input).
constexpr int kPreMulSumTwo = 100;

struct CollCase {
  Coll coll;
  ncclDataType_t type;
  int op;  // ncclRedOp_t or kPreMulSumTwo; ignored by data-movement collectives
  size_t count;
  int root;
  bool inPlace;
};

std::string describe(const CollCase& c);
const char* collName(Coll coll);
bool isReduction(Coll coll);

// Buffers a case may use instead of its own (registered memory): its input
// and output start at `send` and `recv`, each of `bytes`.
struct GivenBuffers {
  void* send;
  void* recv;
  size_t bytes;
};

// Runs the case on `comm` (every rank of it must call this with the same
// case) and records any wrong element or error in ctx. With `given`, in
// those buffers (a case that does not fit them is a failure).
void runAndCheck(RankContext& ctx, ncclComm_t comm, const CollCase& c,
                 const GivenBuffers* given = nullptr);

}  // namespace chorus::test
