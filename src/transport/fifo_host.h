// Host-side ends of a FIFO (fifo.h): the sender fills and publishes slots,
// the receiver waits for, reads and releases them.
//
// Waiting spins (briefly unless told otherwise), then yields, then sleeps on a futex on the counter
// it waits for, so that more ranks than cores still make progress. While
// asleep it wakes every 100 ms to check the abort flag, the deadline
// (CHORUS_TIMEOUT), for a peer in another process on this host, whether
// that process still exists, for a peer on this host, whether its
// communicator has failed, and, for a FIFO whose other end is a network
// proxy (socket transport), whether that proxy's connection failed: a dead
// or failed peer or a failed connection becomes ncclRemoteError.
#pragma once

#include <atomic>
#include <cstdint>
#include <sys/types.h>

#include "nccl.h"
#include "transport/fifo.h"

namespace chorus {

// Raised by a proxy thread that drives this FIFO's other end over a network
// (transport/fifo_remote.h) when that connection fails, so that a rank
// waiting here ends at once with the reason instead of at the deadline.
struct LinkFailure {
  std::atomic<bool> raised{false};  // release-stored after `reason` is written
  char reason[256] = {};            // read only after `raised` is seen (acquire)
};

// Whether `failure` has been published (acquire: its reason is complete).
inline bool peerHasFailed(const PeerFailure* failure) {
  return failure != nullptr && __atomic_load_n(&failure->result, __ATOMIC_ACQUIRE) != 0;
}

// Publishes a failure in `failure` (the first one only) with its reason.
// Returns whether this call published it.
bool publishPeerFailure(PeerFailure* failure, ncclResult_t result, const char* reason);

// What a wait needs to end in a useful error instead of a hang.
struct WaitContext {
  const std::atomic<bool>* abort = nullptr;
  double timeoutSeconds = 60;
  int selfRank = -1;
  int peerRank = -1;
  pid_t peerPid = 0;  // 0: do not probe (same process, another host or pid namespace)
  // An eventfd to write after each publish/release, for a proxy thread that
  // drives this FIFO's other end and waits in poll() (-1: none).
  int notifyFd = -1;
  // The network connection behind this FIFO, when there is one (null: none).
  const LinkFailure* link = nullptr;
  // What the peer publishes when its communicator fails: in its arena slot
  // (same host, where the ranks share an arena) and in its end of this FIFO
  // (shared memory); null: none.
  const PeerFailure* peerFailure = nullptr;
  const PeerFailure* endFailure = nullptr;
  // Polls before the first yield, then yields before sleeping: few by
  // default; more where waits are expected to be short, so that a wait ends
  // without a futex wake-up (several microseconds on a VM). Yielding, not
  // spinning, keeps a waiter from holding a core its peer needs.
  int spins = 256;
  int yields = 4;
};

class FifoSender {
 public:
  FifoSender() = default;
  FifoSender(FifoView fifo, WaitContext context) : fifo_(fifo), context_(context) {}

  // Waits for a free slot and returns it.
  ncclResult_t acquire(char** slot);
  // A free slot if there is one now.
  bool tryAcquire(char** slot);
  // Publishes the slot from the last acquire, holding `bytes`.
  void publish(uint32_t bytes);
  // For callers that poll with tryAcquire: whether the receiver may never
  // free a slot again (otherEndLost), and then the error acquire would end in.
  bool otherEndLost() const;
  ncclResult_t otherEndFailure() const;
  // This end will not be used again (its communicator failed): publishes
  // `reason` in the control block, where a receiver on this host that
  // watches it (shared memory) reads it, and wakes that receiver.
  void markFailed(ncclResult_t result, const char* reason);
  size_t slotSize() const { return fifo_.slotSize; }
  bool connected() const { return fifo_.control != nullptr; }
  // True once the receiving side has consumed every published slot.
  bool drained() const {
    return fifo_.control == nullptr ||
           __atomic_load_n(&fifo_.control->head, __ATOMIC_ACQUIRE) == step_;  // pairs with release()
  }

 private:
  FifoView fifo_;
  WaitContext context_;
  uint32_t step_ = 0;
};

class FifoReceiver {
 public:
  FifoReceiver() = default;
  FifoReceiver(FifoView fifo, WaitContext context) : fifo_(fifo), context_(context) {}

  // Waits for the next published slot and returns it with its byte count.
  ncclResult_t wait(const char** data, uint32_t* bytes);
  bool tryWait(const char** data, uint32_t* bytes);
  // Hands the slot from the last wait back to the sender.
  void release();
  // For callers that poll with tryWait: as FifoSender's.
  bool otherEndLost() const;
  ncclResult_t otherEndFailure() const;
  // As FifoSender's, for the sender.
  void markFailed(ncclResult_t result, const char* reason);
  size_t slotSize() const { return fifo_.slotSize; }
  bool connected() const { return fifo_.control != nullptr; }

 private:
  FifoView fifo_;
  WaitContext context_;
  uint32_t step_ = 0;
};

// Spin, yield, then futex-sleep until `ready()`; shared by both ends and by
// the socket proxy. `word` is the counter the other side bumps and wakes.
template <typename Ready>
ncclResult_t waitUntil(uint32_t* word, uint32_t* sleepers, const WaitContext& context,
                       const char* what, Ready ready);

// Wakes whoever sleeps on `word` (after it was stored).
void wakeSleepers(uint32_t* word, uint32_t* sleepers);

}  // namespace chorus

#include "transport/fifo_host_wait.h"
