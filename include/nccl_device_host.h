/*
 * Chorus: the host-side functions of NCCL's device API (NCCL 2.28.9), which
 * libnccl.so.2 exports and Chorus therefore exports too.
 *
 * Only Chorus's own sources include this header. User programs get these
 * declarations from NVIDIA's <nccl_device.h>; the names, struct tags and
 * signatures here are the same, so the symbols link either way. The two
 * headers are not meant to be included together: both define struct ncclTeam.
 *
 * The requirement and handle structs are opaque here: Chorus does not yet
 * implement the device API, so nothing looks inside them.
 */
#ifndef CHORUS_NCCL_DEVICE_HOST_H_
#define CHORUS_NCCL_DEVICE_HOST_H_

#include "nccl.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Evenly spaced ranks seen from the caller, who is team rank `rank`: team
 * rank r is world rank (caller's world rank) + (r - rank) * stride. */
struct ncclTeam {
  int nRanks, rank, stride;
};
typedef struct ncclTeam ncclTeam_t;

/* Opaque here (defined by NVIDIA's device headers). */
typedef struct ncclDevComm ncclDevComm_t;
typedef struct ncclDevCommRequirements ncclDevCommRequirements_t;
typedef struct ncclDevResourceRequirements ncclDevResourceRequirements_t;
typedef struct ncclLsaBarrierHandle ncclLsaBarrierHandle_t;
typedef struct ncclGinBarrierHandle ncclGinBarrierHandle_t;
typedef struct ncclLLA2AHandle ncclLLA2AHandle_t;

/* A device-side view of comm that kernels can use (and its release). */
ncclResult_t  ncclDevCommCreate(ncclComm_t comm, ncclDevCommRequirements_t const* reqs, ncclDevComm_t* outDevComm);
ncclResult_t pncclDevCommCreate(ncclComm_t comm, ncclDevCommRequirements_t const* reqs, ncclDevComm_t* outDevComm);
ncclResult_t  ncclDevCommDestroy(ncclComm_t comm, ncclDevComm_t const* devComm);
ncclResult_t pncclDevCommDestroy(ncclComm_t comm, ncclDevComm_t const* devComm);

/* Teams of comm: every rank; the ranks sharing load/store-accessible memory
 * (LSA); and the rail (same LSA position on each host). */
ncclTeam_t  ncclTeamWorld(ncclComm_t comm);
ncclTeam_t pncclTeamWorld(ncclComm_t comm);
ncclTeam_t  ncclTeamLsa(ncclComm_t comm);
ncclTeam_t pncclTeamLsa(ncclComm_t comm);
ncclTeam_t  ncclTeamRail(ncclComm_t comm);
ncclTeam_t pncclTeamRail(ncclComm_t comm);

/* A rank of team, as a world rank or as an LSA rank. */
int  ncclTeamRankToWorld(ncclComm_t comm, ncclTeam_t team, int rank);
int pncclTeamRankToWorld(ncclComm_t comm, ncclTeam_t team, int rank);
int  ncclTeamRankToLsa(ncclComm_t comm, ncclTeam_t team, int rank);
int pncclTeamRankToLsa(ncclComm_t comm, ncclTeam_t team, int rank);

/* Resource requests for barriers and the low-latency all-to-all, to chain
 * into ncclDevCommRequirements before ncclDevCommCreate. */
ncclResult_t  ncclLsaBarrierCreateRequirement(ncclTeam_t team, int nBarriers, ncclLsaBarrierHandle_t* outHandle, ncclDevResourceRequirements_t* outReq);
ncclResult_t pncclLsaBarrierCreateRequirement(ncclTeam_t team, int nBarriers, ncclLsaBarrierHandle_t* outHandle, ncclDevResourceRequirements_t* outReq);
ncclResult_t  ncclGinBarrierCreateRequirement(ncclComm_t comm, ncclTeam_t team, int nBarriers, ncclGinBarrierHandle_t* outHandle, ncclDevResourceRequirements_t* outReq);
ncclResult_t pncclGinBarrierCreateRequirement(ncclComm_t comm, ncclTeam_t team, int nBarriers, ncclGinBarrierHandle_t* outHandle, ncclDevResourceRequirements_t* outReq);
int  ncclLLA2ACalcSlots(int maxElts, int maxEltSize);
int pncclLLA2ACalcSlots(int maxElts, int maxEltSize);
ncclResult_t  ncclLLA2ACreateRequirement(int nBlocks, int nSlots, ncclLLA2AHandle_t* outHandle, ncclDevResourceRequirements_t* outReq);
ncclResult_t pncclLLA2ACreateRequirement(int nBlocks, int nSlots, ncclLLA2AHandle_t* outHandle, ncclDevResourceRequirements_t* outReq);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* CHORUS_NCCL_DEVICE_HOST_H_ */
