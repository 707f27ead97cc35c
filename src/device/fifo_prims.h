// The primitives of algorithm_common.h for algorithms that run inside a
// kernel: one thread block per channel moves its slice through FIFOs in
// memory both ranks' kernels reach (the receiver's GPU memory, mapped by the
// sender through CUDA IPC), with no host thread in the data path. This is
// NCCL's Simple protocol: a slot's data, then a counter that says it is there.
//
// Written once for the GPU and the CPU: `Block` supplies what differs (a
// CUDA thread block, or one host thread in tests/multirank/fifo_prims_test.cc,
// which runs every ring collective through these primitives):
//   bool leader()                          the thread that waits and signals
//   uint64_t load(const uint64_t*)         acquire load of a counter another agent stores
//   void store(uint64_t*, uint64_t)        release store of a counter (leader only)
//   uint32_t load32(const uint32_t*)       acquire load of a slot's size word
//   void store32(uint32_t*, uint32_t)      release store of a slot's size word (leader only)
//   void release()                         every thread's writes out before the leader signals
//   void sync()                            block barrier
//   void share(T*)                         the leader's *value to every thread (ends in sync)
//   bool aborted()                         give up waiting (abort flag, or a deadline on the host)
//   void pause()                           a short back-off between polls
//   void copy(const void*, void*, size_t bytes)          this block's copy (all threads)
//   void reduceCopy(op, peer, local, pre, dst, post, n)  reduceCopy.h's contract (all threads)
// Collectives that only move data must be given a Sum (as the API gives
// them): copy() applies the operator's pre and post steps on one rank.
#pragma once

#include <cstddef>
#include <cstdint>

#include "collectives/algorithm_common.h"
#include "collectives/reduce_ops.h"

namespace chorus {

// One direction of a ring link: nSlots (at least 2: a rank holds the slot
// it received while it waits for one to send into) slots of slotBytes
// (at least one element), and two monotonic counters. Both ranks' views hold the same memory (each through
// its own address space); the counters never go back, so an operation starts
// where the last one ended, in a new kernel or a replayed graph alike.
struct DeviceFifo {
  char* slots;      // nSlots * slotBytes, in the receiver's memory
  uint32_t* sizes;  // bytes in each slot, next to the slots
  uint64_t* tail;   // slots published: stored by the sender, polled by the receiver (its memory)
  uint64_t* head;   // slots released: stored by the receiver, polled by the sender (its memory)
  uint32_t nSlots;
  uint32_t slotBytes;
  // The LL protocol's slots (device/fifo_ll_prims.h), in the receiver's
  // memory: nSlots of llLinesPerSlot 16-byte lines; a slot carries
  // (llLinesPerSlot - 1) * 8 bytes. Null where the LL protocol is not used.
  uint64_t* llLines;
  uint32_t llLinesPerSlot;
};

// What both protocols do alike with a FIFO's counters.
//
// Where the last operation left them: the steps sent on `toNext` and
// received on `fromPrev` (0 for a missing link). Only one block moves them
// (one block per channel), so they are read once per operation.
template <typename Block>
CHORUS_HOST_DEVICE void readCounters(Block& block, const DeviceFifo* toNext,
                                     const DeviceFifo* fromPrev, uint64_t* sent,
                                     uint64_t* received) {
  uint64_t counters[2] = {0, 0};
  if (block.leader()) {
    if (toNext) counters[0] = block.load(toNext->tail);
    if (fromPrev) counters[1] = block.load(fromPrev->head);
  }
  block.share(&counters);
  *sent = counters[0];
  *received = counters[1];
}

// Waits until step `sent` of `fifo` has a free slot: ncclSuccess, or
// ncclSystemError on abort, on every thread (the leader waits; a barrier).
template <typename Block>
CHORUS_HOST_DEVICE ncclResult_t waitForFreeSlot(Block& block, const DeviceFifo& fifo,
                                                uint64_t sent) {
  ncclResult_t result = ncclSuccess;
  if (block.leader()) {
    // Acquire: pairs with the receiver's release store of head once its
    // block had read the slot, so this block's writes cannot overtake its
    // reads.
    while (block.load(fifo.head) + fifo.nSlots <= sent) {
      if (block.aborted()) {
        result = ncclSystemError;
        break;
      }
      block.pause();
    }
  }
  block.share(&result);
  return result;
}

template <typename Block>
class FifoPrims {
 public:
  // `toNext`/`fromPrev` may be null where the ring has one rank.
  CHORUS_HOST_DEVICE FifoPrims(Block& block, const DeviceFifo* toNext, const DeviceFifo* fromPrev,
                               const void* input, void* output, const RedOpArgs& op,
                               size_t elemSize)
      : block_(block),
        toNext_(toNext),
        fromPrev_(fromPrev),
        input_(static_cast<const char*>(input)),
        output_(static_cast<char*>(output)),
        op_(op),
        elemSize_(elemSize) {
    const DeviceFifo* any = toNext ? toNext : fromPrev;
    slotElems_ = any ? any->slotBytes / elemSize : 0;
    readCounters(block_, toNext_, fromPrev_, &sent_, &received_);
    // Chunks of no element would never advance the algorithms' loops.
    if (any != nullptr && (slotElems_ == 0 || any->nSlots < 2)) status_ = ncclInternalError;
  }

  // Elements that fit one slot: the chunk the ring algorithms ask for.
  CHORUS_HOST_DEVICE size_t slotElems() const { return slotElems_; }
  // ncclSuccess, or why the block stopped (abort, a size that does not match).
  CHORUS_HOST_DEVICE ncclResult_t status() const { return status_; }
  // Nothing to do at the end of an operation: every publish stored the tail.
  CHORUS_HOST_DEVICE void finish() {}

  CHORUS_HOST_DEVICE ncclResult_t send(size_t src, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      char* slot = acquireSlot();
      if (!slot) break;
      block_.reduceCopy(op_, nullptr, in(src + i), true, slot, false, m);
      publish(m * elemSize_);
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t recv(size_t dst, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      const char* data = receive(m * elemSize_);
      if (!data) break;
      block_.copy(data, out(dst + i), m * elemSize_);
      releaseSlot();
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t recvReduceSend(size_t src, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      const char* data = receive(m * elemSize_);
      char* slot = data ? acquireSlot() : nullptr;
      if (!slot) break;
      block_.reduceCopy(op_, data, in(src + i), true, slot, false, m);
      publish(m * elemSize_);
      releaseSlot();
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t recvReduceCopy(size_t src, size_t dst, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      const char* data = receive(m * elemSize_);
      if (!data) break;
      block_.reduceCopy(op_, data, in(src + i), true, out(dst + i), true, m);
      releaseSlot();
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t recvReduceCopySend(size_t src, size_t dst, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      const char* data = receive(m * elemSize_);
      char* slot = data ? acquireSlot() : nullptr;
      if (!slot) break;
      // Reduce once into the output, then copy the finished values on (the
      // slot may be in another GPU's memory: not read back from there); the
      // barrier between, since the copy's threads read what other threads
      // of the reduction wrote.
      block_.reduceCopy(op_, data, in(src + i), true, out(dst + i), true, m);
      block_.sync();
      block_.copy(out(dst + i), slot, m * elemSize_);
      publish(m * elemSize_);
      releaseSlot();
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t recvCopySend(size_t dst, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      const char* data = receive(m * elemSize_);
      char* slot = data ? acquireSlot() : nullptr;
      if (!slot) break;
      block_.copy(data, slot, m * elemSize_);
      block_.copy(data, out(dst + i), m * elemSize_);
      publish(m * elemSize_);
      releaseSlot();
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t copySend(size_t src, size_t dst, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      char* slot = acquireSlot();
      if (!slot) break;
      block_.copy(in(src + i), slot, m * elemSize_);
      if (in(src + i) != out(dst + i)) block_.copy(in(src + i), out(dst + i), m * elemSize_);
      publish(m * elemSize_);
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t copy(size_t src, size_t dst, size_t n) {
    if (n > 0 && status_ == ncclSuccess) {
      block_.reduceCopy(op_, nullptr, in(src), true, out(dst), true, n);
      block_.sync();
    }
    return status_;
  }

 private:
  CHORUS_HOST_DEVICE const char* in(size_t element) const { return input_ + element * elemSize_; }
  CHORUS_HOST_DEVICE char* out(size_t element) const { return output_ + element * elemSize_; }

  // Waits until the next outgoing slot is free; null when the block stops.
  CHORUS_HOST_DEVICE char* acquireSlot() {
    if (toNext_ == nullptr || slotElems_ == 0) return stop(ncclInternalError);
    const ncclResult_t result = waitForFreeSlot(block_, *toNext_, sent_);
    if (result != ncclSuccess) return stop(result);
    return toNext_->slots + (sent_ % toNext_->nSlots) * toNext_->slotBytes;
  }

  // Makes the slot acquireSlot gave visible to the receiver.
  CHORUS_HOST_DEVICE void publish(size_t bytes) {
    block_.release();
    block_.sync();
    if (block_.leader()) {
      block_.store32(&toNext_->sizes[sent_ % toNext_->nSlots], static_cast<uint32_t>(bytes));
      // Release: pairs with the receiver's acquire load of tail in receive().
      block_.store(toNext_->tail, sent_ + 1);
    }
    ++sent_;
  }

  // Waits for the next incoming slot and checks it holds `bytes`; null when
  // the block stops.
  CHORUS_HOST_DEVICE const char* receive(size_t bytes) {
    if (fromPrev_ == nullptr || slotElems_ == 0) return stop(ncclInternalError);
    ncclResult_t result = ncclSuccess;
    if (block_.leader()) {
      // Acquire: pairs with the sender's release store of tail in publish().
      while (block_.load(fromPrev_->tail) <= received_) {
        if (block_.aborted()) {
          result = ncclSystemError;
          break;
        }
        block_.pause();
      }
      if (result == ncclSuccess &&
          block_.load32(&fromPrev_->sizes[received_ % fromPrev_->nSlots]) != bytes)
        result = ncclInvalidUsage;  // the ranks called different collectives
    }
    block_.share(&result);
    if (result != ncclSuccess) return stop(result);
    return fromPrev_->slots + (received_ % fromPrev_->nSlots) * fromPrev_->slotBytes;
  }

  // Hands the slot receive() gave back to the sender once every thread has
  // read it.
  CHORUS_HOST_DEVICE void releaseSlot() {
    block_.sync();
    // Release: pairs with the sender's acquire load of head in acquireSlot().
    if (block_.leader()) block_.store(fromPrev_->head, received_ + 1);
    ++received_;
  }

  CHORUS_HOST_DEVICE char* stop(ncclResult_t result) {
    status_ = result;
    return nullptr;
  }

  Block& block_;
  const DeviceFifo* toNext_;
  const DeviceFifo* fromPrev_;
  const char* input_;
  char* output_;
  RedOpArgs op_;
  size_t elemSize_;
  size_t slotElems_;
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
  ncclResult_t status_ = ncclSuccess;
};

}  // namespace chorus
