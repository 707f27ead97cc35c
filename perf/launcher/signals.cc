#include "signals.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace chorus {
namespace launcher {

SignalWatch::~SignalWatch() {
  if (fd_ >= 0) close(fd_);
}

bool SignalWatch::start(std::string* error) {
  sigset_t watched;
  sigemptyset(&watched);
  sigaddset(&watched, SIGCHLD);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction current {};
    sigaction(sig, nullptr, &current);
    // A blocked signal is queued even when its action is SIG_IGN, so an
    // ignored one must stay out of the set to stay ignored.
    if (current.sa_handler != SIG_IGN) sigaddset(&watched, sig);
  }
  if (sigprocmask(SIG_BLOCK, &watched, &originalMask_) != 0) {
    *error = std::string("sigprocmask: ") + strerror(errno);
    return false;
  }
  fd_ = signalfd(-1, &watched, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd_ < 0) {
    *error = std::string("signalfd: ") + strerror(errno);
    return false;
  }
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, &originalPipe_);
  return true;
}

std::vector<int> SignalWatch::take() {
  std::vector<int> signals;
  signalfd_siginfo info;
  while (read(fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info)))
    signals.push_back(static_cast<int>(info.ssi_signo));
  return signals;
}

void SignalWatch::restoreInChild() const {
  sigaction(SIGPIPE, &originalPipe_, nullptr);
  sigprocmask(SIG_SETMASK, &originalMask_, nullptr);
}

}  // namespace launcher
}  // namespace chorus
