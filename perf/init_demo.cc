// A multi-rank demo written against the public API only: forks N processes
// on this machine, forms a communicator, and reports how long it took.
// (The collectives' benchmarks replace it as the main job once they land.)
//
//   init_demo [nranks]      default 4
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "nccl.h"

static int runRank(int rank, int nranks, ncclUniqueId id) {
  auto start = std::chrono::steady_clock::now();
  ncclComm_t comm;
  ncclResult_t r = ncclCommInitRank(&comm, nranks, id, rank);
  if (r != ncclSuccess) {
    fprintf(stderr, "rank %d: ncclCommInitRank failed: %s (%s)\n", rank, ncclGetErrorString(r),
            ncclGetLastError(nullptr));
    return 1;
  }
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  int count = 0, me = -1, device = -2;
  ncclCommCount(comm, &count);
  ncclCommUserRank(comm, &me);
  ncclCommCuDevice(comm, &device);
  printf("rank %2d of %2d  device %-5s  init %.1f ms\n", me, count,
         device < 0 ? "host" : std::to_string(device).c_str(), ms);
  fflush(stdout);
  return ncclCommDestroy(comm) == ncclSuccess ? 0 : 1;
}

int main(int argc, char** argv) {
  int nranks = argc > 1 ? atoi(argv[1]) : 4;
  if (nranks < 1) {
    fprintf(stderr, "usage: %s [nranks >= 1]\n", argv[0]);
    return 2;
  }
  int version = 0;
  ncclGetVersion(&version);
  printf("# Chorus %d: forming a communicator of %d processes\n", version, nranks);
  fflush(stdout);
  ncclUniqueId id;
  if (ncclGetUniqueId(&id) != ncclSuccess) {
    fprintf(stderr, "ncclGetUniqueId failed: %s\n", ncclGetLastError(nullptr));
    return 1;
  }
  for (int rank = 0; rank < nranks; ++rank)
    if (fork() == 0) _exit(runRank(rank, nranks, id));
  int failures = 0, status = 0;
  while (wait(&status) > 0)
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
  printf("# %s\n", failures == 0 ? "all ranks succeeded" : "some ranks FAILED");
  return failures == 0 ? 0 : 1;
}
