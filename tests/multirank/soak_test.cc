// A soak test: 10,000 operations drawn at random (the same sequence on every
// rank), each checked exactly against the reference. Label "full".
#include <gtest/gtest.h>

#include <random>

#include "harness/collective_check.h"
#include "harness/ranks.h"

using namespace chorus::test;

namespace {

CollCase randomCase(std::mt19937_64& rng, int nranks) {
  static const ncclDataType_t types[] = {ncclInt8,    ncclUint8,   ncclInt32,      ncclUint32,
                                         ncclInt64,   ncclUint64,  ncclFloat16,    ncclFloat32,
                                         ncclFloat64, ncclBfloat16, ncclFloat8e4m3, ncclFloat8e5m2};
  static const int ops[] = {ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg, kPreMulSumTwo};
  CollCase c;
  c.coll = static_cast<Coll>(rng() % 8);
  c.type = types[rng() % 12];
  c.op = ops[rng() % 6];
  // Mostly small, sometimes up to a few hundred thousand elements.
  c.count = rng() % 8 == 0 ? rng() % 300000 : rng() % 5000;
  c.root = static_cast<int>(rng() % nranks);
  c.inPlace = c.coll != Coll::AlltoAll && rng() % 2 == 0;
  return c;
}

TEST(FullSoak, TenThousandRandomOperationsAreExact) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  RankOptions options;
  options.timeoutSeconds = 800;
  auto failures = runRankProcesses(
      4,
      [](RankContext& ctx) {
        ncclComm_t comm = nullptr;
        if (!ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "init")) return;
        std::mt19937_64 rng(20261123);
        for (int i = 0; i < 10000 && ctx.failures.empty(); ++i) {
          CollCase c = randomCase(rng, ctx.nranks);
          runAndCheck(ctx, comm, c);
          if (!ctx.failures.empty()) ctx.fail("at operation " + std::to_string(i) + ": " + describe(c));
        }
        ncclCommDestroy(comm);
      },
      options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
