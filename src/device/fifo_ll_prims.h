// The primitives of algorithm_common.h for small messages inside a kernel:
// NCCL's LL (low-latency) protocol over the same FIFOs and counters as
// FifoPrims (device/fifo_prims.h), with slots of their own (DeviceFifo's
// llLines).
//
// Every 16-byte line carries 8 bytes of data as two (4 bytes of data, 4-byte
// flag) halves, each stored at once; the flag is the step's number. A
// receiver's threads poll their own lines until both flags show the step,
// so data and "it is there" arrive together: no fence, no tail to wait for,
// no barrier before the data is read. Line 0 of a slot carries its byte
// count (what the ranks agreed on is checked, as FifoPrims does). Flags
// only grow (the step counters never go back), so what an older step left
// in a slot is never taken for new data. Heads still free slots, as in
// FifoPrims; the tail is stored once, by finish(), so that the next
// operation (either protocol) starts from the right step.
//
// Each slot goes through `scratch` (two buffers of llDataBytes(), in shared
// memory on the GPU): lines are unpacked there, reduced with the block's
// reduceCopy, and packed from there, so no reduction loop is written twice.
//
// `Block` is FifoPrims' Block, plus:
//   size_t threadIndex(), threadCount()       this thread among the block's
//   void storeLine(uint64_t* line, uint64_t lo, uint64_t hi)   each half at once
//   void loadLine(const uint64_t* line, uint64_t* lo, uint64_t* hi)
//   bool anyOf(bool)                          true on every thread if on any (a barrier)
#pragma once

#include <cstddef>
#include <cstdint>

#include "device/fifo_prims.h"

namespace chorus {

CHORUS_HOST_DEVICE inline size_t llDataBytes(const DeviceFifo& fifo) {
  return fifo.llLinesPerSlot > 1 ? size_t(fifo.llLinesPerSlot - 1) * 8 : 0;
}

template <typename Block>
class FifoLLPrims {
 public:
  // `scratch` is two buffers of llDataBytes() bytes each, 16-byte aligned.
  CHORUS_HOST_DEVICE FifoLLPrims(Block& block, const DeviceFifo* toNext,
                                 const DeviceFifo* fromPrev, const void* input, void* output,
                                 const RedOpArgs& op, size_t elemSize, char* scratch)
      : block_(block),
        toNext_(toNext),
        fromPrev_(fromPrev),
        input_(static_cast<const char*>(input)),
        output_(static_cast<char*>(output)),
        op_(op),
        elemSize_(elemSize),
        inBuffer_(scratch) {
    const DeviceFifo* any = toNext ? toNext : fromPrev;
    slotElems_ = any ? llDataBytes(*any) / elemSize : 0;
    outBuffer_ = scratch + (any ? llDataBytes(*any) : 0);
    readCounters(block_, toNext_, fromPrev_, &sent_, &received_);
    firstSent_ = sent_;
    if (any != nullptr && (slotElems_ == 0 || any->nSlots < 2 || any->llLines == nullptr))
      status_ = ncclInternalError;
  }

  CHORUS_HOST_DEVICE size_t slotElems() const { return slotElems_; }
  CHORUS_HOST_DEVICE ncclResult_t status() const { return status_; }
  // The tail, stored once at the end of the operation (receivers poll lines,
  // not the tail): where the next operation, of either protocol, starts.
  // First the Simple size words of the steps this operation sent are
  // zeroed: a receiver that took the collective for a Simple one (ranks
  // that passed different counts) then fails the size check instead of
  // taking an old slot's data.
  CHORUS_HOST_DEVICE void finish() {
    if (toNext_ == nullptr || !block_.leader()) return;
    const uint64_t from = sent_ - firstSent_ > toNext_->nSlots ? sent_ - toNext_->nSlots : firstSent_;
    for (uint64_t step = from; step < sent_; ++step)
      block_.store32(&toNext_->sizes[step % toNext_->nSlots], 0);
    block_.store(toNext_->tail, sent_);
  }

  CHORUS_HOST_DEVICE ncclResult_t send(size_t src, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      block_.reduceCopy(op_, nullptr, in(src + i), true, outBuffer_, false, m);
      if (!sendOut(m * elemSize_)) break;
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t recv(size_t dst, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      if (!receiveIn(m * elemSize_)) break;
      block_.copy(inBuffer_, out(dst + i), m * elemSize_);
      block_.sync();  // before the next slot overwrites inBuffer_
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t recvReduceSend(size_t src, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      if (!receiveIn(m * elemSize_)) break;
      block_.reduceCopy(op_, inBuffer_, in(src + i), true, outBuffer_, false, m);
      if (!sendOut(m * elemSize_)) break;
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t recvReduceCopy(size_t src, size_t dst, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      if (!receiveIn(m * elemSize_)) break;
      block_.reduceCopy(op_, inBuffer_, in(src + i), true, out(dst + i), true, m);
      block_.sync();
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t recvReduceCopySend(size_t src, size_t dst, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      if (!receiveIn(m * elemSize_)) break;
      block_.reduceCopy(op_, inBuffer_, in(src + i), true, outBuffer_, true, m);
      block_.sync();
      block_.copy(outBuffer_, out(dst + i), m * elemSize_);
      if (!sendOut(m * elemSize_)) break;
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t recvCopySend(size_t dst, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      if (!receiveIn(m * elemSize_)) break;
      block_.copy(inBuffer_, out(dst + i), m * elemSize_);
      // Forward straight from the received data.
      if (!sendFrom(inBuffer_, m * elemSize_)) break;
    }
    return status_;
  }

  CHORUS_HOST_DEVICE ncclResult_t copySend(size_t src, size_t dst, size_t n) {
    for (size_t i = 0, m; i < n && status_ == ncclSuccess; i += m) {
      m = minSize(slotElems_, n - i);
      if (in(src + i) != out(dst + i)) block_.copy(in(src + i), out(dst + i), m * elemSize_);
      if (!sendFrom(in(src + i), m * elemSize_)) break;
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
  // Never 0 (what a fresh slot holds); two steps share a flag only 2^32
  // steps apart or at the one remapped pair (2^32-1 and 0 mod 2^32), which
  // are adjacent steps and so never share a slot.
  CHORUS_HOST_DEVICE uint32_t flag(uint64_t step) const {
    const uint32_t f = static_cast<uint32_t>(step + 1);
    return f == 0 ? 1 : f;
  }
  CHORUS_HOST_DEVICE uint64_t* lines(const DeviceFifo* fifo, uint64_t step) const {
    return fifo->llLines + (step % fifo->nSlots) * fifo->llLinesPerSlot * 2;
  }

  // Sends outBuffer_ (written by the block's threads: the barrier that ends
  // sendFrom's wait for a free slot comes before any thread packs it).
  CHORUS_HOST_DEVICE bool sendOut(size_t bytes) { return sendFrom(outBuffer_, bytes); }

  // Packs `bytes` of `data` (any alignment of 4) into the next slot's lines.
  CHORUS_HOST_DEVICE bool sendFrom(const char* data, size_t bytes) {
    if (toNext_ == nullptr || slotElems_ == 0) return stop(ncclInternalError);
    const ncclResult_t result = waitForFreeSlot(block_, *toNext_, sent_);
    if (result != ncclSuccess) return stop(result);
    uint64_t* slot = lines(toNext_, sent_);
    const uint64_t f = uint64_t(flag(sent_)) << 32;
    const size_t nLines = divUp(bytes, 8);
    // Line 0: the byte count; lines 1..: 8 bytes each (the last one padded).
    for (size_t l = block_.threadIndex(); l <= nLines; l += block_.threadCount()) {
      uint32_t word[2] = {0, 0};
      if (l == 0) {
        word[0] = static_cast<uint32_t>(bytes);
      } else {
        const size_t at = (l - 1) * 8;
        const size_t take = minSize(8, bytes - at);
        if (take == 8 && reinterpret_cast<uintptr_t>(data + at) % 4 == 0) {
          word[0] = reinterpret_cast<const uint32_t*>(data + at)[0];
          word[1] = reinterpret_cast<const uint32_t*>(data + at)[1];
        } else {
          for (size_t b = 0; b < take; ++b) reinterpret_cast<char*>(word)[b] = data[at + b];
        }
      }
      block_.storeLine(slot + 2 * l, f | word[0], f | word[1]);
    }
    ++sent_;
    // outBuffer_ may be written again once every thread has packed it.
    block_.sync();
    return true;
  }

  // Unpacks the next slot into inBuffer_ and frees it; false when the block
  // stops (abort, or a byte count that is not `bytes`).
  CHORUS_HOST_DEVICE bool receiveIn(size_t bytes) {
    if (fromPrev_ == nullptr || slotElems_ == 0) return stop(ncclInternalError);
    const uint64_t* slot = lines(fromPrev_, received_);
    const uint32_t want = flag(received_);
    const size_t nLines = divUp(bytes, 8);
    bool failed = false;
    for (size_t l = block_.threadIndex(); l <= nLines && !failed; l += block_.threadCount()) {
      uint64_t lo = 0, hi = 0;
      // Relaxed polls: a half's data and flag arrive together.
      for (;;) {
        block_.loadLine(slot + 2 * l, &lo, &hi);
        if (uint32_t(lo >> 32) == want && uint32_t(hi >> 32) == want) break;
        if (block_.aborted()) {
          failed = true;
          break;
        }
        // A line that does not come may be past what the sender sent: its
        // count, in line 0, says so at once (the leader stops on it too).
        if (l != 0 && sentOtherCount(slot, want, bytes)) {
          failed = true;
          status_ = ncclInvalidUsage;
          break;
        }
        block_.pause();
      }
      if (failed) break;
      if (l == 0) {
        failed = uint32_t(lo) != bytes;  // the ranks called different collectives
        if (failed) status_ = ncclInvalidUsage;
        continue;
      }
      const uint32_t word[2] = {uint32_t(lo), uint32_t(hi)};
      const size_t at = (l - 1) * 8;  // inBuffer_ is 16-byte aligned
      if (bytes - at >= 8) {
        reinterpret_cast<uint32_t*>(inBuffer_ + at)[0] = word[0];
        reinterpret_cast<uint32_t*>(inBuffer_ + at)[1] = word[1];
      } else {
        for (size_t b = 0; b < bytes - at; ++b)
          inBuffer_[at + b] = reinterpret_cast<const char*>(word)[b];
      }
    }
    // Every thread's lines are unpacked (or it gave up): free the slot.
    const bool anyFailed = block_.anyOf(failed);
    if (anyFailed) {
      ncclResult_t result = status_ == ncclInvalidUsage ? ncclInvalidUsage : ncclSystemError;
      block_.share(&result);  // the leader's view: invalid usage if it saw the count
      return stop(result == ncclSuccess ? ncclSystemError : result);
    }
    // Release: pairs with the sender's acquire load of head in sendFrom().
    if (block_.leader()) block_.store(fromPrev_->head, received_ + 1);
    ++received_;
    return true;
  }

  // Whether line 0 of the slot at `slot` is this step's and counts other
  // than `bytes`.
  CHORUS_HOST_DEVICE bool sentOtherCount(const uint64_t* slot, uint32_t want, size_t bytes) {
    uint64_t lo = 0, hi = 0;
    block_.loadLine(slot, &lo, &hi);
    return uint32_t(lo >> 32) == want && uint32_t(hi >> 32) == want && uint32_t(lo) != bytes;
  }

  CHORUS_HOST_DEVICE bool stop(ncclResult_t result) {
    status_ = result;
    return false;
  }

  Block& block_;
  const DeviceFifo* toNext_;
  const DeviceFifo* fromPrev_;
  const char* input_;
  char* output_;
  RedOpArgs op_;
  size_t elemSize_;
  char* inBuffer_;
  char* outBuffer_;
  size_t slotElems_;
  uint64_t sent_ = 0;
  uint64_t firstSent_ = 0;  // sent_ when the operation began
  uint64_t received_ = 0;
  ncclResult_t status_ = ncclSuccess;
};

}  // namespace chorus
