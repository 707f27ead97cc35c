// The loop that watches the running ranks until the last one is gone: it
// reaps them, forwards chorusrun's signals, enforces --timeout, stops every
// rank when one fails (after a moment in which the others may end on their
// own; then SIGTERM, and SIGKILL after a grace period) and decides
// chorusrun's exit code.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "prefixed_output.h"
#include "signals.h"
#include "spawn.h"

namespace chorus {
namespace launcher {

class Supervisor {
 public:
  using Clock = std::chrono::steady_clock;
  // How long ranks have between SIGTERM (or a forwarded signal) and SIGKILL.
  static constexpr std::chrono::milliseconds kGrace{3000};

  // After a rank fails, how long the others may take to end by themselves
  // before they are stopped: they usually fail too (the peer is gone, or the
  // error was collective), and a benchmark's rank 0 is then still printing
  // its summary and writing its results.
  static constexpr std::chrono::milliseconds kSettle{1000};

  // After all ranks are gone, how long output still left in the pipes may take.
  static constexpr std::chrono::milliseconds kDrain{500};

  // `timeoutSeconds` (0: none) counts from `start`.
  Supervisor(std::vector<RankProcess> ranks, SignalWatch* signals, PrefixedOutput* output,
             Clock::time_point start, double timeoutSeconds);

  // Runs until every rank is reaped; returns chorusrun's exit code.
  int run();
  // For a job that cannot start fully (a later rank failed to exec): stops the
  // ranks already running, then returns `exitCode` once they are gone.
  int stopEarly(int exitCode);

 private:
  void reap();
  void onRankEnded(RankProcess* rank, int status);
  void onSignal(int sig);
  void stop(int sig);       // signal every running rank, SIGKILL after kGrace
  void signalAll(int sig);  // to the process group of every running rank
  int runningCount() const;
  int pollTimeoutMs(Clock::time_point now) const;

  std::vector<RankProcess> ranks_;
  SignalWatch* signals_;
  PrefixedOutput* output_;
  double timeoutSeconds_;
  std::optional<Clock::time_point> deadline_;   // --timeout
  std::optional<Clock::time_point> stopAt_;     // a rank failed: stop the others then
  std::optional<Clock::time_point> killAt_;     // SIGKILL when a stop's grace ends
  std::optional<Clock::time_point> drainUntil_; // last ranks gone: output has this long
  bool stopping_ = false;
  bool timedOut_ = false;
  int interruptedBy_ = 0;          // signal chorusrun got and forwarded
  std::optional<int> exitCode_;    // from the first rank that failed
};

}  // namespace launcher
}  // namespace chorus
