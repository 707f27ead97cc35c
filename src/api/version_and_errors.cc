// Entry points that need no communicator: the version, error strings, the
// last-error text and the logging reset.
#include "api/api_export.h"
#include "common/log.h"
#include "common/result.h"

NCCL_API(ncclResult_t, ncclGetVersion, int* version) {
  if (version == nullptr) CHORUS_FAIL(ncclInvalidArgument, "ncclGetVersion: version argument is NULL");
  *version = NCCL_VERSION_CODE;
  return ncclSuccess;
}

// NCCL's exact strings: users grep for them and tools compare them.
//
// GCC finds that this body cannot throw, marks pncclGetErrorString nothrow
// and then warns that its alias ncclGetErrorString lacks the attribute. The
// warning is harmless (a C caller never sees exceptions); silence it here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#endif
NCCL_API(const char*, ncclGetErrorString, ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// The last error is kept per thread, not per communicator (as in NCCL), so
// comm is not used and may be NULL. The text stays valid until this thread's
// next failing call.
NCCL_API(const char*, ncclGetLastError, ncclComm_t comm) {
  (void)comm;
  return chorus::lastError().c_str();
}

// NVIDIA's library exports ncclResetDebugInitInternal as a plain (strong)
// symbol next to ncclResetDebugInit; tools that look it up find it here too.
extern "C" __attribute__((visibility("default"))) void ncclResetDebugInitInternal() {
  chorus::resetLogging();
}

NCCL_API(void, ncclResetDebugInit, void) { chorus::resetLogging(); }
