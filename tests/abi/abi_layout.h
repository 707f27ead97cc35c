/*
 * Compile-time facts of the NCCL 2.28.9 ABI, written out as numbers.
 *
 * Included after an nccl.h: ours (header_check_*.c/.cc) and NVIDIA's
 * (abi_smoke.c). Both must satisfy every assertion, so a number here that
 * is wrong fails against NVIDIA's header, and a header that is wrong fails
 * here. C99 has no static_assert, hence the negative-array trick.
 */
#ifndef CHORUS_TESTS_ABI_LAYOUT_H_
#define CHORUS_TESTS_ABI_LAYOUT_H_

#include <limits.h>
#include <stddef.h>

#if defined(__cplusplus)
#  define CHORUS_ABI_ASSERT(cond, what) static_assert(cond, what)
#else
#  define CHORUS_ABI_CAT2_(a, b) a##b
#  define CHORUS_ABI_CAT_(a, b) CHORUS_ABI_CAT2_(a, b)
#  define CHORUS_ABI_ASSERT(cond, what) \
     typedef char CHORUS_ABI_CAT_(chorus_abi_assert_line_, __LINE__)[(cond) ? 1 : -1]
#endif

/* ---- version ------------------------------------------------------------- */
CHORUS_ABI_ASSERT(NCCL_MAJOR == 2 && NCCL_MINOR == 28 && NCCL_PATCH == 9, "NCCL_MAJOR/MINOR/PATCH");
CHORUS_ABI_ASSERT(NCCL_VERSION_CODE == 22809, "NCCL_VERSION_CODE");
CHORUS_ABI_ASSERT(NCCL_VERSION(2, 28, 9) == 22809, "NCCL_VERSION after 2.8");
CHORUS_ABI_ASSERT(NCCL_VERSION(2, 8, 4) == 2804, "NCCL_VERSION up to 2.8");
CHORUS_ABI_ASSERT(NCCL_VERSION(2, 9, 6) == 20906, "NCCL_VERSION from 2.9");
CHORUS_ABI_ASSERT(sizeof(NCCL_SUFFIX) == 1, "NCCL_SUFFIX is empty");

/* ---- constants ----------------------------------------------------------- */
CHORUS_ABI_ASSERT(NCCL_UNIQUE_ID_BYTES == 128, "NCCL_UNIQUE_ID_BYTES");
CHORUS_ABI_ASSERT(NCCL_CONFIG_UNDEF_INT == INT_MIN, "NCCL_CONFIG_UNDEF_INT");
CHORUS_ABI_ASSERT(NCCL_SPLIT_NOCOLOR == -1, "NCCL_SPLIT_NOCOLOR");
CHORUS_ABI_ASSERT(NCCL_WIN_DEFAULT == 0 && NCCL_WIN_COLL_SYMMETRIC == 1, "NCCL_WIN_*");
CHORUS_ABI_ASSERT(NCCL_WIN_REQUIRED_ALIGNMENT == 4096, "NCCL_WIN_REQUIRED_ALIGNMENT");
CHORUS_ABI_ASSERT(NCCL_CTA_POLICY_DEFAULT == 0 && NCCL_CTA_POLICY_EFFICIENCY == 1 &&
                  NCCL_CTA_POLICY_ZERO == 2, "NCCL_CTA_POLICY_*");
CHORUS_ABI_ASSERT(NCCL_SHRINK_DEFAULT == 0 && NCCL_SHRINK_ABORT == 1, "NCCL_SHRINK_*");
CHORUS_ABI_ASSERT(NCCL_REVOKE_DEFAULT == 0, "NCCL_REVOKE_DEFAULT");

/* ---- ncclResult_t -------------------------------------------------------- */
CHORUS_ABI_ASSERT(sizeof(ncclResult_t) == 4, "sizeof(ncclResult_t)");
CHORUS_ABI_ASSERT(ncclSuccess == 0 && ncclUnhandledCudaError == 1 && ncclSystemError == 2 &&
                  ncclInternalError == 3 && ncclInvalidArgument == 4 && ncclInvalidUsage == 5 &&
                  ncclRemoteError == 6 && ncclInProgress == 7 && ncclNumResults == 8,
                  "ncclResult_t values");

/* ---- ncclRedOp_t --------------------------------------------------------- */
CHORUS_ABI_ASSERT(sizeof(ncclRedOp_t) == 4 && sizeof(ncclRedOp_dummy_t) == 4, "sizeof(ncclRedOp_t)");
CHORUS_ABI_ASSERT(ncclSum == 0 && ncclProd == 1 && ncclMax == 2 && ncclMin == 3 && ncclAvg == 4 &&
                  ncclNumOps == 5 && ncclNumOps_dummy == 5, "ncclRedOp_t values");
CHORUS_ABI_ASSERT(ncclMaxRedOp == 0x7fffffff, "ncclMaxRedOp");

/* ---- ncclDataType_t ------------------------------------------------------ */
CHORUS_ABI_ASSERT(sizeof(ncclDataType_t) == 4, "sizeof(ncclDataType_t)");
CHORUS_ABI_ASSERT(ncclInt8 == 0 && ncclChar == 0 && ncclUint8 == 1 && ncclInt32 == 2 && ncclInt == 2 &&
                  ncclUint32 == 3 && ncclInt64 == 4 && ncclUint64 == 5 && ncclFloat16 == 6 &&
                  ncclHalf == 6 && ncclFloat32 == 7 && ncclFloat == 7 && ncclFloat64 == 8 &&
                  ncclDouble == 8 && ncclBfloat16 == 9 && ncclFloat8e4m3 == 10 &&
                  ncclFloat8e5m2 == 11 && ncclNumTypes == 12,
                  "ncclDataType_t values");

/* ---- ncclScalarResidence_t ----------------------------------------------- */
CHORUS_ABI_ASSERT(sizeof(ncclScalarResidence_t) == 4, "sizeof(ncclScalarResidence_t)");
CHORUS_ABI_ASSERT(ncclScalarDevice == 0 && ncclScalarHostImmediate == 1, "ncclScalarResidence_t values");

/* ---- ncclUniqueId -------------------------------------------------------- */
CHORUS_ABI_ASSERT(sizeof(ncclUniqueId) == 128, "sizeof(ncclUniqueId)");
CHORUS_ABI_ASSERT(offsetof(ncclUniqueId, internal) == 0, "ncclUniqueId.internal");

/* ---- handles ------------------------------------------------------------- */
CHORUS_ABI_ASSERT(sizeof(ncclComm_t) == sizeof(void*), "ncclComm_t is a pointer");
CHORUS_ABI_ASSERT(sizeof(ncclWindow_t) == sizeof(void*), "ncclWindow_t is a pointer");
CHORUS_ABI_ASSERT(sizeof(cudaStream_t) == sizeof(void*), "cudaStream_t is a pointer");

/* ---- struct layouts (LP64: x86-64, aarch64) ------------------------------ */
#if defined(__LP64__)
CHORUS_ABI_ASSERT(sizeof(ncclConfig_t) == 80, "sizeof(ncclConfig_t)");
CHORUS_ABI_ASSERT(sizeof(struct ncclConfig_v22800) == 80, "ncclConfig_t's tag is ncclConfig_v22800");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, size) == 0, "ncclConfig_t.size");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, magic) == 8, "ncclConfig_t.magic");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, version) == 12, "ncclConfig_t.version");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, blocking) == 16, "ncclConfig_t.blocking");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, cgaClusterSize) == 20, "ncclConfig_t.cgaClusterSize");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, minCTAs) == 24, "ncclConfig_t.minCTAs");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, maxCTAs) == 28, "ncclConfig_t.maxCTAs");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, netName) == 32, "ncclConfig_t.netName");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, splitShare) == 40, "ncclConfig_t.splitShare");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, trafficClass) == 44, "ncclConfig_t.trafficClass");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, commName) == 48, "ncclConfig_t.commName");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, collnetEnable) == 56, "ncclConfig_t.collnetEnable");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, CTAPolicy) == 60, "ncclConfig_t.CTAPolicy");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, shrinkShare) == 64, "ncclConfig_t.shrinkShare");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, nvlsCTAs) == 68, "ncclConfig_t.nvlsCTAs");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, nChannelsPerNetPeer) == 72, "ncclConfig_t.nChannelsPerNetPeer");
CHORUS_ABI_ASSERT(offsetof(ncclConfig_t, nvlinkCentricSched) == 76, "ncclConfig_t.nvlinkCentricSched");

CHORUS_ABI_ASSERT(sizeof(ncclSimInfo_t) == 24, "sizeof(ncclSimInfo_t)");
CHORUS_ABI_ASSERT(sizeof(struct ncclSimInfo_v22200) == 24, "ncclSimInfo_t's tag is ncclSimInfo_v22200");
CHORUS_ABI_ASSERT(offsetof(ncclSimInfo_t, size) == 0, "ncclSimInfo_t.size");
CHORUS_ABI_ASSERT(offsetof(ncclSimInfo_t, magic) == 8, "ncclSimInfo_t.magic");
CHORUS_ABI_ASSERT(offsetof(ncclSimInfo_t, version) == 12, "ncclSimInfo_t.version");
CHORUS_ABI_ASSERT(offsetof(ncclSimInfo_t, estimatedTime) == 16, "ncclSimInfo_t.estimatedTime");
#endif

#endif /* CHORUS_TESTS_ABI_LAYOUT_H_ */
