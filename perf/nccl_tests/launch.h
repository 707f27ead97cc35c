// How this process learns its place among the processes, and how all ranks
// end up with one ncclUniqueId. In order of preference:
//   1. mpirun (only in a build with MPI, and only when the environment shows
//      an MPI launcher): MPI_Init, rank 0 makes the id, MPI_Bcast shares it.
//   2. RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT (torchrun,
//      chorusrun; SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID for rank and
//      size): NCCL_COMM_ID is set to MASTER_ADDR:MASTER_PORT unless already
//      set, and every process calls ncclGetUniqueId, which then only parses
//      it (rank 0's init starts the root).
//   3. Otherwise one process.
// Within a process, ranks are threads (-t) times communicators per thread (-g).
#pragma once

#include <string>

#include "nccl.h"

namespace perf {

struct World {
  int nProcs = 1, proc = 0, localRank = 0;
  int nThreads = 1, nGpus = 1;
  int nranks() const { return nProcs * nThreads * nGpus; }
  int rankOf(int thread, int slot) const { return (proc * nThreads + thread) * nGpus + slot; }
  bool mpi = false;
  std::string launcher;  // for the header: "threads", "environment (RANK/WORLD_SIZE)", "mpirun"
  ncclUniqueId id;
};

// Reads the environment (and starts MPI where it applies); must run before
// any NCCL call, since it may set NCCL_COMM_ID. Returns false after printing
// why the environment is unusable.
bool setupProcess(int* argc, char*** argv, World* world);
// Gives every process the same id; false after printing the NCCL error.
bool shareUniqueId(World* world);
// MPI_Finalize where MPI was started.
void finishProcess(const World& world);

// "myhost" (up to the first dot), as nccl-tests prints it.
std::string shortHostName();

// Exit codes, as nccl-tests' testResult_t where they overlap.
enum ExitCode { kExitOk = 0, kExitUsage = 1, kExitCuda = 2, kExitNccl = 3, kExitTimeout = 4,
                kExitWrong = 7 };

// Prints "host pid P: message" to stderr (stdout flushed first).
void printError(const char* format, ...) __attribute__((format(printf, 1, 2)));
// Runs the registered hook (the JSON report), then ends the whole process
// (MPI_Abort under MPI, so the other processes stop too).
[[noreturn]] void die(int code);
void setDieHook(void (*hook)(int code));

}  // namespace perf
