#include "supervisor.h"

#include <poll.h>
#include <sys/wait.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "exit_codes.h"

namespace chorus {
namespace launcher {
namespace {

const char* plural(int n) { return n == 1 ? "" : "s"; }

}  // namespace

Supervisor::Supervisor(std::vector<RankProcess> ranks, SignalWatch* signals,
                       PrefixedOutput* output, Clock::time_point start, double timeoutSeconds)
    : ranks_(std::move(ranks)), signals_(signals), output_(output),
      timeoutSeconds_(timeoutSeconds) {
  if (timeoutSeconds > 0)
    deadline_ = start + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(timeoutSeconds));
}

int Supervisor::stopEarly(int exitCode) {
  exitCode_ = exitCode;
  stop(SIGTERM);
  return run();
}

int Supervisor::run() {
  for (;;) {
    reap();
    Clock::time_point now = Clock::now();
    if (runningCount() == 0) {
      if (!drainUntil_) drainUntil_ = now + kDrain;
      if (!output_->anyOpen() || now >= *drainUntil_) break;
    } else {
      if (!stopping_ && deadline_ && now >= *deadline_) {
        if (exitCode_) {
          stopAt_ = now;  // a rank failed first: the stop is its, and so is the exit code
        } else {
          fprintf(stderr, "chorusrun: --timeout %g s reached; stopping %d running rank%s\n",
                  timeoutSeconds_, runningCount(), plural(runningCount()));
          timedOut_ = true;
          stop(SIGTERM);
        }
      }
      if (!stopping_ && stopAt_ && now >= *stopAt_) {
        fprintf(stderr, "chorusrun: stopping %d other rank%s\n", runningCount(),
                plural(runningCount()));
        stop(SIGTERM);
      }
      if (killAt_ && now >= *killAt_) {
        fprintf(stderr, "chorusrun: %d rank%s still running %lld s after being told to stop; "
                "sending SIGKILL\n", runningCount(), plural(runningCount()),
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::seconds>(kGrace).count()));
        signalAll(SIGKILL);
        killAt_.reset();
      }
    }
    std::vector<pollfd> fds{pollfd{signals_->fd(), POLLIN, 0}};
    output_->addPollFds(&fds);
    if (poll(fds.data(), fds.size(), pollTimeoutMs(Clock::now())) < 0 && errno != EINTR) {
      perror("chorusrun: poll");
      signalAll(SIGKILL);  // cannot supervise any more: leave nothing behind
      exitCode_ = exitCode_.value_or(kExitLauncherError);
      drainUntil_ = Clock::now();
      continue;
    }
    if (fds[0].revents != 0)
      for (int sig : signals_->take())
        if (sig != SIGCHLD) onSignal(sig);  // SIGCHLD: reap() at the top of the loop
    output_->service(fds);
  }
  output_->finish();
  if (timedOut_) return kExitTimeout;
  if (exitCode_) return *exitCode_;
  if (interruptedBy_ != 0) return kExitSignalBase + interruptedBy_;
  return 0;
}

void Supervisor::reap() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (RankProcess& rank : ranks_)
      if (rank.pid == pid && rank.running) onRankEnded(&rank, status);
  }
}

void Supervisor::onRankEnded(RankProcess* rank, int status) {
  rank->running = false;
  // Whatever the rank started in its group ends with it. Done right after
  // waitpid, while the group id cannot have been reused.
  kill(-rank->pid, SIGKILL);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (exitCode_ || timedOut_) return;  // a consequence of a stop already under way
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    fprintf(stderr, "chorusrun: rank %d killed by signal %d (%s)%s\n", rank->rank, sig,
            strsignal(sig), WCOREDUMP(status) ? ", core dumped" : "");
    exitCode_ = kExitSignalBase + sig;
  } else {
    fprintf(stderr, "chorusrun: rank %d exited with code %d\n", rank->rank,
            WEXITSTATUS(status));
    exitCode_ = WEXITSTATUS(status);
  }
  if (!stopping_ && !stopAt_) stopAt_ = Clock::now() + kSettle;
}

void Supervisor::onSignal(int sig) {
  int running = runningCount();
  if (running == 0) return;
  if (stopping_) {  // a second signal, or one during a stop: no more grace
    fprintf(stderr, "chorusrun: got %s while stopping; sending SIGKILL to %d rank%s\n",
            strsignal(sig), running, plural(running));
    signalAll(SIGKILL);
    killAt_.reset();
    return;
  }
  fprintf(stderr, "chorusrun: got signal %d (%s); forwarding it to %d rank%s\n", sig,
          strsignal(sig), running, plural(running));
  interruptedBy_ = sig;
  stop(sig);
}

void Supervisor::stop(int sig) {
  stopping_ = true;
  signalAll(sig);
  if (!killAt_) killAt_ = Clock::now() + kGrace;
}

void Supervisor::signalAll(int sig) {
  for (const RankProcess& rank : ranks_) {
    if (!rank.running) continue;
    // The group reaches what the rank started; the pid alone covers a rank
    // that moved to another group. Never both: a program may count signals
    // (a second SIGINT often means "quit now").
    if (kill(-rank.pid, sig) != 0) kill(rank.pid, sig);
  }
}

int Supervisor::runningCount() const {
  int n = 0;
  for (const RankProcess& rank : ranks_) n += rank.running ? 1 : 0;
  return n;
}

int Supervisor::pollTimeoutMs(Clock::time_point now) const {
  std::optional<Clock::time_point> next;
  auto consider = [&](const std::optional<Clock::time_point>& t) {
    if (t && (!next || *t < *next)) next = t;
  };
  if (!stopping_ && runningCount() > 0) {
    consider(deadline_);
    consider(stopAt_);
  }
  consider(killAt_);
  consider(drainUntil_);
  if (!next) return -1;
  if (*next <= now) return 0;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*next - now).count() + 1;
  return static_cast<int>(ms);
}

}  // namespace launcher
}  // namespace chorus
