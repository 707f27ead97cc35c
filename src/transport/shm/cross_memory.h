// Reads another process's memory through the kernel (process_vm_readv,
// "cross-memory attach"): one copy, where a transfer through shared memory
// takes two (the owner's into the shared area, the reader's out of it).
//
// The kernel allows it only where the reader may trace the owner: the same
// user (or CAP_SYS_PTRACE), a Yama ptrace_scope that permits it, and no
// seccomp filter that forbids the calls (some container runtimes). Ranks
// therefore try both calls once at init on every peer (canReachProcess) and
// use them only where every rank can.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "nccl.h"

namespace chorus {

// Lets processes of this user reach this process's memory where Yama
// allows that only to ancestors (ptrace_scope 1, as on Ubuntu), so that
// ranks started side by side (mpirun, torchrun, chorusrun) can; elsewhere
// it changes nothing. Called at init unless CHORUS_CMA=0, before peers try.
void allowPeersToReachThisProcess();

// Where, in this process, a word lies whose value every process knows: a
// peer that reads it here, and writes it back, proves that it can reach
// this process.
uint64_t crossMemoryProbeAddress();

// Whether this process can read and write process `pid`'s memory, tried on
// its probe word at `probeAddress`; if not, `why` says what failed.
bool canReachProcess(pid_t pid, uint64_t probeAddress, std::string* why);

// How many times longer this machine takes to copy 256 KiB of cached data
// through the kernel than with memcpy (this process reading itself, best
// of a few tries; a fraction of a millisecond). Below kKernelCopyBreakEven
// the kernel's one copy beats staging's two (which also meet every round):
// on an Intel Xeon VM this gave 1.9-2.3, and kernel copies won 1.1-2.7x
// for 2-rank AllGather and Broadcast of 64 KiB-1 MiB; on an AMD EPYC VM,
// where they lost 1.2-1.9x, memcpy ran at 74 GB/s and the kernel at 15
// (about 5, measured apart).
double kernelCopySlowdown();
constexpr double kKernelCopyBreakEven = 3.0;

// to[0..bytes) = process `pid`'s memory at `from`, where `pid` holds rank
// `peerRank`'s buffer (named in errors). A process that has exited is
// ncclRemoteError; memory that cannot be reached (freed, or never there) is
// ncclInvalidUsage.
ncclResult_t readProcess(pid_t pid, int peerRank, void* to, uint64_t from, size_t bytes);
// Process `pid`'s memory at `to` = from[0..bytes); errors as readProcess.
ncclResult_t writeProcess(pid_t pid, int peerRank, uint64_t to, const void* from, size_t bytes);

}  // namespace chorus
