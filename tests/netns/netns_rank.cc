// One rank of the multi-host test (run_netns_test.sh starts one per network
// namespace, each with its own host name). Ranks meet through NCCL_COMM_ID,
// choose their interface with NCCL_SOCKET_IFNAME, and run the collective
// matrix over the socket transport.
//
//   chorus_netns_rank RANK NRANKS
#include <cstdio>
#include <cstdlib>

#include "harness/collective_check.h"
#include "harness/ranks.h"
#include "runtime/comm.h"

using namespace chorus::test;

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s RANK NRANKS\n", argv[0]);
    return 2;
  }
  RankContext ctx;
  ctx.rank = atoi(argv[1]);
  ctx.nranks = atoi(argv[2]);
  ncclComm_t comm = nullptr;
  if (ctx.checkNccl(ncclGetUniqueId(&ctx.id), "ncclGetUniqueId") &&
      ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank), "ncclCommInitRank")) {
    // The point of the test: peers on other hosts are reached over sockets.
    for (int p = 0; p < ctx.nranks; ++p)
      if (p != ctx.rank) ctx.check(comm->peers[p].hostHash != comm->peers[ctx.rank].hostHash,
                                   "rank " + std::to_string(p) + " looks like the same host");
    const ncclDataType_t types[] = {ncclInt8, ncclInt32, ncclUint64, ncclFloat16, ncclFloat32,
                                    ncclFloat64, ncclBfloat16, ncclFloat8e4m3, ncclFloat8e5m2};
    const Coll colls[] = {Coll::AllReduce, Coll::Broadcast, Coll::Reduce,  Coll::AllGather,
                          Coll::ReduceScatter, Coll::AlltoAll, Coll::Gather, Coll::Scatter};
    for (Coll coll : colls)
      for (ncclDataType_t type : types)
        for (size_t count : {size_t{0}, size_t{1}, size_t{4099}, size_t{(1 << 20) + 5}})
          for (int op : {int(ncclSum), int(ncclMax), int(ncclAvg), kPreMulSumTwo}) {
            if (!isReduction(coll) && op != ncclSum) continue;
            runAndCheck(ctx, comm, CollCase{coll, type, op, count, ctx.nranks - 1, false});
          }
    ncclCommDestroy(comm);
  }
  for (const std::string& f : ctx.failures) fprintf(stderr, "%s\n", f.c_str());
  printf("rank %d: %s\n", ctx.rank, ctx.failures.empty() ? "ok" : "FAILED");
  return ctx.failures.empty() ? 0 : 1;
}
