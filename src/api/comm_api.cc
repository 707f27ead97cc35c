// Entry points that create, inspect and destroy communicators, and group
// calls. Arguments are checked here; the work is in src/runtime.
#include <mutex>
#include <string>
#include <vector>

#include "api/api_export.h"
#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"
#include "runtime/comm.h"
#include "runtime/device.h"
#include "runtime/group.h"
#include "runtime/init.h"

using namespace chorus;

namespace {

ncclResult_t checkRank(const char* caller, int nranks, int rank) {
  if (nranks < 1) CHORUS_FAIL(ncclInvalidArgument, "%s: nranks %d must be >= 1", caller, nranks);
  if (rank < 0 || rank >= nranks)
    CHORUS_FAIL(ncclInvalidArgument, "%s: rank %d is outside 0..%d", caller, rank, nranks - 1);
  return ncclSuccess;
}

ncclResult_t initRankChecked(ncclComm_t* comm, int nranks, const ncclUniqueId& commId, int rank,
                             ncclConfig_t* config, const char* caller) {
  if (comm == nullptr) CHORUS_FAIL(ncclInvalidArgument, "%s: comm is NULL", caller);
  *comm = nullptr;
  CHORUS_CHECK(checkRank(caller, nranks, rank));
  InitRequest request;
  request.roots.resize(1);
  std::string env = settingString("NCCL_COMM_ID");
  if (!env.empty()) {
    // NCCL_COMM_ID replaces the id: every rank derives the same one.
    CHORUS_CHECK(idFromCommIdEnv(env.c_str(), &request.roots[0]));
    request.startRootFromEnv = true;
  } else {
    CHORUS_CHECK(decodeId(commId, &request.roots[0]));
  }
  return commInitRank(comm, nranks, rank, request, config);
}

ncclResult_t initRankScalableChecked(ncclComm_t* newcomm, int nranks, int myrank, int nId,
                                     ncclUniqueId* commIds, ncclConfig_t* config) {
  const char* caller = "ncclCommInitRankScalable";
  if (newcomm == nullptr) CHORUS_FAIL(ncclInvalidArgument, "%s: newcomm is NULL", caller);
  *newcomm = nullptr;
  CHORUS_CHECK(checkRank(caller, nranks, myrank));
  if (commIds == nullptr) CHORUS_FAIL(ncclInvalidArgument, "%s: commIds is NULL", caller);
  if (nId < 1 || nId > nranks)
    CHORUS_FAIL(ncclInvalidArgument, "%s: nId %d must be in 1..nranks (%d)", caller, nId, nranks);
  InitRequest request;
  request.roots.resize(nId);
  for (int i = 0; i < nId; ++i) CHORUS_CHECK(decodeId(commIds[i], &request.roots[i]));
  return commInitRank(newcomm, nranks, myrank, request, config);
}

ncclResult_t splitChecked(ncclComm_t comm, int color, int key, ncclComm_t* newcomm,
                          ncclConfig_t* config) {
  CHORUS_CHECK(checkComm(comm, "ncclCommSplit"));
  if (newcomm == nullptr) CHORUS_FAIL(ncclInvalidArgument, "ncclCommSplit: newcomm is NULL");
  if (commState(comm) != ncclSuccess)
    CHORUS_FAIL(ncclInvalidUsage, "ncclCommSplit: the parent communicator is not ready (%s)",
                ncclGetErrorString(commState(comm)));
  return commSplit(comm, color, key, newcomm, config);
}

}  // namespace

NCCL_API(ncclResult_t, ncclGetUniqueId, ncclUniqueId* uniqueId) {
  if (uniqueId == nullptr) CHORUS_FAIL(ncclInvalidArgument, "ncclGetUniqueId: uniqueId is NULL");
  return getUniqueId(uniqueId);
}

NCCL_API(ncclResult_t, ncclCommInitRank, ncclComm_t* comm, int nranks, ncclUniqueId commId,
         int rank) {
  // As in NCCL, an init refused inside a group fails the group.
  return refuseInGroup(initRankChecked(comm, nranks, commId, rank, nullptr, "ncclCommInitRank"));
}

NCCL_API(ncclResult_t, ncclCommInitRankConfig, ncclComm_t* comm, int nranks, ncclUniqueId commId,
         int rank, ncclConfig_t* config) {
  return refuseInGroup(
      initRankChecked(comm, nranks, commId, rank, config, "ncclCommInitRankConfig"));
}

NCCL_API(ncclResult_t, ncclCommInitRankScalable, ncclComm_t* newcomm, int nranks, int myrank,
         int nId, ncclUniqueId* commIds, ncclConfig_t* config) {
  return refuseInGroup(initRankScalableChecked(newcomm, nranks, myrank, nId, commIds, config));
}

NCCL_API(ncclResult_t, ncclCommInitAll, ncclComm_t* comms, int ndev, const int* devlist) {
  if (comms == nullptr) CHORUS_FAIL(ncclInvalidArgument, "ncclCommInitAll: comms is NULL");
  if (ndev < 1) CHORUS_FAIL(ncclInvalidArgument, "ncclCommInitAll: ndev %d must be >= 1", ndev);
  const int gpus = deviceForNewComm() < 0 ? 0 : cudaDeviceCount();
  if (devlist != nullptr) {
    // Without devices (host communicators) the list names none, but a
    // negative entry is wrong anywhere.
    for (int i = 0; i < ndev; ++i)
      if (devlist[i] < 0 || (gpus > 0 && devlist[i] >= gpus))
        CHORUS_FAIL(ncclInvalidArgument, "ncclCommInitAll: devlist[%d] = %d is not a device%s",
                    i, devlist[i], gpus > 0 ? "" : " number");
  }
  return commInitAll(comms, ndev, devlist);
}

NCCL_API(ncclResult_t, ncclCommSplit, ncclComm_t comm, int color, int key, ncclComm_t* newcomm,
         ncclConfig_t* config) {
  return refuseInGroup(splitChecked(comm, color, key, newcomm, config));
}

NCCL_API(ncclResult_t, ncclCommCount, const ncclComm_t comm, int* count) {
  CHORUS_CHECK(checkComm(comm, "ncclCommCount"));
  if (count == nullptr) CHORUS_FAIL(ncclInvalidArgument, "ncclCommCount: count is NULL");
  *count = comm->nranks;
  return ncclSuccess;
}

NCCL_API(ncclResult_t, ncclCommUserRank, const ncclComm_t comm, int* rank) {
  CHORUS_CHECK(checkComm(comm, "ncclCommUserRank"));
  if (rank == nullptr) CHORUS_FAIL(ncclInvalidArgument, "ncclCommUserRank: rank is NULL");
  *rank = comm->rank;
  return ncclSuccess;
}

NCCL_API(ncclResult_t, ncclCommCuDevice, const ncclComm_t comm, int* device) {
  CHORUS_CHECK(checkComm(comm, "ncclCommCuDevice"));
  if (device == nullptr) CHORUS_FAIL(ncclInvalidArgument, "ncclCommCuDevice: device is NULL");
  *device = comm->cudaDev;
  return ncclSuccess;
}

NCCL_API(ncclResult_t, ncclCommGetAsyncError, ncclComm_t comm, ncclResult_t* asyncError) {
  CHORUS_CHECK(checkComm(comm, "ncclCommGetAsyncError"));
  if (asyncError == nullptr)
    CHORUS_FAIL(ncclInvalidArgument, "ncclCommGetAsyncError: asyncError is NULL");
  *asyncError = commState(comm);
  if (*asyncError != ncclSuccess && *asyncError != ncclInProgress) {
    // A device failure may be being recorded by the proxy thread right now.
    std::lock_guard<std::mutex> lock(comm->failureMutex);
    setLastError(comm->asyncErrorText);
  }
  return ncclSuccess;
}

NCCL_API(ncclResult_t, ncclCommFinalize, ncclComm_t comm) {
  CHORUS_CHECK(checkComm(comm, "ncclCommFinalize"));
  if (comm->finalized) CHORUS_FAIL(ncclInvalidUsage, "ncclCommFinalize: already finalized");
  if (groupHoldsWork(comm))
    CHORUS_FAIL(ncclInvalidUsage, "ncclCommFinalize: the communicator has work queued in this "
                "thread's open group: call ncclGroupEnd first");
  // Host operations complete before their call returns: nothing to flush.
  // A device communicator's operations finish when their streams reach
  // them: wait for those (bounded by CHORUS_TIMEOUT).
  comm->finalized = true;
  if (comm->deviceQueue) {
    comm->background.finish();
    return comm->deviceQueue->shutdown();
  }
  return ncclSuccess;
}

NCCL_API(ncclResult_t, ncclCommDestroy, ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  CHORUS_CHECK(checkComm(comm, "ncclCommDestroy"));
  // The outermost ncclGroupEnd would run that work on a freed communicator
  // (a split of it counts too).
  if (groupHoldsWork(comm))
    CHORUS_FAIL(ncclInvalidUsage, "ncclCommDestroy: the communicator has work queued in this "
                "thread's open group: call ncclGroupEnd first (ncclCommAbort drops the work)");
  freeComm(comm);
  return ncclSuccess;
}

NCCL_API(ncclResult_t, ncclCommAbort, ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  CHORUS_CHECK(checkComm(comm, "ncclCommAbort"));
  comm->abortFlag.store(true);  // ends a background init's waits early
  dropGroupWork(comm);          // what this thread's open group holds for it never runs
  freeComm(comm);
  return ncclSuccess;
}

NCCL_API(ncclResult_t, ncclGroupStart) { return groupStart(); }

NCCL_API(ncclResult_t, ncclGroupEnd) { return groupEnd(); }
