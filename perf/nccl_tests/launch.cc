#include "launch.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#ifdef CHORUS_PERF_MPI
#include <mpi.h>
#endif

namespace perf {

namespace {

std::atomic<void (*)(int)> dieHook{nullptr};

const char* env(const char* name) {
  const char* v = getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

// A non-negative integer from the environment; -1 when absent, -2 when malformed.
long envInt(const char* name) {
  const char* v = env(name);
  if (v == nullptr) return -1;
  errno = 0;
  char* end = nullptr;
  long n = strtol(v, &end, 10);
  return errno != 0 || *end != '\0' || n < 0 ? -2 : n;
}

bool startedByMpi() {
  return env("OMPI_COMM_WORLD_SIZE") || env("PMI_SIZE") || env("PMIX_RANK");
}

// First of `names` that is set; its value in *value.
bool firstInt(const char* const* names, const char** which, long* value) {
  for (; *names != nullptr; ++names) {
    long v = envInt(*names);
    if (v == -1) continue;
    *which = *names;
    *value = v;
    return true;
  }
  return false;
}

#ifdef CHORUS_PERF_MPI
bool setupMpi(int* argc, char*** argv, World* w) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_size(MPI_COMM_WORLD, &w->nProcs);
  MPI_Comm_rank(MPI_COMM_WORLD, &w->proc);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, w->proc, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &w->localRank);
  MPI_Comm_free(&local);
  w->mpi = true;
  w->launcher = "mpirun";
  return true;
}
#endif

// RANK/WORLD_SIZE (or SLURM's) and MASTER_ADDR/MASTER_PORT. Returns false
// after printing a message; sets *found when the variables are there.
bool setupFromEnvironment(World* w, bool* found) {
  static const char* const kRank[] = {"RANK", "SLURM_PROCID", nullptr};
  static const char* const kSize[] = {"WORLD_SIZE", "SLURM_NTASKS", nullptr};
  static const char* const kLocal[] = {"LOCAL_RANK", "SLURM_LOCALID", nullptr};
  const char *rankName = nullptr, *sizeName = nullptr, *localName = nullptr;
  long rank = 0, size = 0, local = 0;
  const bool hasRank = firstInt(kRank, &rankName, &rank);
  const bool hasSize = firstInt(kSize, &sizeName, &size);
  *found = hasRank || hasSize;
  if (!*found) return true;
  if (!hasRank || !hasSize || rank < 0 || size < 1 || rank >= size) {
    printError("the launch environment is incomplete or inconsistent: %s=%s %s=%s "
               "(need 0 <= RANK < WORLD_SIZE)",
               hasRank ? rankName : "RANK", hasRank ? env(rankName) : "(unset)",
               hasSize ? sizeName : "WORLD_SIZE", hasSize ? env(sizeName) : "(unset)");
    return false;
  }
  if (firstInt(kLocal, &localName, &local) && local < 0) {
    printError("%s=%s is not a rank", localName, env(localName));
    return false;
  }
  w->nProcs = static_cast<int>(size);
  w->proc = static_cast<int>(rank);
  w->localRank = localName != nullptr ? static_cast<int>(local) : 0;
  w->launcher = std::string("environment (") + rankName + "/" + sizeName + ")";
  if (size == 1 || env("NCCL_COMM_ID") != nullptr) return true;
  const char* addr = env("MASTER_ADDR");
  const char* port = env("MASTER_PORT");
  if (addr == nullptr || port == nullptr) {
    printError("%s=%ld of %s=%ld but MASTER_ADDR and MASTER_PORT (or NCCL_COMM_ID) are not set: "
               "the ranks have no address to meet at",
               rankName, rank, sizeName, size);
    return false;
  }
  const bool digits = port[0] != '\0' && strspn(port, "0123456789") == strlen(port);
  const long portNumber = digits && strlen(port) <= 5 ? strtol(port, nullptr, 10) : 0;
  if (portNumber < 1 || portNumber > 65535) {
    printError("MASTER_PORT=%s is not a port number (1-65535)", port);
    return false;
  }
  if (addr[0] == '\0') {
    printError("MASTER_ADDR is empty: the ranks have no address to meet at");
    return false;
  }
  // The root's address, for every process: NCCL_COMM_ID=host:port ([v6]:port).
  std::string id = strchr(addr, ':') != nullptr && addr[0] != '['
                       ? "[" + std::string(addr) + "]:" + port
                       : std::string(addr) + ":" + port;
  setenv("NCCL_COMM_ID", id.c_str(), 1);
  return true;
}

}  // namespace

std::string shortHostName() {
  char name[256] = {0};
  gethostname(name, sizeof name - 1);
  if (char* dot = strchr(name, '.')) *dot = '\0';
  return name;
}

void printError(const char* format, ...) {
  static std::mutex lock;
  std::lock_guard<std::mutex> guard(lock);
  fflush(stdout);
  char text[2048];
  va_list args;
  va_start(args, format);
  vsnprintf(text, sizeof text, format, args);
  va_end(args);
  fprintf(stderr, "%s pid %d: %s\n", shortHostName().c_str(), static_cast<int>(getpid()), text);
  fflush(stderr);
}

void setDieHook(void (*hook)(int)) { dieHook.store(hook); }

void die(int code) {
  static std::atomic<bool> dying{false};
  if (dying.exchange(true)) {  // another thread is already ending the process
    for (;;) pause();
  }
  if (void (*hook)(int) = dieHook.load()) hook(code);
  fflush(stdout);
  fflush(stderr);
#ifdef CHORUS_PERF_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  _exit(code);
}

bool setupProcess(int* argc, char*** argv, World* w) {
  w->launcher = "threads";
#ifdef CHORUS_PERF_MPI
  if (startedByMpi()) return setupMpi(argc, argv, w);
#else
  (void)argc;
  (void)argv;
#endif
  bool found = false;
  if (!setupFromEnvironment(w, &found)) return false;
  if (!found && startedByMpi() && envInt("OMPI_COMM_WORLD_SIZE") != 1 && envInt("PMI_SIZE") != 1)
    printError("warning: started by an MPI launcher, but this build has no MPI: "
               "every process runs alone (rebuild with MPI, or use chorusrun)");
  return true;
}

bool shareUniqueId(World* w) {
  ncclResult_t r = ncclSuccess;
#ifdef CHORUS_PERF_MPI
  if (w->mpi) {
    if (w->proc == 0) r = ncclGetUniqueId(&w->id);
    MPI_Bcast(&r, sizeof r, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (r == ncclSuccess) MPI_Bcast(&w->id, sizeof w->id, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (r != ncclSuccess)
      printError("ncclGetUniqueId failed: %s (%s)", ncclGetErrorString(r), ncclGetLastError(nullptr));
    return r == ncclSuccess;
  }
#endif
  // One process, or NCCL_COMM_ID set for all of them: each makes (parses) the id.
  r = ncclGetUniqueId(&w->id);
  if (r != ncclSuccess)
    printError("ncclGetUniqueId failed: %s (%s)", ncclGetErrorString(r), ncclGetLastError(nullptr));
  return r == ncclSuccess;
}

void finishProcess(const World& w) {
#ifdef CHORUS_PERF_MPI
  if (w.mpi) MPI_Finalize();
#else
  (void)w;
#endif
}

}  // namespace perf
