/*
 * X-macro lists of the NCCL 2.28.9 public API, for the ABI checks.
 *
 * CHORUS_ABI_FUNCTIONS(X) names every function declared in nccl.h except
 * ncclResetDebugInit, which is deprecated (a mere mention warns) and is
 * checked on its own. Each ncclX has a pncclX twin: X(ncclFoo) may use
 * p##name to reach it.
 */
#ifndef CHORUS_TESTS_ABI_API_FUNCTIONS_H_
#define CHORUS_TESTS_ABI_API_FUNCTIONS_H_

#define CHORUS_ABI_FUNCTIONS(X)                                                   \
  X(ncclMemAlloc) X(ncclMemFree) X(ncclGetVersion) X(ncclGetUniqueId)             \
  X(ncclCommInitRankConfig) X(ncclCommInitRank) X(ncclCommInitAll)                \
  X(ncclCommInitRankScalable) X(ncclCommFinalize) X(ncclCommDestroy)              \
  X(ncclCommAbort) X(ncclCommRevoke) X(ncclCommSplit) X(ncclCommShrink)           \
  X(ncclGetErrorString) X(ncclGetLastError) X(ncclCommGetAsyncError)              \
  X(ncclCommCount) X(ncclCommCuDevice) X(ncclCommUserRank)                        \
  X(ncclCommRegister) X(ncclCommDeregister) X(ncclCommWindowRegister)             \
  X(ncclCommWindowDeregister) X(ncclRedOpCreatePreMulSum) X(ncclRedOpDestroy)     \
  X(ncclReduce) X(ncclBcast) X(ncclBroadcast) X(ncclAllReduce)                    \
  X(ncclReduceScatter) X(ncclAllGather) X(ncclAlltoAll) X(ncclGather)             \
  X(ncclScatter) X(ncclSend) X(ncclRecv) X(ncclGroupStart) X(ncclGroupEnd)        \
  X(ncclGroupSimulateEnd)

/* Every enumerator of every public enum. */
#define CHORUS_ABI_ENUMERATORS(X)                                                 \
  X(ncclSuccess) X(ncclUnhandledCudaError) X(ncclSystemError)                     \
  X(ncclInternalError) X(ncclInvalidArgument) X(ncclInvalidUsage)                 \
  X(ncclRemoteError) X(ncclInProgress) X(ncclNumResults)                          \
  X(ncclNumOps_dummy) X(ncclSum) X(ncclProd) X(ncclMax) X(ncclMin) X(ncclAvg)     \
  X(ncclNumOps) X(ncclMaxRedOp)                                                   \
  X(ncclInt8) X(ncclChar) X(ncclUint8) X(ncclInt32) X(ncclInt) X(ncclUint32)      \
  X(ncclInt64) X(ncclUint64) X(ncclFloat16) X(ncclHalf) X(ncclFloat32)            \
  X(ncclFloat) X(ncclFloat64) X(ncclDouble) X(ncclBfloat16) X(ncclFloat8e4m3)     \
  X(ncclFloat8e5m2) X(ncclNumTypes)                                               \
  X(ncclScalarDevice) X(ncclScalarHostImmediate)

/* Integer-valued macros. */
#define CHORUS_ABI_INT_MACROS(X)                                                  \
  X(NCCL_MAJOR) X(NCCL_MINOR) X(NCCL_PATCH) X(NCCL_VERSION_CODE)                  \
  X(NCCL_UNIQUE_ID_BYTES) X(NCCL_CONFIG_UNDEF_INT) X(NCCL_SPLIT_NOCOLOR)          \
  X(NCCL_WIN_DEFAULT) X(NCCL_WIN_COLL_SYMMETRIC) X(NCCL_WIN_REQUIRED_ALIGNMENT)   \
  X(NCCL_CTA_POLICY_DEFAULT) X(NCCL_CTA_POLICY_EFFICIENCY) X(NCCL_CTA_POLICY_ZERO) \
  X(NCCL_SHRINK_DEFAULT) X(NCCL_SHRINK_ABORT) X(NCCL_REVOKE_DEFAULT)

/* Public types. */
#define CHORUS_ABI_TYPES(X)                                                       \
  X(ncclComm_t) X(ncclWindow_t) X(ncclUniqueId) X(ncclResult_t)                   \
  X(ncclRedOp_dummy_t) X(ncclRedOp_t) X(ncclDataType_t)                           \
  X(ncclScalarResidence_t) X(ncclConfig_t) X(ncclSimInfo_t) X(cudaStream_t)

#define CHORUS_ABI_CONFIG_FIELDS(X)                                               \
  X(size) X(magic) X(version) X(blocking) X(cgaClusterSize) X(minCTAs)            \
  X(maxCTAs) X(netName) X(splitShare) X(trafficClass) X(commName)                 \
  X(collnetEnable) X(CTAPolicy) X(shrinkShare) X(nvlsCTAs)                        \
  X(nChannelsPerNetPeer) X(nvlinkCentricSched)

#define CHORUS_ABI_SIM_INFO_FIELDS(X) X(size) X(magic) X(version) X(estimatedTime)

#endif /* CHORUS_TESTS_ABI_API_FUNCTIONS_H_ */
