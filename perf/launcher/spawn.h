// Starting one rank: fork, a process group of its own, PR_SET_PDEATHSIG, its
// stdio, and exec with its environment.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "signals.h"

namespace chorus {
namespace launcher {

struct RankProcess {
  int rank = -1;
  pid_t pid = -1;        // also the id of the rank's process group
  bool running = false;  // started and not reaped yet
  int outFd = -1;        // read ends of its stdout/stderr when output is prefixed
  int errFd = -1;
};

struct SpawnPlan {
  std::vector<std::string> command;  // program (searched in PATH) and arguments
  bool captureOutput = false;        // pipes instead of chorusrun's stdout/stderr
  int stdinFd = -1;                  // made the rank's stdin when >= 0
  const SignalWatch* signals = nullptr;
};

struct SpawnFailure {
  int execErrno = 0;     // non-zero: exec failed with this errno (the child is reaped)
  std::string message;   // what went wrong, for chorusrun's message
};

// Starts `rank` and returns once its exec has succeeded or failed, so that a
// missing program is reported before another rank is started.
bool spawnRank(int rank, const std::vector<std::string>& env, const SpawnPlan& plan,
               RankProcess* out, SpawnFailure* failure);

}  // namespace launcher
}  // namespace chorus
