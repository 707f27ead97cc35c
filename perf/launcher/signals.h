// The signals chorusrun acts on, read from a signalfd in its poll loop so that
// no work happens in a signal handler: SIGCHLD (a rank ended) and SIGINT,
// SIGTERM, SIGHUP (forwarded to the ranks). A signal that was ignored when
// chorusrun started (as `&` does to SIGINT in a script, or nohup to SIGHUP)
// stays ignored, for chorusrun and for the ranks.
#pragma once

#include <signal.h>

#include <string>
#include <vector>

namespace chorus {
namespace launcher {

class SignalWatch {
 public:
  SignalWatch() = default;
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;
  ~SignalWatch();

  // Blocks the signals and opens the signalfd; also ignores SIGPIPE, so that
  // writing to a closed stdout is an error chorusrun can handle.
  bool start(std::string* error);
  int fd() const { return fd_; }
  // The signals that arrived since the last call, in order.
  std::vector<int> take();
  // In a forked child, before exec: the signal mask and the SIGPIPE action
  // chorusrun started with. Async-signal-safe.
  void restoreInChild() const;

 private:
  int fd_ = -1;
  sigset_t originalMask_{};
  struct sigaction originalPipe_ {};
};

}  // namespace launcher
}  // namespace chorus
