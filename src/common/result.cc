#include "common/result.h"

#include <cstdarg>
#include <cstdio>

#include "common/log.h"

namespace chorus {
namespace {
thread_local std::string tLastError;
}

void reportError(const char* file, int line, const char* fmt, ...) {
  char message[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof(message), fmt, args);
  va_end(args);
  tLastError = message;
  if (logEnabled(LogLevel::Warn, kLogAll)) logMessage(LogLevel::Warn, kLogAll, file, line, "%s", message);
}

void setLastError(const std::string& message) { tLastError = message; }
const std::string& lastError() { return tLastError; }
void clearLastError() { tLastError.clear(); }

const char* resultName(ncclResult_t result) {
  switch (result) {
    case ncclSuccess: return "ncclSuccess";
    case ncclUnhandledCudaError: return "ncclUnhandledCudaError";
    case ncclSystemError: return "ncclSystemError";
    case ncclInternalError: return "ncclInternalError";
    case ncclInvalidArgument: return "ncclInvalidArgument";
    case ncclInvalidUsage: return "ncclInvalidUsage";
    case ncclRemoteError: return "ncclRemoteError";
    case ncclInProgress: return "ncclInProgress";
    default: return "an unknown ncclResult_t";
  }
}

}  // namespace chorus
