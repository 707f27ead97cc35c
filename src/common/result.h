// Error reporting shared by every layer.
//
// Internal functions return ncclResult_t. A failure is reported once, where it
// is found, with CHORUS_FAIL: the message is logged at WARN with file and line
// and becomes this thread's last error (ncclGetLastError). Callers pass it up
// with CHORUS_CHECK, which adds nothing to the message.
#pragma once

#include <string>

#include "nccl.h"

namespace chorus {

// Records the message as this thread's last error and logs it at WARN.
void reportError(const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
// Records without logging (for messages already logged elsewhere).
void setLastError(const std::string& message);
const std::string& lastError();
void clearLastError();
// The code's name ("ncclInvalidUsage"), for messages.
const char* resultName(ncclResult_t result);

}  // namespace chorus

#define CHORUS_FAIL(code, ...)                                    \
  do {                                                            \
    ::chorus::reportError(__FILE__, __LINE__, __VA_ARGS__);       \
    return (code);                                                \
  } while (0)

// Propagates any result other than ncclSuccess (ncclInProgress included).
#define CHORUS_CHECK(call)                          \
  do {                                              \
    ncclResult_t chorusResult_ = (call);            \
    if (chorusResult_ != ncclSuccess) return chorusResult_; \
  } while (0)
