#include "runtime/group.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/result.h"
#include "runtime/comm.h"
#include "runtime/host_executor.h"

namespace chorus {
namespace {

struct GroupJob {
  ncclComm* comm;
  std::function<ncclResult_t()> run;
  bool runsOperations = false;  // a batch of operations (not an init or a split)
  const ncclComm* uses = nullptr;  // another communicator it needs (a split's parent)
};

// Whether `job` runs on `comm` or needs it (a split of it).
bool involves(const GroupJob& job, const ncclComm* comm) {
  return job.comm == comm || job.uses == comm;
}

// The operations one communicator received inside the current group.
struct OpBatch {
  ncclComm* comm;
  std::vector<Op> ops;
};

thread_local int tDepth = 0;
thread_local std::vector<GroupJob> tJobs;
thread_local std::vector<OpBatch> tBatches;
// The first call refused inside the open group, and its message.
thread_local ncclResult_t tGroupRefusal = ncclSuccess;
thread_local std::string tGroupRefusalText;

ncclResult_t runGroup();

// A job counts as pending on its communicator from creation to completion.
GroupJob makeJob(ncclComm* comm, std::function<ncclResult_t()> run, bool runsOperations = false,
                 const ncclComm* uses = nullptr) {
  if (comm != nullptr) comm->pendingJobs.fetch_add(1, std::memory_order_acq_rel);
  return GroupJob{comm, std::move(run), runsOperations, uses};
}

// Records a finished job's outcome, then one pending job fewer.
ncclResult_t recordOutcome(ncclComm* comm, ncclResult_t result) {
  if (comm == nullptr) return result;
  recordCommFailure(comm, result);
  comm->pendingJobs.fetch_sub(1, std::memory_order_acq_rel);  // pairs with commState's acquire
  return result;
}

ncclResult_t runAndRecord(const GroupJob& job) { return recordOutcome(job.comm, job.run()); }

// Operations queued behind an abort or a failure are not run: the ranks no
// longer agree where they are, so they could only wait for peers that never
// come (each of possibly thousands queued, and ncclCommAbort waits for the
// queue). They end with an error, unlogged: the failure was reported once.
// Inits and splits always run: a split takes part in its parent's
// bootstrap, which its peers wait for.
ncclResult_t skipAfterFailure(const GroupJob& job) {
  ncclComm* comm = job.comm;
  if (!job.runsOperations) return ncclSuccess;
  char text[160];
  if (comm->abortFlag.load(std::memory_order_acquire)) {
    snprintf(text, sizeof text, "rank %d: the communicator was aborted before this operation ran",
             comm->rank);
    setLastError(text);
    return ncclInvalidUsage;
  }
  const ncclResult_t failed = comm->asyncResult.load(std::memory_order_acquire);
  if (failed != ncclSuccess) {
    snprintf(text, sizeof text, "rank %d: not run: an earlier operation of this communicator "
             "failed (%s)", comm->rank, ncclGetErrorString(failed));
    setLastError(text);
  }
  return failed;
}

// A non-blocking communicator runs its jobs one after the other on its
// background worker (operations stay in order, and the first one waits for
// the init).
void runInBackground(const GroupJob& job) {
  job.comm->background.post([job] {
    const ncclResult_t skipped = skipAfterFailure(job);
    if (skipped != ncclSuccess) recordOutcome(job.comm, skipped);
    else runAndRecord(job);
  });
}

// Host communicators run the operations to completion; device ones post
// them on their streams and return.
ncclResult_t executeOps(ncclComm* comm, const Op* ops, size_t nOps) {
  if (!comm->onHost()) return comm->deviceQueue->post(ops, nOps);
  return executeHostOps(comm, ops, nOps);
}

// A device communicator whose init is done posts a batch without blocking:
// the group's thread posts it itself instead of starting one for it.
bool postsInline(const ncclComm* comm) {
  return !comm->onHost() && comm->pendingJobs.load(std::memory_order_acquire) == 0;
}

}  // namespace

bool inGroup() { return tDepth > 0; }

ncclResult_t groupStart() {
  ++tDepth;
  return ncclSuccess;
}

ncclResult_t groupEnd() {
  if (tDepth == 0) CHORUS_FAIL(ncclInvalidUsage, "ncclGroupEnd called without ncclGroupStart");
  if (--tDepth > 0) return ncclSuccess;
  // A call of the group was refused: as NCCL, the group fails with its
  // error and none of its operations run (inits and splits do, so that
  // their communicators come up or fail as usual).
  const ncclResult_t refused = tGroupRefusal;
  tGroupRefusal = ncclSuccess;
  if (refused == ncclSuccess) return runGroup();
  tBatches.clear();
  const std::string why = tGroupRefusalText;
  runGroup();
  setLastError("ncclGroupEnd: no operation of the group ran, since one of its calls failed: " +
               why);
  return refused;
}

ncclResult_t refuseInGroup(ncclResult_t result) {
  if (result != ncclSuccess && result != ncclInProgress && inGroup() &&
      tGroupRefusal == ncclSuccess) {
    tGroupRefusal = result;
    tGroupRefusalText = lastError();
  }
  return result;
}

namespace {

// The outermost ncclGroupEnd's work: runs the group's jobs and batches.
ncclResult_t runGroup() {
  std::vector<GroupJob> jobs = std::move(tJobs);
  tJobs.clear();
  // Device communicators post on this thread: first every gate opens, then
  // every gate holds its stream, so ranks whose streams are shared cannot
  // hold one another's gates closed.
  ncclResult_t posted = ncclSuccess;
  std::vector<std::pair<ncclComm*, std::shared_ptr<DeviceTicket>>> opened;
  for (OpBatch& batch : tBatches) {
    ncclComm* comm = batch.comm;
    if (postsInline(comm)) {
      comm->pendingJobs.fetch_add(1, std::memory_order_acq_rel);
      std::shared_ptr<DeviceTicket> ticket;
      const ncclResult_t result =
          comm->deviceQueue->open(batch.ops.data(), batch.ops.size(), &ticket);
      if (result == ncclSuccess) {
        opened.emplace_back(comm, std::move(ticket));
      } else if (recordOutcome(comm, result) != ncclSuccess && posted == ncclSuccess) {
        posted = result;
      }
      continue;
    }
    jobs.push_back(makeJob(
        comm, [comm, ops = std::move(batch.ops)] { return executeOps(comm, ops.data(), ops.size()); },
        true));
  }
  tBatches.clear();
  for (auto& [comm, ticket] : opened) {
    const ncclResult_t result = recordOutcome(comm, comm->deviceQueue->hold(ticket));
    if (posted == ncclSuccess) posted = result;
  }
  if (jobs.empty()) return posted;

  // The common case, one blocking communicator: run it on this thread.
  if (jobs.size() == 1 && (jobs[0].comm == nullptr || jobs[0].comm->config.blocking)) {
    const ncclResult_t result = runAndRecord(jobs[0]);
    return posted != ncclSuccess ? posted : result;
  }

  bool anyBackground = false;
  std::vector<std::thread> workers;
  std::vector<ncclResult_t> results(jobs.size(), ncclSuccess);
  for (size_t i = 0; i < jobs.size(); ++i) {
    ncclComm* comm = jobs[i].comm;
    if (comm != nullptr && !comm->config.blocking) {
      anyBackground = true;
      runInBackground(jobs[i]);
    } else {
      workers.emplace_back([&jobs, &results, i] { results[i] = runAndRecord(jobs[i]); });
    }
  }
  for (std::thread& t : workers) t.join();
  if (posted != ncclSuccess) return posted;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (results[i] != ncclSuccess) {
      if (jobs[i].comm != nullptr) setLastError(jobs[i].comm->asyncErrorText);
      return results[i];
    }
  }
  return anyBackground ? ncclInProgress : ncclSuccess;
}

}  // namespace

ncclResult_t runCommJob(ncclComm* comm, std::function<ncclResult_t()> job, const ncclComm* uses) {
  if (inGroup()) {
    tJobs.push_back(makeJob(comm, std::move(job), false, uses));
    return ncclSuccess;
  }
  if (comm != nullptr && !comm->config.blocking) {
    runInBackground(makeJob(comm, std::move(job)));
    return ncclInProgress;
  }
  return runAndRecord(makeJob(comm, std::move(job)));
}

bool groupHoldsWork(const ncclComm* comm) {
  for (const OpBatch& batch : tBatches)
    if (batch.comm == comm) return true;
  for (const GroupJob& job : tJobs)
    if (involves(job, comm)) return true;
  return false;
}

void dropGroupWork(ncclComm* comm) {
  tBatches.erase(std::remove_if(tBatches.begin(), tBatches.end(),
                                [comm](const OpBatch& b) { return b.comm == comm; }),
                 tBatches.end());
  tJobs.erase(std::remove_if(tJobs.begin(), tJobs.end(),
                             [comm](const GroupJob& job) {
                               if (!involves(job, comm)) return false;
                               // A split of this parent will not run: its child
                               // fails instead of staying pending for ever.
                               if (job.comm != nullptr && job.comm != comm) {
                                 setLastError("the parent communicator was aborted before this "
                                              "split ran");
                                 recordCommFailure(job.comm, ncclInvalidUsage);
                               }
                               if (job.comm != nullptr)
                                 job.comm->pendingJobs.fetch_sub(1, std::memory_order_acq_rel);
                               return true;
                             }),
              tJobs.end());
}

ncclResult_t enqueueOp(ncclComm* comm, const Op& op) {
  // The common case, a blocking call outside any group, runs now on this
  // thread without building a batch and a job (it is on the latency path).
  // It is not counted as a pending job: the call returns before its caller
  // could ask, and the counter's locked update would cost every small
  // operation a store-buffer drain.
  if (!inGroup() && comm->config.blocking) return recordCommFailure(comm, executeOps(comm, &op, 1));
  CHORUS_CHECK(groupStart());
  OpBatch* batch = nullptr;
  for (OpBatch& b : tBatches)
    if (b.comm == comm) batch = &b;
  if (batch == nullptr) {
    tBatches.push_back(OpBatch{comm, {}});
    batch = &tBatches.back();
  }
  batch->ops.push_back(op);
  return groupEnd();
}

}  // namespace chorus
