// The proxy's end of a FIFO whose real other end is across a network.
//
// A network transport (socket/) gives each rank a local FIFO of the usual
// shape (fifo.h), so primitives see no difference from shm. A proxy thread
// plays the missing end:
//
//   sending rank:    FifoSender (rank)  -> FifoRemoteReceiver (proxy) -> wire
//   receiving rank:  wire -> FifoRemoteSender (proxy) -> FifoReceiver (rank)
//
// Every load and store of a FIFO counter done by a proxy is in this file,
// with what it pairs with. Several proxy threads may drive one FIFO (each
// moves its own stripe of every slot over its own sockets), so a proxy
// never stores a counter directly: it moves it forward to the step that all
// of them have finished, and never back.
#pragma once

#include <cstdint>

#include "transport/fifo_host.h"

namespace chorus {

// Stands in for the receiver of a rank's send FIFO: reads the slots the rank
// published and hands them back once their bytes are on the wire.
class FifoRemoteReceiver {
 public:
  FifoRemoteReceiver() = default;
  explicit FifoRemoteReceiver(FifoView fifo) : fifo_(fifo) {}

  // Steps the rank has published so far (slots before it may be read).
  uint32_t published() const;
  // The byte count of a step below published().
  uint32_t bytes(uint32_t step) const { return fifo_.control->sizes[step % kSteps]; }
  const char* slot(uint32_t step) const { return fifo_.slot(step); }
  // Every step before `step` is fully sent: its slot may be refilled.
  void releaseUpTo(uint32_t step);

 private:
  FifoView fifo_;
};

// Stands in for the sender of a rank's receive FIFO: fills free slots from
// the wire and publishes them.
class FifoRemoteSender {
 public:
  FifoRemoteSender() = default;
  explicit FifoRemoteSender(FifoView fifo) : fifo_(fifo) {}

  // True when slot `step` has been handed back by the rank and may be written.
  bool slotFree(uint32_t step) const;
  char* slot(uint32_t step) const { return fifo_.slot(step); }
  size_t slotSize() const { return fifo_.slotSize; }
  // Records a step's byte count; published by the next publishUpTo past it.
  void setBytes(uint32_t step, uint32_t bytes) { fifo_.control->sizes[step % kSteps] = bytes; }
  // Every step before `step` is fully received: the rank may read them.
  void publishUpTo(uint32_t step);

 private:
  FifoView fifo_;
};

// Records why the network connection behind `fifo` failed, raises `failure`
// (which the rank's WaitContext::link points at) and wakes the rank if it
// sleeps on either counter. The first reason wins; later calls do nothing
// and return false.
bool raiseLinkFailure(FifoView fifo, LinkFailure* failure, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

}  // namespace chorus
