// Logging in NCCL's format and with NCCL's settings.
//
//   NCCL_DEBUG=VERSION|WARN|INFO|TRACE      how much is printed
//   NCCL_DEBUG_SUBSYS=INIT,NET or ^NET      which subsystems print INFO/TRACE
//   NCCL_DEBUG_FILE=/tmp/chorus.%h.%p       where it goes (%h host, %p pid)
//
// A line reads "host:pid:tid [rank] NCCL INFO message": the "NCCL" tag is kept
// so that scripts which grep NCCL's logs keep working with Chorus.
#pragma once

#include <cstdint>

namespace chorus {

enum class LogLevel : int { None = 0, Version = 1, Warn = 2, Info = 3, Abort = 4, Trace = 5 };

// Bit flags, NCCL's values.
enum LogSubsys : uint64_t {
  kLogInit = 1ull << 0,
  kLogColl = 1ull << 1,
  kLogP2p = 1ull << 2,
  kLogShm = 1ull << 3,
  kLogNet = 1ull << 4,
  kLogGraph = 1ull << 5,
  kLogTuning = 1ull << 6,
  kLogEnv = 1ull << 7,
  kLogAlloc = 1ull << 8,
  kLogCall = 1ull << 9,
  kLogProxy = 1ull << 10,
  kLogNvls = 1ull << 11,
  kLogBootstrap = 1ull << 12,
  kLogReg = 1ull << 13,
  kLogProfile = 1ull << 14,
  kLogRas = 1ull << 15,
  kLogAll = ~0ull,
};

// What the environment asks for; parsed once, again after resetLogging().
struct LogConfig {
  LogLevel level = LogLevel::None;
  uint64_t subsystems = kLogInit | kLogBootstrap | kLogEnv;
};

// Parses NCCL_DEBUG and NCCL_DEBUG_SUBSYS values (exposed for tests).
LogLevel parseLogLevel(const char* value);
uint64_t parseLogSubsystems(const char* value);
// Expands %h (host name) and %p (pid) in an NCCL_DEBUG_FILE value.
void expandLogFileName(const char* pattern, char* out, int outSize);

const LogConfig& logConfig();
void resetLogging();

// The rank printed on this thread's log lines; -1 prints no rank.
void setLogRank(int rank);

bool logEnabled(LogLevel level, uint64_t subsys);
void logMessage(LogLevel level, uint64_t subsys, const char* file, int line,
                const char* fmt, ...) __attribute__((format(printf, 5, 6)));

}  // namespace chorus

#define CHORUS_LOG_(level, subsys, ...)                                         \
  do {                                                                          \
    if (::chorus::logEnabled(level, subsys))                                    \
      ::chorus::logMessage(level, subsys, __FILE__, __LINE__, __VA_ARGS__);     \
  } while (0)

#define WARN(...) CHORUS_LOG_(::chorus::LogLevel::Warn, ::chorus::kLogAll, __VA_ARGS__)
#define INFO(subsys, ...) CHORUS_LOG_(::chorus::LogLevel::Info, subsys, __VA_ARGS__)
#define TRACE(subsys, ...) CHORUS_LOG_(::chorus::LogLevel::Trace, subsys, __VA_ARGS__)
