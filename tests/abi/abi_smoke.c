/*
 * A C program built against NVIDIA's nccl.h and run on Chorus's
 * libnccl.so.2: what an existing NCCL user does when switching libraries.
 *
 *   abi_smoke [expected-library-path]
 *
 * With a path, it first checks that the libnccl.so.2 it runs on is that file
 * (and not another one found through LD_LIBRARY_PATH). Prints one line per
 * failed check and exits 1 if there was any.
 */
#define _GNU_SOURCE
#include CHORUS_NVIDIA_NCCL_H /* NVIDIA's header by absolute path (set by CMake) */

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi_layout.h" /* the same numbers, asserted against NVIDIA's header */

#if defined(CHORUS_NCCL_CUDA_HEADERS)
#error "abi_smoke must be compiled against NVIDIA's nccl.h"
#endif

static int failures = 0;

#define CHECK(cond)                                                 \
  do {                                                              \
    if (!(cond)) {                                                  \
      printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
      ++failures;                                                   \
    }                                                               \
  } while (0)

static void checkLoadedLibrary(const char* expected) {
  Dl_info info;
  char loaded[PATH_MAX], wanted[PATH_MAX];
  if (dladdr((void*)&ncclGetVersion, &info) == 0 || info.dli_fname == NULL) {
    printf("FAIL: dladdr cannot tell where ncclGetVersion comes from\n");
    ++failures;
    return;
  }
  if (realpath(info.dli_fname, loaded) == NULL || realpath(expected, wanted) == NULL ||
      strcmp(loaded, wanted) != 0) {
    printf("FAIL: running on %s, expected %s\n", info.dli_fname, expected);
    ++failures;
  }
}

static void checkVersion(void) {
  int version = 0;
  CHECK(ncclGetVersion(&version) == ncclSuccess);
  CHECK(version == NCCL_VERSION_CODE);
  CHECK(version == 22809);
  version = 0;
  CHECK(pncclGetVersion(&version) == ncclSuccess && version == 22809);
  CHECK(ncclGetVersion(NULL) == ncclInvalidArgument);
  CHECK(strlen(ncclGetLastError(NULL)) > 0);
}

static void checkErrorStrings(void) {
  static const char* const kExpected[] = {
      "no error",
      "unhandled cuda error (run with NCCL_DEBUG=INFO for details)",
      "unhandled system error (run with NCCL_DEBUG=INFO for details)",
      "internal error - please report this issue to the NCCL developers",
      "invalid argument (run with NCCL_DEBUG=WARN for details)",
      "invalid usage (run with NCCL_DEBUG=WARN for details)",
      "remote process exited or there was a network error",
      "NCCL operation in progress",
  };
  int code;
  CHECK(sizeof(kExpected) / sizeof(kExpected[0]) == ncclNumResults);
  for (code = 0; code < ncclNumResults; ++code) {
    const char* text = ncclGetErrorString((ncclResult_t)code);
    if (text == NULL || strcmp(text, kExpected[code]) != 0) {
      printf("FAIL: ncclGetErrorString(%d) = \"%s\", expected \"%s\"\n", code,
             text ? text : "(null)", kExpected[code]);
      ++failures;
    }
  }
  CHECK(strcmp(ncclGetErrorString(ncclNumResults), "unknown result code") == 0);
  CHECK(strcmp(ncclGetErrorString((ncclResult_t)-1), "unknown result code") == 0);
  CHECK(strcmp(pncclGetErrorString(ncclInvalidUsage), kExpected[ncclInvalidUsage]) == 0);
}

/* A window needs a communicator: with none, the call fails cleanly (today
 * because it is not implemented, later because comm is NULL). */
static void checkCallWithoutCommunicatorFails(void) {
  ncclWindow_t window = NULL;
  char buffer[64];
  ncclResult_t result = ncclCommWindowRegister(NULL, buffer, sizeof(buffer), &window, NCCL_WIN_DEFAULT);
  CHECK(result != ncclSuccess && result != ncclInProgress);
  CHECK(window == NULL);
  CHECK(ncclGetLastError(NULL) != NULL && strlen(ncclGetLastError(NULL)) > 0);
}

static void checkInitializers(void) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  ncclSimInfo_t simInfo = NCCL_SIM_INFO_INITIALIZER;
  CHECK(sizeof(ncclConfig_t) == 80);
  CHECK(config.size == 80);
  CHECK(config.magic == 0xcafebeef);
  CHECK(config.version == 22809);
  CHECK(config.blocking == INT_MIN && config.cgaClusterSize == INT_MIN);
  CHECK(config.minCTAs == INT_MIN && config.maxCTAs == INT_MIN);
  CHECK(config.netName == NULL && config.commName == NULL);
  CHECK(config.splitShare == INT_MIN && config.trafficClass == INT_MIN);
  CHECK(config.collnetEnable == INT_MIN && config.CTAPolicy == INT_MIN);
  CHECK(config.shrinkShare == INT_MIN && config.nvlsCTAs == INT_MIN);
  CHECK(config.nChannelsPerNetPeer == INT_MIN && config.nvlinkCentricSched == INT_MIN);
  CHECK(sizeof(ncclSimInfo_t) == 24);
  CHECK(simInfo.size == 24 && simInfo.magic == 0x74685283 && simInfo.version == 22809);
  CHECK(simInfo.estimatedTime == -1.0f);
}

int main(int argc, char** argv) {
  if (argc > 1) checkLoadedLibrary(argv[1]);
  checkVersion();
  checkErrorStrings();
  checkCallWithoutCommunicatorFails();
  checkInitializers();
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  ncclResetDebugInit(); /* exported and callable */
#pragma GCC diagnostic pop
  if (failures == 0) printf("abi_smoke: all checks passed\n");
  return failures == 0 ? 0 : 1;
}
