// Entry points that Chorus exports but does not implement yet.
//
// NVIDIA's libnccl.so.2 exports them, so a program linked against it must
// load with ours. Each one fails cleanly: it records "<name> is not
// implemented yet in Chorus" as the thread's last error and returns
// ncclInvalidUsage (or, where the result is not an ncclResult_t, the value
// documented at the function). When a family is implemented, move it out of
// this file into its own.
//
// Parameters are left unnamed: nothing reads them. The definitions are still
// checked against the declarations in nccl.h (a C function declared twice
// with different parameters does not compile).
#include "api/api_export.h"
#include "common/result.h"
#include "nccl_device_host.h"

#define CHORUS_NOT_IMPLEMENTED(name) \
  CHORUS_FAIL(ncclInvalidUsage, "%s is not implemented yet in Chorus", name)

// ---- group simulation ------------------------------------------------------

NCCL_API(ncclResult_t, ncclGroupSimulateEnd, ncclSimInfo_t*) {
  CHORUS_NOT_IMPLEMENTED("ncclGroupSimulateEnd");
}

// ---- symmetric memory windows ----------------------------------------------

NCCL_API(ncclResult_t, ncclCommWindowRegister, ncclComm_t, void*, size_t, ncclWindow_t*, int) {
  CHORUS_NOT_IMPLEMENTED("ncclCommWindowRegister");
}

NCCL_API(ncclResult_t, ncclCommWindowDeregister, ncclComm_t, ncclWindow_t) {
  CHORUS_NOT_IMPLEMENTED("ncclCommWindowDeregister");
}

// ---- fault tolerance: shrink and revoke ------------------------------------

NCCL_API(ncclResult_t, ncclCommShrink, ncclComm_t, int*, int, ncclComm_t*, ncclConfig_t*, int) {
  CHORUS_NOT_IMPLEMENTED("ncclCommShrink");
}

NCCL_API(ncclResult_t, ncclCommRevoke, ncclComm_t, int) { CHORUS_NOT_IMPLEMENTED("ncclCommRevoke"); }

// ---- device API, host side -------------------------------------------------
//
// Functions that cannot return an ncclResult_t still record the message:
//   team getters    return the empty team {nRanks 0, rank 0, stride 1}
//                   (stride 1, so code that divides by it does not trap);
//   rank lookups    return -1, which is no rank;
//   slot counts     return 0.

namespace {

ncclTeam_t notImplementedTeam(const char* name) {
  chorus::reportError(__FILE__, __LINE__, "%s is not implemented yet in Chorus", name);
  return ncclTeam_t{0, 0, 1};
}

int notImplementedInt(const char* name, int value) {
  chorus::reportError(__FILE__, __LINE__, "%s is not implemented yet in Chorus", name);
  return value;
}

}  // namespace

NCCL_API(ncclResult_t, ncclDevCommCreate, ncclComm_t, ncclDevCommRequirements_t const*,
         ncclDevComm_t*) {
  CHORUS_NOT_IMPLEMENTED("ncclDevCommCreate");
}

NCCL_API(ncclResult_t, ncclDevCommDestroy, ncclComm_t, ncclDevComm_t const*) {
  CHORUS_NOT_IMPLEMENTED("ncclDevCommDestroy");
}

NCCL_API(ncclTeam_t, ncclTeamWorld, ncclComm_t) { return notImplementedTeam("ncclTeamWorld"); }

NCCL_API(ncclTeam_t, ncclTeamLsa, ncclComm_t) { return notImplementedTeam("ncclTeamLsa"); }

NCCL_API(ncclTeam_t, ncclTeamRail, ncclComm_t) { return notImplementedTeam("ncclTeamRail"); }

NCCL_API(int, ncclTeamRankToWorld, ncclComm_t, ncclTeam_t, int) {
  return notImplementedInt("ncclTeamRankToWorld", -1);
}

NCCL_API(int, ncclTeamRankToLsa, ncclComm_t, ncclTeam_t, int) {
  return notImplementedInt("ncclTeamRankToLsa", -1);
}

NCCL_API(ncclResult_t, ncclLsaBarrierCreateRequirement, ncclTeam_t, int, ncclLsaBarrierHandle_t*,
         ncclDevResourceRequirements_t*) {
  CHORUS_NOT_IMPLEMENTED("ncclLsaBarrierCreateRequirement");
}

NCCL_API(ncclResult_t, ncclGinBarrierCreateRequirement, ncclComm_t, ncclTeam_t, int,
         ncclGinBarrierHandle_t*, ncclDevResourceRequirements_t*) {
  CHORUS_NOT_IMPLEMENTED("ncclGinBarrierCreateRequirement");
}

NCCL_API(int, ncclLLA2ACalcSlots, int, int) { return notImplementedInt("ncclLLA2ACalcSlots", 0); }

NCCL_API(ncclResult_t, ncclLLA2ACreateRequirement, int, int, ncclLLA2AHandle_t*,
         ncclDevResourceRequirements_t*) {
  CHORUS_NOT_IMPLEMENTED("ncclLLA2ACreateRequirement");
}
