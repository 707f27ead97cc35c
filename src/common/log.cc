#include "common/log.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace chorus {
namespace {

std::mutex gLogMutex;
std::atomic<bool> gInitialized{false};
LogConfig gConfig;
FILE* gFile = nullptr;  // stdout unless NCCL_DEBUG_FILE names a file
char gHost[64] = "";
thread_local int tLogRank = -1;

struct SubsysName {
  const char* name;
  uint64_t bit;
};
const SubsysName kSubsysNames[] = {
    {"INIT", kLogInit},   {"COLL", kLogColl},   {"P2P", kLogP2p},         {"SHM", kLogShm},
    {"NET", kLogNet},     {"GRAPH", kLogGraph}, {"TUNING", kLogTuning},   {"ENV", kLogEnv},
    {"ALLOC", kLogAlloc}, {"CALL", kLogCall},   {"PROXY", kLogProxy},     {"NVLS", kLogNvls},
    {"BOOTSTRAP", kLogBootstrap}, {"REG", kLogReg}, {"PROFILE", kLogProfile}, {"RAS", kLogRas},
    {"ALL", kLogAll},
};

// Reads the environment directly: the settings table logs through us.
void initLocked() {
  if (gInitialized.load(std::memory_order_relaxed)) return;
  gConfig.level = parseLogLevel(getenv("NCCL_DEBUG"));
  const char* subsys = getenv("NCCL_DEBUG_SUBSYS");
  gConfig.subsystems = parseLogSubsystems(subsys ? subsys : "INIT,BOOTSTRAP,ENV");
  gethostname(gHost, sizeof(gHost) - 1);
  if (char* dot = strchr(gHost, '.')) *dot = '\0';
  gFile = stdout;
  const char* fileName = getenv("NCCL_DEBUG_FILE");
  if (gConfig.level > LogLevel::None && fileName && *fileName) {
    char path[4096];
    expandLogFileName(fileName, path, sizeof(path));
    if (FILE* f = fopen(path, "w")) {
      setvbuf(f, nullptr, _IOLBF, 0);
      gFile = f;
    } else {
      fprintf(stderr, "%s:%d: NCCL WARN cannot open NCCL_DEBUG_FILE %s; logging to stdout\n", gHost,
              getpid(), path);
    }
  }
  gInitialized.store(true, std::memory_order_release);
}

// A process may fork while another thread logs (launchers and test harnesses
// fork after threads exist): hold the lock across fork so that the child
// never inherits it locked.
void lockForFork() { gLogMutex.lock(); }
void unlockAfterFork() { gLogMutex.unlock(); }
const int gForkHandlers = pthread_atfork(lockForFork, unlockAfterFork, unlockAfterFork);

}  // namespace

LogLevel parseLogLevel(const char* value) {
  if (value == nullptr) return LogLevel::None;
  if (strcasecmp(value, "VERSION") == 0) return LogLevel::Version;
  if (strcasecmp(value, "WARN") == 0) return LogLevel::Warn;
  if (strcasecmp(value, "INFO") == 0) return LogLevel::Info;
  if (strcasecmp(value, "ABORT") == 0) return LogLevel::Abort;
  if (strcasecmp(value, "TRACE") == 0) return LogLevel::Trace;
  return LogLevel::None;
}

uint64_t parseLogSubsystems(const char* value) {
  if (value == nullptr) return kLogInit | kLogBootstrap | kLogEnv;
  bool invert = value[0] == '^';
  if (invert) ++value;
  uint64_t mask = 0;
  std::string list(value);
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string token = list.substr(start, comma - start);
    for (const SubsysName& s : kSubsysNames)
      if (strcasecmp(token.c_str(), s.name) == 0) mask |= s.bit;
    start = comma + 1;
  }
  return invert ? ~mask : mask;
}

void expandLogFileName(const char* pattern, char* out, int outSize) {
  char host[64] = "";
  gethostname(host, sizeof(host) - 1);
  if (char* dot = strchr(host, '.')) *dot = '\0';
  int n = 0;
  for (const char* p = pattern; *p && n < outSize - 1; ++p) {
    if (p[0] == '%' && p[1] == 'h') {
      n += snprintf(out + n, outSize - n, "%s", host);
      ++p;
    } else if (p[0] == '%' && p[1] == 'p') {
      n += snprintf(out + n, outSize - n, "%d", getpid());
      ++p;
    } else {
      out[n++] = *p;
    }
    if (n >= outSize - 1) n = outSize - 1;
  }
  out[n] = '\0';
}

const LogConfig& logConfig() {
  if (!gInitialized.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(gLogMutex);
    initLocked();
  }
  return gConfig;
}

void resetLogging() {
  std::lock_guard<std::mutex> lock(gLogMutex);
  if (gFile && gFile != stdout) fclose(gFile);
  gFile = nullptr;
  gInitialized.store(false, std::memory_order_relaxed);
  initLocked();
}

void setLogRank(int rank) { tLogRank = rank; }

bool logEnabled(LogLevel level, uint64_t subsys) {
  const LogConfig& config = logConfig();
  if (config.level < level) return false;
  // WARN and VERSION lines are printed whatever the subsystem filter says.
  if (level <= LogLevel::Warn) return true;
  return (config.subsystems & subsys) != 0;
}

void logMessage(LogLevel level, uint64_t /*subsys*/, const char* file, int line, const char* fmt,
                ...) {
  char message[2048];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof(message), fmt, args);
  va_end(args);

  char rank[16] = "";
  if (tLogRank >= 0) snprintf(rank, sizeof(rank), " [%d]", tLogRank);
  const char* tag = level == LogLevel::Warn ? "WARN" : level == LogLevel::Trace ? "TRACE" : "INFO";
  long tid = syscall(SYS_gettid);
  std::lock_guard<std::mutex> lock(gLogMutex);
  FILE* out = gFile ? gFile : stdout;
  if (level == LogLevel::Warn) {
    const char* base = strrchr(file, '/');
    fprintf(out, "%s:%d:%ld%s NCCL WARN %s:%d %s\n", gHost, getpid(), tid, rank,
            base ? base + 1 : file, line, message);
  } else if (level == LogLevel::Version) {
    fprintf(out, "%s\n", message);
  } else {
    fprintf(out, "%s:%d:%ld%s NCCL %s %s\n", gHost, getpid(), tid, rank, tag, message);
  }
  fflush(out);
}

}  // namespace chorus
