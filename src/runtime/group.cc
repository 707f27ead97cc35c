#include "runtime/group.h"

#include <thread>
#include <utility>
#include <vector>

#include "common/result.h"
#include "runtime/comm.h"

namespace chorus {
namespace {

struct GroupJob {
  ncclComm* comm;
  std::function<ncclResult_t()> run;
};

thread_local int tDepth = 0;
thread_local std::vector<GroupJob> tJobs;

// Runs a job and records its outcome on the communicator, including the
// message, which lives in this (worker) thread's last error.
ncclResult_t runAndRecord(const GroupJob& job) {
  ncclResult_t result = job.run();
  if (job.comm != nullptr) {
    if (result != ncclSuccess) job.comm->asyncErrorText = lastError();
    job.comm->asyncResult.store(result, std::memory_order_release);
  }
  return result;
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
  std::vector<GroupJob> jobs = std::move(tJobs);
  tJobs.clear();

  bool anyBackground = false;
  std::vector<std::thread> workers;
  std::vector<ncclResult_t> results(jobs.size(), ncclSuccess);
  for (size_t i = 0; i < jobs.size(); ++i) {
    ncclComm* comm = jobs[i].comm;
    if (comm != nullptr && !comm->config.blocking) {
      anyBackground = true;
      comm->initThread = std::thread([job = jobs[i]] { runAndRecord(job); });
    } else {
      workers.emplace_back([&jobs, &results, i] { results[i] = runAndRecord(jobs[i]); });
    }
  }
  for (std::thread& t : workers) t.join();
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (results[i] != ncclSuccess) {
      if (jobs[i].comm != nullptr) setLastError(jobs[i].comm->asyncErrorText);
      return results[i];
    }
  }
  return anyBackground ? ncclInProgress : ncclSuccess;
}

ncclResult_t runCommJob(ncclComm* comm, std::function<ncclResult_t()> job) {
  if (inGroup()) {
    tJobs.push_back(GroupJob{comm, std::move(job)});
    return ncclSuccess;
  }
  if (comm != nullptr && !comm->config.blocking) {
    comm->initThread = std::thread([comm, job = std::move(job)] { runAndRecord({comm, job}); });
    return ncclInProgress;
  }
  return runAndRecord(GroupJob{comm, std::move(job)});
}

}  // namespace chorus
