// The wait loop behind FifoSender/FifoReceiver (see fifo_host.h).
#pragma once

#include <sched.h>

#include <string>

#include "common/cpu_hints.h"
#include "common/deadline.h"

namespace chorus {

// Sleeps on *word while it still equals `seen`, for at most `ms`.
void futexSleep(uint32_t* word, uint32_t seen, int ms);
// Wakes every thread asleep on *word (any process).
void futexWakeAll(uint32_t* word);
// A waited-for peer's failure, as an error with a message.
ncclResult_t waitFailure(const WaitContext& context, const char* what, bool timedOut);
// Why the peer of `context` will not take part again (its published
// failure, or "its process (pid N) has exited"); empty while it still may.
std::string peerLossReason(const WaitContext& context);
bool peerProcessGone(pid_t pid);
// Whether what a wait waits for may never come: this communicator aborted,
// the network link failed, or the peer failed, aborted or exited.
bool otherEndLost(const WaitContext& context);
// The same without probing the peer's process: only what is raised in
// memory (a dead process wakes no one, so this suffices before a sleep).
bool otherEndFlagged(const WaitContext& context);

template <typename Ready>
ncclResult_t waitUntil(uint32_t* word, uint32_t* sleepers, const WaitContext& context,
                       const char* what, Ready ready) {
  // Most waits end within a few hundred nanoseconds on an idle core.
  for (int i = 0; i < context.spins; ++i) {
    if (ready()) return ncclSuccess;
    cpuRelax();
  }
  // With more ranks than cores the peer may need our core: give it away a
  // few times, then sleep (many yielding waiters only pass the core around).
  // A yield can cost a whole time slice when busy processes share the
  // cores: at most kYieldingSeconds of them, so that abort and a dead peer
  // are still noticed within a sleep or two.
  constexpr double kYieldingSeconds = 0.05;
  constexpr int kYieldsPerClockCheck = 64;
  Deadline yielding = Deadline::after(kYieldingSeconds);
  for (int i = 0; i < context.yields; ++i) {
    if (ready()) return ncclSuccess;
    sched_yield();
    if (i % kYieldsPerClockCheck == kYieldsPerClockCheck - 1 && yielding.expired()) break;
  }
  Deadline deadline = Deadline::after(context.timeoutSeconds);
  for (;;) {
    uint32_t seen = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    __atomic_fetch_add(sleepers, 1, __ATOMIC_SEQ_CST);  // pairs with wakeSleepers' fence
    // A peer's failure does not change `word`: look for it before sleeping,
    // or a wake-up that came before the sleep would be lost for 100 ms.
    if (!ready() && !otherEndFlagged(context)) futexSleep(word, seen, 100);
    __atomic_fetch_sub(sleepers, 1, __ATOMIC_SEQ_CST);
    if (ready()) return ncclSuccess;
    // A peer publishes what it does before it fails, aborts or exits: what
    // it did is all there once that is seen.
    if (otherEndLost(context)) return ready() ? ncclSuccess : waitFailure(context, what, false);
    if (deadline.expired()) return waitFailure(context, what, true);
  }
}

}  // namespace chorus
