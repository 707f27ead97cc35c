// chorusrun: starts N ranks of a program on this machine with torchrun-style
// environment variables, and supervises them. See docs/launching.md.
//
//   chorusrun [options] -n N program [args...]
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

#include "environment.h"
#include "exit_codes.h"
#include "free_port.h"
#include "options.h"
#include "prefixed_output.h"
#include "signals.h"
#include "spawn.h"
#include "supervisor.h"

using namespace chorus::launcher;

namespace {

// A closed stdin/stdout/stderr would let a pipe take its number, and the
// rank's dup2 onto it would then be a no-op that exec closes.
void openMissingStdio() {
  for (int fd = 0; fd <= 2; ++fd)
    if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) open("/dev/null", O_RDWR);
}

}  // namespace

int main(int argc, char** argv) {
  auto start = Supervisor::Clock::now();
  openMissingStdio();
  Options options;
  std::string error;
  switch (parseOptions(argc, argv, &options, &error)) {
    case ParseResult::kHelp:
      printUsage(stdout);
      return 0;
    case ParseResult::kError:
      fprintf(stderr, "chorusrun: %s\nTry 'chorusrun -h' for help.\n", error.c_str());
      return kExitUsage;
    case ParseResult::kRun:
      break;
  }
  int port = options.port;
  if (port == 0 && !findFreePort(options.addr, &port, &error)) {
    fprintf(stderr, "chorusrun: %s\n", error.c_str());
    return kExitUsage;
  }
  SignalWatch signals;
  if (!signals.start(&error)) {
    fprintf(stderr, "chorusrun: %s\n", error.c_str());
    return kExitLauncherError;
  }
  // Ranks run in process groups of their own, in the background as far as a
  // terminal is concerned: reading it would stop them (SIGTTIN). So a
  // terminal stdin goes to nobody; any other stdin (a pipe, a file) to rank 0.
  int devNull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  bool stdinIsTerminal = isatty(STDIN_FILENO) != 0;

  std::vector<std::string> shared = sharedEnvironment(environ, options.extraEnv);
  SpawnPlan plan;
  plan.command = options.command;
  plan.captureOutput = options.prefix;
  plan.signals = &signals;
  PrefixedOutput output;
  std::vector<RankProcess> ranks;
  for (int rank = 0; rank < options.ranks; ++rank) {
    plan.stdinFd = rank == 0 && !stdinIsTerminal ? -1 : devNull;
    RankProcess process;
    SpawnFailure failure;
    if (!spawnRank(rank, rankEnvironment(shared, rank, options.ranks, options.addr, port), plan,
                   &process, &failure)) {
      fprintf(stderr, "chorusrun: %s\n", failure.message.c_str());
      int code = failure.execErrno == 0        ? kExitLauncherError
                 : failure.execErrno == ENOENT ? kExitNotFound
                                               : kExitCannotExecute;
      return Supervisor(std::move(ranks), &signals, &output, start, 0).stopEarly(code);
    }
    if (options.prefix) {
      output.add(process.outFd, rank, STDOUT_FILENO);
      output.add(process.errFd, rank, STDERR_FILENO);
    }
    ranks.push_back(process);
  }
  if (devNull >= 0) close(devNull);
  return Supervisor(std::move(ranks), &signals, &output, start, options.timeoutSeconds).run();
}
