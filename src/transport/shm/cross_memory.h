// Reads another process's memory through the kernel (process_vm_readv,
// "cross-memory attach"): one copy, where a transfer through shared memory
// takes two (the owner's into the shared area, the reader's out of it).
//
// The kernel allows it only where the reader may trace the owner: the same
// user (or CAP_SYS_PTRACE), a Yama ptrace_scope that permits it, and no
// seccomp filter that forbids the call (some container runtimes). Ranks
// therefore try it once at init on every peer (canReadProcess) and use it
// only where every rank can.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "nccl.h"

namespace chorus {

// Where, in this process, a word lies whose value every process knows: a
// peer that reads it here proves that it can read this process.
uint64_t crossMemoryProbeAddress();

// Whether this process can read process `pid`'s memory, tried on its probe
// word at `probeAddress`; if not, `why` says what failed.
bool canReadProcess(pid_t pid, uint64_t probeAddress, std::string* why);

// to[0..bytes) = process `pid`'s memory at `from`, where `pid` holds rank
// `peerRank`'s buffer (named in errors). A process that has exited is
// ncclRemoteError; memory that cannot be reached (freed, or never there) is
// ncclInvalidUsage.
ncclResult_t readProcess(pid_t pid, int peerRank, void* to, uint64_t from, size_t bytes);
// Process `pid`'s memory at `to` = from[0..bytes); errors as readProcess.
// The kernel allows it wherever it allows reading.
ncclResult_t writeProcess(pid_t pid, int peerRank, uint64_t to, const void* from, size_t bytes);

}  // namespace chorus
