/*
 * Chorus: the public C API, binary compatible with NCCL 2.28.9.
 *
 * Names, signatures, enum values and struct layouts are NCCL's, because
 * programs built against NCCL must run unchanged on libnccl.so.2 from Chorus.
 * The wording here is ours; see DESIGN.md for what Chorus does differently.
 *
 * The header compiles as C99 and later, and as C++, with or without the CUDA
 * toolkit. When <cuda_runtime.h> can be found it is included, as NCCL does;
 * otherwise cudaStream_t is declared as the same opaque pointer type CUDA
 * uses, so the ABI does not change. Define CHORUS_NO_CUDA_HEADERS to never
 * include CUDA headers. CHORUS_NCCL_CUDA_HEADERS is 1 when they were used.
 *
 * Every entry point ncclX has a twin pncclX (profiling interface): the ncclX
 * symbol is weak, so a tool may interpose it and call pncclX.
 */
#ifndef NCCL_H_ /* NCCL's guard: this header and NVIDIA's never both apply */
#define NCCL_H_

/* ---- CUDA or not --------------------------------------------------------- */

#if !defined(CHORUS_NO_CUDA_HEADERS)
#  if defined(__CUDACC__) || defined(__CUDA_RUNTIME_H__)
#    define CHORUS_NCCL_CUDA_HEADERS 1
#  elif defined(__has_include)
/* A separate #if: a preprocessor without __has_include must not parse it. */
#    if __has_include(<cuda_runtime.h>)
#      define CHORUS_NCCL_CUDA_HEADERS 1
#    endif
#  endif
#endif

#if defined(CHORUS_NCCL_CUDA_HEADERS)
#  include <cuda_runtime.h>
#  include <cuda_fp16.h>
#  if CUDART_VERSION >= 11000
#    include <cuda_bf16.h>
#  endif
#  if defined(__cplusplus) && CUDART_VERSION >= 11080
#    include <cuda_fp8.h>
#  endif
#else
#  define CHORUS_NCCL_CUDA_HEADERS 0
/* driver_types.h (guarded by __DRIVER_TYPES_H__) declares the same type. */
#  if !defined(__DRIVER_TYPES_H__)
typedef struct CUstream_st* cudaStream_t;
#  endif
#endif

#include <limits.h>
#include <stddef.h>

/* ---- version ------------------------------------------------------------- */

#define NCCL_MAJOR 2
#define NCCL_MINOR 28
#define NCCL_PATCH 9
#define NCCL_SUFFIX ""

#define NCCL_VERSION_CODE 22809
/* Codes were X*1000+Y*100+Z up to 2.8, and X*10000+Y*100+Z since 2.9. */
#define NCCL_VERSION(X, Y, Z) \
  (((X) <= 2 && (Y) <= 8) ? (X) * 1000 + (Y) * 100 + (Z) : (X) * 10000 + (Y) * 100 + (Z))

/* GCC and Clang know the deprecated("message") attribute; others get nothing. */
#if defined(__GNUC__) || defined(__clang__)
#  define CHORUS_NCCL_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#  define CHORUS_NCCL_DEPRECATED(msg)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- handles and ids ----------------------------------------------------- */

typedef struct ncclComm* ncclComm_t;               /* a communicator */
typedef struct ncclWindow_vidmem* ncclWindow_t;    /* a registered window */
#define NCCL_COMM_NULL NULL

/* Made by ncclGetUniqueId on one rank, copied to all the others. */
#define NCCL_UNIQUE_ID_BYTES 128
typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;

/* ---- results ------------------------------------------------------------- */

typedef enum { ncclSuccess                 =  0,
               ncclUnhandledCudaError      =  1,
               ncclSystemError             =  2,
               ncclInternalError           =  3,
               ncclInvalidArgument         =  4,
               ncclInvalidUsage            =  5,
               ncclRemoteError             =  6,
               ncclInProgress              =  7,
               ncclNumResults              =  8 } ncclResult_t;

/* ---- constants ----------------------------------------------------------- */

#define NCCL_CONFIG_UNDEF_INT INT_MIN   /* "not set": the library decides */
#define NCCL_CONFIG_UNDEF_PTR NULL
#define NCCL_SPLIT_NOCOLOR -1           /* ncclCommSplit: this rank joins none */
#define NCCL_UNDEF_FLOAT -1.0f

/* winFlags of ncclCommWindowRegister */
#define NCCL_WIN_DEFAULT 0x00
#define NCCL_WIN_COLL_SYMMETRIC 0x01    /* every rank registers the same size */
#define NCCL_WIN_REQUIRED_ALIGNMENT 4096

/* ncclConfig_t.CTAPolicy */
#define NCCL_CTA_POLICY_DEFAULT 0x00
#define NCCL_CTA_POLICY_EFFICIENCY 0x01
#define NCCL_CTA_POLICY_ZERO 0x02

/* shrinkFlags of ncclCommShrink */
#define NCCL_SHRINK_DEFAULT 0x00        /* parent is healthy */
#define NCCL_SHRINK_ABORT 0x01          /* abort the parent's work first */

/* revokeFlags of ncclCommRevoke: none defined yet, pass 0 */
#define NCCL_REVOKE_DEFAULT 0x00

/* ---- communicator configuration ------------------------------------------ */

/* Always start from NCCL_CONFIG_INITIALIZER, then set the fields you want.
 * size, magic and version identify the struct and are not to be changed.
 * The layout is NCCL's (80 bytes on LP64). */
typedef struct ncclConfig_v22800 {
  size_t size;
  unsigned int magic;
  unsigned int version;
  int blocking;              /* 0: calls may return ncclInProgress */
  int cgaClusterSize;
  int minCTAs;
  int maxCTAs;
  const char* netName;       /* network plugin / transport to use */
  int splitShare;            /* children of ncclCommSplit share resources */
  int trafficClass;
  const char* commName;      /* printed in logs */
  int collnetEnable;
  int CTAPolicy;             /* NCCL_CTA_POLICY_* */
  int shrinkShare;           /* children of ncclCommShrink share resources */
  int nvlsCTAs;
  int nChannelsPerNetPeer;
  int nvlinkCentricSched;
} ncclConfig_t;

#define NCCL_CONFIG_INITIALIZER {                         \
  sizeof(ncclConfig_t),                 /* size */        \
  0xcafebeef,                           /* magic */       \
  NCCL_VERSION(NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH),       \
  NCCL_CONFIG_UNDEF_INT,                /* blocking */    \
  NCCL_CONFIG_UNDEF_INT,                /* cgaClusterSize */ \
  NCCL_CONFIG_UNDEF_INT,                /* minCTAs */     \
  NCCL_CONFIG_UNDEF_INT,                /* maxCTAs */     \
  NCCL_CONFIG_UNDEF_PTR,                /* netName */     \
  NCCL_CONFIG_UNDEF_INT,                /* splitShare */  \
  NCCL_CONFIG_UNDEF_INT,                /* trafficClass */ \
  NCCL_CONFIG_UNDEF_PTR,                /* commName */    \
  NCCL_CONFIG_UNDEF_INT,                /* collnetEnable */ \
  NCCL_CONFIG_UNDEF_INT,                /* CTAPolicy */   \
  NCCL_CONFIG_UNDEF_INT,                /* shrinkShare */ \
  NCCL_CONFIG_UNDEF_INT,                /* nvlsCTAs */    \
  NCCL_CONFIG_UNDEF_INT,                /* nChannelsPerNetPeer */ \
  NCCL_CONFIG_UNDEF_INT,                /* nvlinkCentricSched */ \
}

/* What ncclGroupSimulateEnd reports. Start from NCCL_SIM_INFO_INITIALIZER. */
typedef struct ncclSimInfo_v22200 {
  size_t size;
  unsigned int magic;
  unsigned int version;
  float estimatedTime;       /* microseconds */
} ncclSimInfo_t;

#define NCCL_SIM_INFO_INITIALIZER {                       \
  sizeof(ncclSimInfo_t),                /* size */        \
  0x74685283,                           /* magic */       \
  NCCL_VERSION(NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH),       \
  NCCL_UNDEF_FLOAT                      /* estimatedTime */ \
}

/* ---- reduction operators and datatypes ----------------------------------- */

/* ncclRedOp_dummy_t has the size the compiler gives a small enum; ncclMaxRedOp
 * is the largest value that fits in it, so ncclRedOp_t keeps that size. */
typedef enum { ncclNumOps_dummy = 5 } ncclRedOp_dummy_t;
typedef enum { ncclSum        = 0,
               ncclProd       = 1,
               ncclMax        = 2,
               ncclMin        = 3,
               ncclAvg        = 4,
               ncclNumOps     = 5,  /* built-in count; first user-made op */
               ncclMaxRedOp   = 0x7fffffff >> (32 - 8 * sizeof(ncclRedOp_dummy_t))
             } ncclRedOp_t;

typedef enum { ncclInt8       = 0, ncclChar       = 0,
               ncclUint8      = 1,
               ncclInt32      = 2, ncclInt        = 2,
               ncclUint32     = 3,
               ncclInt64      = 4,
               ncclUint64     = 5,
               ncclFloat16    = 6, ncclHalf       = 6,
               ncclFloat32    = 7, ncclFloat      = 7,
               ncclFloat64    = 8, ncclDouble     = 8,
               ncclBfloat16   = 9,
               ncclFloat8e4m3 = 10,
               ncclFloat8e5m2 = 11,
               ncclNumTypes   = 12 } ncclDataType_t;

/* Where the scalar of ncclRedOpCreatePreMulSum lives. */
typedef enum {
  ncclScalarDevice = 0,         /* device memory, read while the op runs */
  ncclScalarHostImmediate = 1   /* host memory, read before the call returns */
} ncclScalarResidence_t;

/* ---- memory -------------------------------------------------------------- */

/* Memory suited to registration; the allocation may be rounded up. */
ncclResult_t  ncclMemAlloc(void** ptr, size_t size);
ncclResult_t pncclMemAlloc(void** ptr, size_t size);
ncclResult_t  ncclMemFree(void* ptr);
ncclResult_t pncclMemFree(void* ptr);

/* ---- version, ids, communicators ----------------------------------------- */

/* NCCL_VERSION_CODE of the library that is running. */
ncclResult_t  ncclGetVersion(int* version);
ncclResult_t pncclGetVersion(int* version);

/* A fresh id; one rank makes it and sends it to the others. */
ncclResult_t  ncclGetUniqueId(ncclUniqueId* uniqueId);
ncclResult_t pncclGetUniqueId(ncclUniqueId* uniqueId);

/* Joins rank (0..nranks-1) to the communicator named by commId. Every rank
 * calls it (from its own thread or process, or inside a group). */
ncclResult_t  ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank, ncclConfig_t* config);
ncclResult_t pncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank, ncclConfig_t* config);
ncclResult_t  ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);
ncclResult_t pncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);

/* ndev communicators in one process, one per device of devlist (NULL: the
 * first ndev devices). comm must hold ndev handles. */
ncclResult_t  ncclCommInitAll(ncclComm_t* comm, int ndev, const int* devlist);
ncclResult_t pncclCommInitAll(ncclComm_t* comm, int ndev, const int* devlist);

/* Like ncclCommInitRankConfig with nId ids (same ids, same order, on every
 * rank) to spread the rendezvous. */
ncclResult_t  ncclCommInitRankScalable(ncclComm_t* newcomm, int nranks, int myrank, int nId, ncclUniqueId* commIds, ncclConfig_t* config);
ncclResult_t pncclCommInitRankScalable(ncclComm_t* newcomm, int nranks, int myrank, int nId, ncclUniqueId* commIds, ncclConfig_t* config);

/* Completes outstanding work; then ncclCommDestroy frees without blocking. */
ncclResult_t  ncclCommFinalize(ncclComm_t comm);
ncclResult_t pncclCommFinalize(ncclComm_t comm);

/* Frees the communicator's local resources. */
ncclResult_t  ncclCommDestroy(ncclComm_t comm);
ncclResult_t pncclCommDestroy(ncclComm_t comm);

/* Stops outstanding work and frees the communicator. */
ncclResult_t  ncclCommAbort(ncclComm_t comm);
ncclResult_t pncclCommAbort(ncclComm_t comm);

/* Stops in-flight work but keeps the communicator for destroy, split or
 * shrink. revokeFlags must be NCCL_REVOKE_DEFAULT. */
ncclResult_t  ncclCommRevoke(ncclComm_t comm, int revokeFlags);
ncclResult_t pncclCommRevoke(ncclComm_t comm, int revokeFlags);

/* Ranks passing the same color form a new communicator, ordered by key;
 * NCCL_SPLIT_NOCOLOR gives *newcomm = NULL. config NULL: inherit. */
ncclResult_t  ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* newcomm, ncclConfig_t* config);
ncclResult_t pncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* newcomm, ncclConfig_t* config);

/* A new communicator without the listed ranks (renumbered densely).
 * shrinkFlags: NCCL_SHRINK_*. config NULL: inherit. */
ncclResult_t  ncclCommShrink(ncclComm_t comm, int* excludeRanksList, int excludeRanksCount, ncclComm_t* newcomm, ncclConfig_t* config, int shrinkFlags);
ncclResult_t pncclCommShrink(ncclComm_t comm, int* excludeRanksList, int excludeRanksCount, ncclComm_t* newcomm, ncclConfig_t* config, int shrinkFlags);

/* ---- errors and diagnostics ---------------------------------------------- */

/* A fixed description of a result code. */
const char*  ncclGetErrorString(ncclResult_t result);
const char* pncclGetErrorString(ncclResult_t result);

/* The message of the last error seen by the calling thread (comm may be NULL). */
const char*  ncclGetLastError(ncclComm_t comm);
const char* pncclGetLastError(ncclComm_t comm);

/* Reads the logging environment (NCCL_DEBUG, ...) again. Not part of the
 * supported API, as in NCCL. */
CHORUS_NCCL_DEPRECATED("ncclResetDebugInit is not part of the supported NCCL API and may go away")
void  ncclResetDebugInit(void);
CHORUS_NCCL_DEPRECATED("pncclResetDebugInit is not part of the supported NCCL API and may go away")
void pncclResetDebugInit(void);

/* Errors found after a call returned, and progress of a non-blocking comm. */
ncclResult_t  ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError);
ncclResult_t pncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError);

/* ---- communicator queries ------------------------------------------------ */

ncclResult_t  ncclCommCount(const ncclComm_t comm, int* count);
ncclResult_t pncclCommCount(const ncclComm_t comm, int* count);
ncclResult_t  ncclCommCuDevice(const ncclComm_t comm, int* device);
ncclResult_t pncclCommCuDevice(const ncclComm_t comm, int* device);
ncclResult_t  ncclCommUserRank(const ncclComm_t comm, int* rank);
ncclResult_t pncclCommUserRank(const ncclComm_t comm, int* rank);

/* ---- buffer registration ------------------------------------------------- */

/* Registers a buffer for zero-copy transfers; *handle undoes it. */
ncclResult_t  ncclCommRegister(const ncclComm_t comm, void* buff, size_t size, void** handle);
ncclResult_t pncclCommRegister(const ncclComm_t comm, void* buff, size_t size, void** handle);
ncclResult_t  ncclCommDeregister(const ncclComm_t comm, void* handle);
ncclResult_t pncclCommDeregister(const ncclComm_t comm, void* handle);

/* Registers a window (collective call); winFlags: NCCL_WIN_*. */
ncclResult_t  ncclCommWindowRegister(ncclComm_t comm, void* buff, size_t size, ncclWindow_t* win, int winFlags);
ncclResult_t pncclCommWindowRegister(ncclComm_t comm, void* buff, size_t size, ncclWindow_t* win, int winFlags);
ncclResult_t  ncclCommWindowDeregister(ncclComm_t comm, ncclWindow_t win);
ncclResult_t pncclCommWindowDeregister(ncclComm_t comm, ncclWindow_t win);

/* ---- user-made reduction operators --------------------------------------- */

/* An operator that multiplies each input by *scalar, then sums. Valid only
 * with comm and datatype. */
ncclResult_t  ncclRedOpCreatePreMulSum(ncclRedOp_t* op, void* scalar, ncclDataType_t datatype, ncclScalarResidence_t residence, ncclComm_t comm);
ncclResult_t pncclRedOpCreatePreMulSum(ncclRedOp_t* op, void* scalar, ncclDataType_t datatype, ncclScalarResidence_t residence, ncclComm_t comm);
/* Frees op once no call using it is still inside the library. */
ncclResult_t  ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm);
ncclResult_t pncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm);

/* ---- collectives ----------------------------------------------------------
 * Every rank of comm makes the same call. The call returns once the work is
 * queued on stream. Counts are in elements. Where sendbuff and recvbuff may
 * alias, the operation runs in place. */

/* Reduction of every rank's sendbuff into recvbuff on root. */
ncclResult_t  ncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
    ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream);
ncclResult_t pncclReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype,
    ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream);

/* Old in-place form of ncclBroadcast. */
ncclResult_t  ncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root,
    ncclComm_t comm, cudaStream_t stream);
ncclResult_t pncclBcast(void* buff, size_t count, ncclDataType_t datatype, int root,
    ncclComm_t comm, cudaStream_t stream);

/* root's sendbuff into every rank's recvbuff. */
ncclResult_t  ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
    ncclComm_t comm, cudaStream_t stream);
ncclResult_t pncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
    ncclComm_t comm, cudaStream_t stream);

/* Reduction of every rank's sendbuff into every rank's recvbuff. */
ncclResult_t  ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
    ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
ncclResult_t pncclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
    ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);

/* Reduction of nranks*recvcount elements; rank i keeps block i. */
ncclResult_t  ncclReduceScatter(const void* sendbuff, void* recvbuff,
    size_t recvcount, ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
    cudaStream_t stream);
ncclResult_t pncclReduceScatter(const void* sendbuff, void* recvbuff,
    size_t recvcount, ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
    cudaStream_t stream);

/* Rank i's sendcount elements land at recvbuff + i*sendcount everywhere. */
ncclResult_t  ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
    ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream);
ncclResult_t pncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
    ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream);

/* Block j of sendbuff goes to rank j; block i of recvbuff comes from rank i. */
ncclResult_t  ncclAlltoAll(const void* sendbuff, void* recvbuff, size_t count,
    ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream);
ncclResult_t pncclAlltoAll(const void* sendbuff, void* recvbuff, size_t count,
    ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream);

/* Rank i's sendbuff lands at recvbuff + i*count on root. */
ncclResult_t  ncclGather(const void* sendbuff, void* recvbuff, size_t count,
    ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream);
ncclResult_t pncclGather(const void* sendbuff, void* recvbuff, size_t count,
    ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream);

/* Block i of root's sendbuff lands in rank i's recvbuff. */
ncclResult_t  ncclScatter(const void* sendbuff, void* recvbuff, size_t count,
    ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream);
ncclResult_t pncclScatter(const void* sendbuff, void* recvbuff, size_t count,
    ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream);

/* ---- point to point -------------------------------------------------------
 * A send matches the peer's receive with the same count and datatype. Put
 * sends and receives that must progress together in one group. */

ncclResult_t  ncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer,
    ncclComm_t comm, cudaStream_t stream);
ncclResult_t pncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer,
    ncclComm_t comm, cudaStream_t stream);
ncclResult_t  ncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer,
    ncclComm_t comm, cudaStream_t stream);
ncclResult_t pncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer,
    ncclComm_t comm, cudaStream_t stream);

/* ---- groups ---------------------------------------------------------------
 * Calls between ncclGroupStart and ncclGroupEnd are only recorded; GroupEnd
 * launches them together. This lets one thread drive several ranks, and lets
 * sends and receives progress concurrently. Groups nest. */

ncclResult_t  ncclGroupStart(void);
ncclResult_t pncclGroupStart(void);
ncclResult_t  ncclGroupEnd(void);
ncclResult_t pncclGroupEnd(void);

/* Like ncclGroupEnd, but runs nothing: it fills in *simInfo instead. */
ncclResult_t  ncclGroupSimulateEnd(ncclSimInfo_t* simInfo);
ncclResult_t pncclGroupSimulateEnd(ncclSimInfo_t* simInfo);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* NCCL_H_ */
