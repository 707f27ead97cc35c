#include "common/settings.h"

#include <pthread.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>

#include "common/log.h"

namespace chorus {
namespace {

const Setting kSettings[] = {
    // Logging
    {"NCCL_DEBUG", "", "Log level: VERSION, WARN, INFO or TRACE (unset: nothing is printed)."},
    {"NCCL_DEBUG_SUBSYS", "INIT,BOOTSTRAP,ENV",
     "Comma list of subsystems printed at INFO/TRACE (INIT, COLL, P2P, SHM, NET, GRAPH, TUNING, "
     "ENV, ALLOC, CALL, PROXY, NVLS, BOOTSTRAP, REG, PROFILE, RAS, ALL); a leading ^ excludes them."},
    {"NCCL_DEBUG_FILE", "", "Write the log to this file instead of stdout; %h is the host name, %p the pid."},
    // Bootstrap
    {"NCCL_SOCKET_IFNAME", "",
     "Interfaces to use: comma list of name prefixes; ^ excludes, = matches whole names "
     "(default: all but lo and docker*, lo only when nothing else exists)."},
    {"NCCL_SOCKET_FAMILY", "", "Restrict interfaces to AF_INET or AF_INET6 (default: both, IPv4 first)."},
    {"NCCL_COMM_ID", "",
     "host:port or [ipv6]:port of the root: ranks meet there without passing a unique id; rank 0 runs the root."},
    {"CHORUS_TIMEOUT", "60",
     "Seconds any wait may last (bootstrap connect/accept/recv, missing ranks, data) before it fails "
     "with an error naming the peer."},
    // Data path
    {"NCCL_BUFFSIZE", "4194304",
     "Bytes of FIFO per connection (NCCL_STEPS = 8 slots of NCCL_BUFFSIZE/8 bytes each)."},
    {"NCCL_SHM_DISABLE", "0", "1: never use shared memory between ranks of one host; use sockets instead."},
    {"NCCL_NSOCKS_PERTHREAD", "1", "TCP sockets per socket-transport connection for each proxy thread."},
    {"NCCL_SOCKET_NTHREADS", "1", "Proxy threads of a communicator's socket transport; each connection has NTHREADS x NSOCKS_PERTHREAD sockets (at most 64), socket i served by thread i % NTHREADS."},
    {"NCCL_MIN_NCHANNELS", "1", "Fewest channels (rings) a communicator uses."},
    {"NCCL_MAX_NCHANNELS", "1", "Most channels (rings) a communicator uses; each channel moves its own slice of every collective."},
    {"CHORUS_HOST_ALGO", "auto",
     "Algorithm for host buffers: auto (direct when every rank is on this host and shared memory is "
     "allowed, else ring) or ring."},
    {"CHORUS_ONESHOT_BYTES", "65536",
     "Direct algorithms: AllReduce messages up to this many bytes are reduced whole by every rank "
     "(one meeting); larger ones are split, each rank reducing one block."},
    {"CHORUS_STAGE_BYTES", "1048576",
     "Direct algorithms between processes: bytes of shared staging per rank (twice, for "
     "alternate rounds); an operation runs in rounds that fit it, or a quarter of it when every "
     "rank has a core of its own, and always for Broadcast and Reduce (smaller rounds pipeline "
     "better); an AllGather round, in which each rank reads every rank's piece, reads at most "
     "this much per rank."},
    {"CHORUS_CMA", "auto",
     "Direct algorithms between processes: collectives of at least CHORUS_CMA_BYTES of output "
     "per rank (Broadcast and Reduce: CHORUS_CMA_ONE_WAY_BYTES; reductions: of at most "
     "CHORUS_CMA_REDUCE_MAX_BYTES of input) read (and write) "
     "peers' buffers in place through the kernel (process_vm_readv, cross-memory attach: one "
     "copy) instead of through staging (two), where every rank may "
     "reach every peer's memory (same user, ptrace allowed, same pid namespace; under Yama "
     "ptrace_scope 1 each process lets processes of its user reach it, PR_SET_PTRACER). With "
     "more ranks than cores, only outputs per rank from CHORUS_CMA_SHARED_CORES_BYTES to "
     "CHORUS_CMA_SHARED_CORES_MAX_BYTES. auto: where a copy through the kernel takes less than "
     "3 times a memcpy's time (timed at init) and no core has more than two ranks; 1: "
     "whatever the timing (the sizes as above); 0: never."},
    {"CHORUS_CMA_BYTES", "8192",
     "The smallest output per rank, in bytes, of an AllGather, AllReduce or ReduceScatter that "
     "CHORUS_CMA applies to."},
    {"CHORUS_CMA_ONE_WAY_BYTES", "32768",
     "The smallest message, in bytes, of a Broadcast or Reduce that CHORUS_CMA applies to: "
     "higher, since smaller ones run staged without a meeting, their publisher ahead of its "
     "readers, where a copy through the kernel needs two."},
    {"CHORUS_CMA_REDUCE_MAX_BYTES", "16777216",
     "The largest input per rank, in bytes, of an AllReduce, ReduceScatter or Reduce that "
     "CHORUS_CMA applies to: larger buffers outgrow the caches, and there staged rounds, whose "
     "copies are memcpy's, are faster than the kernel's copies."},
    {"CHORUS_CMA_SHARED_CORES_BYTES", "524288",
     "With more ranks than cores: the smallest output per rank, in bytes, of any collective "
     "that CHORUS_CMA applies to, in place of CHORUS_CMA_BYTES and CHORUS_CMA_ONE_WAY_BYTES. "
     "Higher: with shared cores each meeting costs context switches, and an operation through "
     "the kernel meets once more at its end (its buffers must outlive their readers), which "
     "small messages do not repay."},
    {"CHORUS_CMA_SHARED_CORES_MAX_BYTES", "4194304",
     "With more ranks than cores: the largest output per rank, in bytes, of any collective "
     "that CHORUS_CMA applies to: beyond it the kernel's copies, slower than memcpy once the "
     "ranks' buffers together outgrow the caches, cost more than staging saves."},
    {"CHORUS_STREAM_BYTES", "4194304",
     "Direct algorithms on host buffers: a rank whose output is at least this many bytes copies "
     "into it, and into its peers' outputs where it writes them in place, with stores that "
     "bypass the caches (non-temporal), which neither read each line before writing it nor "
     "evict what is in use; 0: never. Each rank's own (it may differ between ranks)."},
    // Devices
    {"CHORUS_DEVICE", "auto",
     "auto: bind a communicator to the current CUDA device when one is usable, else to the host; "
     "host: always bind to the host."},
    {"NCCL_P2P_DISABLE", "0",
     "1: device communicators never map each other's GPU memory (CUDA IPC); ranks of one host "
     "exchange device data through pinned shared host memory instead."},
    {"NCCL_LOCAL_REGISTER", "1",
     "0: ncclCommRegister only records buffers; 1: registered buffers are also lent to peers in "
     "other processes, which read (and write) them in place instead of staged copies or copies "
     "through the kernel: GPU memory where ranks map each other's, ncclMemAlloc host blocks "
     "between processes."},
    {"CHORUS_DEVICE_STAGE_BYTES", "8388608",
     "Device communicators on one host: bytes of staging per rank (twice, for alternate "
     "rounds), in GPU memory, or in pinned shared host memory with NCCL_P2P_DISABLE=1."},
    {"CHORUS_DEVICE_RING", "0",
     "Device communicators on one host with p2p: run collectives as the ring kernel with this "
     "many channels (thread blocks, 1-16), FIFOs in GPU memory; 0 runs them on the proxy's "
     "direct algorithms."},
    {"NCCL_PROTO", "",
     "Protocols the ring kernel may use: comma list of LL, LL128, Simple (any case), or ^ and a "
     "list to exclude; LL128 is not built (default: LL up to 16 KiB per rank, Simple above)."},
};

std::mutex gReportedMutex;
std::set<std::string> gReported;

// Held across fork so that a child never inherits it locked (see log.cc).
void lockForFork() { gReportedMutex.lock(); }
void unlockAfterFork() { gReportedMutex.unlock(); }
const int gForkHandlers = pthread_atfork(lockForFork, unlockAfterFork, unlockAfterFork);

const Setting* find(const char* name) {
  for (const Setting& s : kSettings)
    if (strcmp(s.name, name) == 0) return &s;
  fprintf(stderr, "chorus: internal error: setting %s is not in the settings table\n", name);
  abort();
}

// Logs each setting taken from the environment once per process.
void reportFromEnvironment(const char* name, const char* value) {
  std::lock_guard<std::mutex> lock(gReportedMutex);
  if (!gReported.insert(name).second) return;
  INFO(kLogEnv, "%s set by environment to %s", name, value);
}

}  // namespace

const Setting* allSettings(int* count) {
  *count = static_cast<int>(sizeof(kSettings) / sizeof(kSettings[0]));
  return kSettings;
}

std::string settingString(const char* name) {
  const Setting* s = find(name);
  const char* env = getenv(name);
  if (env == nullptr) return s->defaultValue;
  reportFromEnvironment(name, env);
  return env;
}

int64_t settingInt(const char* name) {
  const Setting* s = find(name);
  std::string value = settingString(name);
  if (value.empty()) value = s->defaultValue;
  errno = 0;
  char* end = nullptr;
  long long parsed = strtoll(value.c_str(), &end, 0);
  if (errno != 0 || end == value.c_str() || *end != '\0') {
    WARN("%s=%s is not a number; using the default %s", name, value.c_str(), s->defaultValue);
    return strtoll(s->defaultValue, nullptr, 0);
  }
  return parsed;
}

bool settingIsSet(const char* name) {
  find(name);
  return getenv(name) != nullptr;
}

}  // namespace chorus
