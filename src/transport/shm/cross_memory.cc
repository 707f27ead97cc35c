#include "transport/shm/cross_memory.h"

#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/result.h"

namespace chorus {
namespace {

// "chorus-x": read from a peer, it is this value only if the read reached
// the probe word (a wrong address would also fail with EFAULT). Peers
// write the same value back: writable, and never changed.
constexpr uint64_t kProbeValue = 0x782d73756f726863ull;
uint64_t gProbeWord = kProbeValue;

// One process_vm_readv (or _writev) between `local` and [remote, remote +
// bytes) in process `pid`: bytes moved, or -1 with errno.
ssize_t moveOnce(pid_t pid, bool write, void* local, uint64_t remote, size_t bytes) {
  iovec here{local, bytes};
  iovec there{reinterpret_cast<void*>(remote), bytes};
  return write ? process_vm_writev(pid, &here, 1, &there, 1, 0)
               : process_vm_readv(pid, &here, 1, &there, 1, 0);
}

ncclResult_t transfer(pid_t pid, int peerRank, bool write, char* local, uint64_t remote,
                  size_t bytes) {
  for (size_t done = 0; done < bytes;) {
    const ssize_t got = moveOnce(pid, write, local + done, remote + done, bytes - done);
    if (got > 0) {
      done += static_cast<size_t>(got);
      continue;
    }
    // A short transfer stops at the first page it cannot reach; the next
    // call, starting there, moves nothing and says why.
    const int error = got == 0 ? EFAULT : errno;
    if (error == EINTR) continue;
    if (error == ESRCH)
      CHORUS_FAIL(ncclRemoteError, "rank %d's process (pid %d) has exited in the middle of an "
                  "operation", peerRank, static_cast<int>(pid));
    if (error == EFAULT)
      CHORUS_FAIL(ncclInvalidUsage, "rank %d's buffer at 0x%llx cannot be %s at byte %zu of %zu "
                  "(or this rank's buffer cannot be %s): was it freed, or smaller than the "
                  "operation needs?", peerRank, static_cast<unsigned long long>(remote),
                  write ? "written" : "read", done, bytes, write ? "read" : "written");
    CHORUS_FAIL(ncclSystemError, "%s rank %d's buffer (pid %d) with process_vm_%s: %s",
                write ? "writing" : "reading", peerRank, static_cast<int>(pid),
                write ? "writev" : "readv", strerror(error));
  }
  return ncclSuccess;
}

}  // namespace

void allowPeersToReachThisProcess() {
  // Fails (EINVAL) without Yama, where there is nothing to allow.
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
}

uint64_t crossMemoryProbeAddress() { return reinterpret_cast<uint64_t>(&gProbeWord); }

bool canReachProcess(pid_t pid, uint64_t probeAddress, std::string* why) {
  uint64_t value = 0;
  const ssize_t read = moveOnce(pid, false, &value, probeAddress, sizeof(value));
  if (read != static_cast<ssize_t>(sizeof(value))) {
    *why = read < 0 ? std::string("process_vm_readv: ") + strerror(errno)
                    : "process_vm_readv read " + std::to_string(read) + " of 8 bytes";
    return false;
  }
  if (value != kProbeValue) {
    *why = "process_vm_readv read the wrong bytes";
    return false;
  }
  const ssize_t written = moveOnce(pid, true, &value, probeAddress, sizeof(value));
  if (written != static_cast<ssize_t>(sizeof(value))) {
    *why = written < 0 ? std::string("process_vm_writev: ") + strerror(errno)
                       : "process_vm_writev wrote " + std::to_string(written) + " of 8 bytes";
    return false;
  }
  return true;
}

double kernelCopySlowdown() {
  constexpr size_t kBytes = 256 * 1024;
  constexpr int kTries = 8;  // the first also warms caches and pages
  using Clock = std::chrono::steady_clock;
  std::vector<char> from(kBytes, 1), to(kBytes, 0);
  double user = std::numeric_limits<double>::max(), kernel = user;
  for (int i = 0; i < kTries; ++i) {
    const auto start = Clock::now();
    memcpy(to.data(), from.data(), kBytes);
    asm volatile("" : : "r"(to.data()) : "memory");  // the copy is not optimised away
    const auto copied = Clock::now();
    if (moveOnce(getpid(), false, to.data(), reinterpret_cast<uint64_t>(from.data()), kBytes) !=
        static_cast<ssize_t>(kBytes))
      return std::numeric_limits<double>::infinity();
    const auto read = Clock::now();
    user = std::min(user, std::chrono::duration<double>(copied - start).count());
    kernel = std::min(kernel, std::chrono::duration<double>(read - copied).count());
  }
  return kernel / std::max(user, 1e-9);
}

ncclResult_t readProcess(pid_t pid, int peerRank, void* to, uint64_t from, size_t bytes) {
  return transfer(pid, peerRank, false, static_cast<char*>(to), from, bytes);
}

ncclResult_t writeProcess(pid_t pid, int peerRank, uint64_t to, const void* from, size_t bytes) {
  // process_vm_writev only reads the local side.
  return transfer(pid, peerRank, true, const_cast<char*>(static_cast<const char*>(from)), to, bytes);
}

}  // namespace chorus
