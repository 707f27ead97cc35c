#include "transport/fifo_host.h"

#include <linux/futex.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <string>
#include <cstdio>

#include "common/result.h"

namespace chorus {

void futexSleep(uint32_t* word, uint32_t seen, int ms) {
  timespec timeout{ms / 1000, (ms % 1000) * 1000000L};
  // Not FUTEX_PRIVATE: the word may live in memory shared with another process.
  syscall(SYS_futex, word, FUTEX_WAIT, seen, &timeout, nullptr, 0);
}

void futexWakeAll(uint32_t* word) {
  syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void wakeSleepers(uint32_t* word, uint32_t* sleepers) {
  // The counter store before this fence pairs with the sleeper's increment
  // before its re-check: one of the two sides always sees the other.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (__atomic_load_n(sleepers, __ATOMIC_RELAXED) != 0)
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

bool peerProcessGone(pid_t pid) {
  if (pid <= 0 || pid == getpid()) return false;
  return kill(pid, 0) != 0 && errno == ESRCH;
}

bool publishPeerFailure(PeerFailure* failure, ncclResult_t result, const char* reason) {
  uint32_t unclaimed = 0;
  if (!__atomic_compare_exchange_n(&failure->claimed, &unclaimed, 1, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    return false;
  snprintf(failure->reason, sizeof failure->reason, "%s", reason);
  __atomic_store_n(&failure->result, static_cast<uint32_t>(result), __ATOMIC_RELEASE);
  return true;
}

bool otherEndFlagged(const WaitContext& context) {
  return (context.abort && context.abort->load(std::memory_order_relaxed)) ||
         (context.link && context.link->raised.load(std::memory_order_acquire)) ||
         peerHasFailed(context.peerFailure) || peerHasFailed(context.endFailure);
}

bool otherEndLost(const WaitContext& context) {
  return otherEndFlagged(context) || peerProcessGone(context.peerPid);
}

std::string peerLossReason(const WaitContext& context) {
  for (const PeerFailure* failure : {context.peerFailure, context.endFailure})
    if (peerHasFailed(failure)) return failure->reason;
  if (peerProcessGone(context.peerPid))
    return "its process (pid " + std::to_string(static_cast<int>(context.peerPid)) + ") has exited";
  return {};
}

ncclResult_t waitFailure(const WaitContext& context, const char* what, bool timedOut) {
  if (context.abort && context.abort->load())
    CHORUS_FAIL(ncclSystemError, "rank %d: %s rank %d: communicator aborted", context.selfRank,
                what, context.peerRank);
  // Pairs with the release store in raiseLinkFailure: the reason is complete.
  if (context.link && context.link->raised.load(std::memory_order_acquire))
    CHORUS_FAIL(ncclRemoteError, "rank %d: %s rank %d: %s", context.selfRank, what,
                context.peerRank, context.link->reason);
  const std::string reason = peerLossReason(context);
  if (!reason.empty() || !timedOut)
    CHORUS_FAIL(ncclRemoteError, "rank %d: %s rank %d: %s", context.selfRank, what,
                context.peerRank, reason.empty() ? "lost" : reason.c_str());
  CHORUS_FAIL(ncclSystemError, "rank %d: %s rank %d: no progress in %.0f s (CHORUS_TIMEOUT)",
              context.selfRank, what, context.peerRank, context.timeoutSeconds);
}

ncclResult_t FifoSender::acquire(char** slot) {
  FifoControl* c = fifo_.control;
  uint32_t step = step_;
  // Free when fewer than kSteps published slots are still unconsumed.
  auto free = [c, step] { return step - __atomic_load_n(&c->head, __ATOMIC_ACQUIRE) < kSteps; };
  if (!free()) CHORUS_CHECK(waitUntil(&c->head, &c->headSleepers, context_, "sending to", free));
  *slot = fifo_.slot(step_);
  return ncclSuccess;
}

bool FifoSender::tryAcquire(char** slot) {
  FifoControl* c = fifo_.control;
  if (step_ - __atomic_load_n(&c->head, __ATOMIC_ACQUIRE) >= kSteps) return false;
  *slot = fifo_.slot(step_);
  return true;
}

bool FifoSender::otherEndLost() const { return chorus::otherEndLost(context_); }
ncclResult_t FifoSender::otherEndFailure() const {
  return waitFailure(context_, "sending to", false);
}

namespace {

// Publishes one end's failure and wakes whoever sleeps on either counter.
void markEndFailed(FifoControl* c, PeerFailure* end, ncclResult_t result, const char* reason) {
  if (!publishPeerFailure(end, result, reason)) return;
  wakeSleepers(&c->tail, &c->tailSleepers);
  wakeSleepers(&c->head, &c->headSleepers);
}

}  // namespace

void FifoSender::markFailed(ncclResult_t result, const char* reason) {
  if (fifo_.control) markEndFailed(fifo_.control, &fifo_.control->senderFailure, result, reason);
}

void FifoReceiver::markFailed(ncclResult_t result, const char* reason) {
  if (fifo_.control) markEndFailed(fifo_.control, &fifo_.control->receiverFailure, result, reason);
}

void FifoSender::publish(uint32_t bytes) {
  FifoControl* c = fifo_.control;
  c->sizes[step_ % kSteps] = bytes;
  ++step_;
  __atomic_store_n(&c->tail, step_, __ATOMIC_RELEASE);  // pairs with the receiver's acquire of tail
  wakeSleepers(&c->tail, &c->tailSleepers);
  if (context_.notifyFd >= 0) eventfd_write(context_.notifyFd, 1);
}

ncclResult_t FifoReceiver::wait(const char** data, uint32_t* bytes) {
  FifoControl* c = fifo_.control;
  uint32_t step = step_;
  auto ready = [c, step] { return __atomic_load_n(&c->tail, __ATOMIC_ACQUIRE) != step; };
  if (!ready())
    CHORUS_CHECK(waitUntil(&c->tail, &c->tailSleepers, context_, "receiving from", ready));
  *data = fifo_.slot(step_);
  *bytes = c->sizes[step_ % kSteps];
  return ncclSuccess;
}

bool FifoReceiver::tryWait(const char** data, uint32_t* bytes) {
  FifoControl* c = fifo_.control;
  if (__atomic_load_n(&c->tail, __ATOMIC_ACQUIRE) == step_) return false;
  *data = fifo_.slot(step_);
  *bytes = c->sizes[step_ % kSteps];
  return true;
}

bool FifoReceiver::otherEndLost() const { return chorus::otherEndLost(context_); }
ncclResult_t FifoReceiver::otherEndFailure() const {
  return waitFailure(context_, "receiving from", false);
}

void FifoReceiver::release() {
  FifoControl* c = fifo_.control;
  ++step_;
  __atomic_store_n(&c->head, step_, __ATOMIC_RELEASE);  // pairs with the sender's acquire of head
  wakeSleepers(&c->head, &c->headSleepers);
  if (context_.notifyFd >= 0) eventfd_write(context_.notifyFd, 1);
}

}  // namespace chorus
