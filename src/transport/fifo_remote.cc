#include "transport/fifo_remote.h"

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace chorus {
namespace {

// Moves *counter forward to `step` unless it is already there or past it
// (compared with wrap-around). Only proxy threads write this counter, and a
// proxy thread that finished its stripe late may offer an older step than
// another one already stored. Release on success: everything this thread
// (and, through the per-socket acquire loads of the caller, every other
// proxy thread) did to the slots before `step` is visible to the rank that
// acquires the counter.
bool advanceTo(uint32_t* counter, uint32_t step) {
  uint32_t current = __atomic_load_n(counter, __ATOMIC_RELAXED);
  while (static_cast<int32_t>(step - current) > 0) {
    if (__atomic_compare_exchange_n(counter, &current, step, /*weak=*/false, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED))
      return true;
  }
  return false;
}

}  // namespace

uint32_t FifoRemoteReceiver::published() const {
  // Acquire: pairs with the release store of tail in FifoSender::publish, so
  // the slot bytes and sizes[] of every step before it are visible.
  return __atomic_load_n(&fifo_.control->tail, __ATOMIC_ACQUIRE);
}

void FifoRemoteReceiver::releaseUpTo(uint32_t step) {
  // Release (in advanceTo): pairs with the acquire load of head in
  // FifoSender::acquire/tryAcquire, so our send() calls have finished
  // reading a slot before the rank overwrites it.
  if (advanceTo(&fifo_.control->head, step))
    wakeSleepers(&fifo_.control->head, &fifo_.control->headSleepers);
}

bool FifoRemoteSender::slotFree(uint32_t step) const {
  // Acquire: pairs with the release store of head in FifoReceiver::release,
  // so the rank has finished reading slot `step - kSteps` before our recv()
  // calls overwrite it.
  return step - __atomic_load_n(&fifo_.control->head, __ATOMIC_ACQUIRE) < kSteps;
}

void FifoRemoteSender::publishUpTo(uint32_t step) {
  // Release (in advanceTo): pairs with the acquire load of tail in
  // FifoReceiver::wait/tryWait, so the received bytes and sizes[] of every
  // step before it are visible to the rank.
  if (advanceTo(&fifo_.control->tail, step))
    wakeSleepers(&fifo_.control->tail, &fifo_.control->tailSleepers);
}

bool raiseLinkFailure(FifoView fifo, LinkFailure* failure, const char* fmt, ...) {
  // Several proxy threads may find the same failure; one writes the reason.
  static std::mutex mutex;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (failure->raised.load(std::memory_order_relaxed)) return false;
    va_list args;
    va_start(args, fmt);
    vsnprintf(failure->reason, sizeof(failure->reason), fmt, args);
    va_end(args);
    // Release: pairs with the acquire loads in waitUntil and waitFailure, so
    // a rank that sees the flag reads the whole reason.
    failure->raised.store(true, std::memory_order_release);
  }
  // The rank may sleep on either counter (sending: head; receiving: tail);
  // wake it so that it sees the flag now rather than at its next 100 ms check.
  wakeSleepers(&fifo.control->head, &fifo.control->headSleepers);
  wakeSleepers(&fifo.control->tail, &fifo.control->tailSleepers);
  return true;
}

}  // namespace chorus
