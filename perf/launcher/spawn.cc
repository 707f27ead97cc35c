#include "spawn.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "exit_codes.h"

namespace chorus {
namespace launcher {
namespace {

// A pipe whose ends close themselves unless released.
struct Pipe {
  int read = -1;
  int write = -1;
  ~Pipe() {
    if (read >= 0) close(read);
    if (write >= 0) close(write);
  }
  bool open(std::string* error) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      *error = std::string("pipe: ") + strerror(errno);
      return false;
    }
    read = fds[0];
    write = fds[1];
    return true;
  }
  int releaseRead() {
    int fd = read;
    read = -1;
    return fd;
  }
  void closeWrite() {
    close(write);
    write = -1;
  }
};

std::vector<char*> pointersTo(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (const std::string& s : strings) pointers.push_back(const_cast<char*>(s.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

// After fork, in the child: only async-signal-safe calls until exec.
[[noreturn]] void becomeRank(const SpawnPlan& plan, pid_t launcher, char** argv, char** envp,
                             const Pipe& out, const Pipe& err, const Pipe& execStatus) {
  plan.signals->restoreInChild();
  setpgid(0, 0);  // its own group: signals reach whatever the rank starts, too
  // Dies with chorusrun even when chorusrun is SIGKILLed and cannot clean up;
  // the getppid check covers a launcher that died before the prctl.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != launcher) _exit(kExitLauncherError);
  if (plan.stdinFd >= 0) dup2(plan.stdinFd, STDIN_FILENO);
  if (plan.captureOutput) {
    dup2(out.write, STDOUT_FILENO);
    dup2(err.write, STDERR_FILENO);
  }
  execvpe(argv[0], argv, envp);
  int error = errno;
  ssize_t ignored = write(execStatus.write, &error, sizeof(error));
  (void)ignored;
  _exit(error == ENOENT ? kExitNotFound : kExitCannotExecute);
}

}  // namespace

bool spawnRank(int rank, const std::vector<std::string>& env, const SpawnPlan& plan,
               RankProcess* out, SpawnFailure* failure) {
  Pipe stdoutPipe, stderrPipe, execStatus;
  if (!execStatus.open(&failure->message)) return false;
  if (plan.captureOutput &&
      (!stdoutPipe.open(&failure->message) || !stderrPipe.open(&failure->message)))
    return false;
  std::vector<char*> argv = pointersTo(plan.command);
  std::vector<char*> envp = pointersTo(env);
  pid_t launcher = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    failure->message = std::string("fork: ") + strerror(errno);
    return false;
  }
  if (pid == 0) becomeRank(plan, launcher, argv.data(), envp.data(), stdoutPipe, stderrPipe,
                           execStatus);
  setpgid(pid, pid);  // also here, so the group exists before we might signal it
  execStatus.closeWrite();
  int execErrno = 0;
  ssize_t n;
  do n = read(execStatus.read, &execErrno, sizeof(execErrno));
  while (n < 0 && errno == EINTR);
  if (n > 0) {  // exec failed; a successful exec closes the pipe with nothing written
    waitpid(pid, nullptr, 0);
    failure->execErrno = execErrno;
    failure->message = "cannot execute '" + plan.command[0] + "': " + strerror(execErrno);
    if (execErrno == ENOENT && plan.command[0].find('/') == std::string::npos)
      failure->message += " (not found in PATH)";
    return false;
  }
  out->rank = rank;
  out->pid = pid;
  out->running = true;
  if (plan.captureOutput) {
    out->outFd = stdoutPipe.releaseRead();
    out->errFd = stderrPipe.releaseRead();
    fcntl(out->outFd, F_SETFL, O_NONBLOCK);
    fcntl(out->errFd, F_SETFL, O_NONBLOCK);
  }
  return true;
}

}  // namespace launcher
}  // namespace chorus
