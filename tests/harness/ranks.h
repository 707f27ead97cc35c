// A harness that runs one function as N ranks — N forked processes or N
// threads — hands each the same unique id, and gathers what went wrong.
//
//   auto failures = runRankProcesses(4, [](RankContext& ctx) {
//     ncclComm_t comm;
//     ctx.check(ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank) == ncclSuccess, "init");
//   });
//   EXPECT_TRUE(failures.empty()) << joinFailures(failures);
//
// With processes the ids are made by rank 0 and handed to the others through
// pipes, so that the parent never has a thread running when it forks (a
// child forked while a thread is being created can inherit a lock of the
// sanitizer runtimes held, and hang).
//
// A rank body reports failures through ctx.check/ctx.fail (GoogleTest
// assertions do not cross a fork). A rank process that crashes, exits
// non-zero or outlives the time limit is reported too, and killed.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "collectives/direct_primitives.h"
#include "nccl.h"

namespace chorus::test {

struct RankContext {
  int rank = 0;
  int nranks = 0;
  ncclUniqueId id{};                // ids[0]
  std::vector<ncclUniqueId> ids;    // RankOptions::idCount ids, the same on every rank
  std::vector<std::string> failures;

  // Records "rank R: message" when ok is false; returns ok.
  bool check(bool ok, const std::string& message);
  void fail(const std::string& message) { check(false, message); }
  // Checks an NCCL call's result; includes ncclGetLastError in the message.
  bool checkNccl(ncclResult_t result, const std::string& what);
};

using RankBody = std::function<void(RankContext&)>;

struct RankOptions {
  double timeoutSeconds = 120;  // a process still running then is killed
  bool createId = true;         // false: ranks get a zeroed id
  int idCount = 1;              // ids to make (ncclCommInitRankScalable tests)
};

// Each returns the failures of all ranks, empty when every rank succeeded.
std::vector<std::string> runRankProcesses(int nranks, const RankBody& body,
                                          RankOptions options = {});
std::vector<std::string> runRankThreads(int nranks, const RankBody& body, RankOptions options = {});

std::string joinFailures(const std::vector<std::string>& failures);

// ncclCommInitRank of this rank with ctx.id; null, with the failure
// recorded, when it fails.
ncclComm_t initRankComm(RankContext& ctx);
// Every rank meets: a one-element AllReduce.
void barrier(RankContext& ctx, ncclComm_t comm);

// True when ncclGetLastError (this thread) contains `text`.
bool lastErrorHas(const std::string& text);

// Whether this machine lets a process read and write a child's memory
// through the kernel (the library stages where it does not, and tests of
// that path skip themselves); if not, `why` says why.
bool crossMemoryAllowed(std::string* why);

// A TCP port that was free on loopback a moment ago (for NCCL_COMM_ID tests).
int pickFreePort(int family);

// Sets an environment variable for the current scope and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::string old_;
  bool hadOld_ = false;
};

// For the current scope, collectives between processes of every size go
// through the kernel (CHORUS_CMA=1, the size thresholds 0 and, where ranks
// share cores, no largest size); reductions still only up to
// CHORUS_CMA_REDUCE_MAX_BYTES. Tests check crossMemoryAllowed first.
struct ScopedKernelCopies {
  ScopedEnv cma{"CHORUS_CMA", "1"};
  ScopedEnv cmaBytes{"CHORUS_CMA_BYTES", "0"};
  ScopedEnv cmaOneWayBytes{"CHORUS_CMA_ONE_WAY_BYTES", "0"};
  ScopedEnv cmaSharedCoresBytes{"CHORUS_CMA_SHARED_CORES_BYTES", "0"};
  ScopedEnv cmaSharedCoresMaxBytes{"CHORUS_CMA_SHARED_CORES_MAX_BYTES", "1099511627776"};
};

// Whether a communicator's direct algorithms copy every size through the
// kernel, as ScopedKernelCopies asks (reductions up to their own limit).
inline bool copiesEverySizeThroughTheKernel(const DirectState& state) {
  return state.crossMemory && state.cmaBytes == 0 && state.cmaOneWayBytes == 0 &&
         state.cmaMaxBytes >= (size_t{1} << 40);
}

}  // namespace chorus::test
