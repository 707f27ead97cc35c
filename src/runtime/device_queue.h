// Device communicators: operations on the caller's CUDA stream.
//
// post() turns a batch (one call, or a communicator's part of a group) into
// a ticket and returns at once. On the batch's stream it enqueues two small
// kernels (device/stream_gate.h): one opens the ticket's gate when the
// stream reaches it, the next holds the stream until the ticket is finished.
// The communicator's proxy thread takes tickets in posted order, waits for
// each gate to open, runs the batch with the direct algorithms on device
// memory (copies and reductions on its own stream, see device_mover.h), and
// marks it finished (what the direct path does not take goes through host
// memory, see device_host_staging.h). A group is one ticket: one gate, however many
// operations it holds. Other streams of the batch join the first one with
// events before the gate and after the wait.
//
// Under CUDA graph capture the two kernels become graph nodes and the
// ticket is kept: each replay opens its gate again, and the proxy runs the
// ticket once per replay; a CUDA user object tells the proxy when the graph
// is gone. A single-rank communicator's operations are reduce-copies, run
// by the proxy like any other ticket.
//
// Built only with CUDA; without it no device communicator exists.
#pragma once

#include <cstddef>
#include <memory>

#include "nccl.h"
#include "runtime/op.h"

struct ncclComm;

namespace chorus {

// One posted batch (opaque outside device_queue.cc).
struct DeviceTicket;

class DeviceQueue {
 public:
  // Starts the proxy thread (lazily, on the first ticket) and allocates the
  // gate counters. Called at the end of a device communicator's init.
  static ncclResult_t create(ncclComm* comm, std::unique_ptr<DeviceQueue>* out);
  virtual ~DeviceQueue() = default;
  // Enqueues ops[0..n) on their streams (see above), in two steps: open()
  // enqueues the gate-open (and hands the ticket to the proxy), hold() the
  // gate-wait. A group of several communicators opens every gate before it
  // holds any, so ranks of one process that share a stream cannot block
  // each other's gates. `ticket` is null when nothing needed posting.
  virtual ncclResult_t open(const Op* ops, size_t n, std::shared_ptr<DeviceTicket>* ticket) = 0;
  virtual ncclResult_t hold(const std::shared_ptr<DeviceTicket>& ticket) = 0;
  ncclResult_t post(const Op* ops, size_t n) {
    std::shared_ptr<DeviceTicket> ticket;
    ncclResult_t result = open(ops, n, &ticket);
    return result != ncclSuccess ? result : hold(ticket);
  }
  // Waits (bounded by CHORUS_TIMEOUT) until every ticket posted outside
  // graph capture has finished; then stops the proxy. With comm->abortFlag
  // set, gives up on unfinished tickets at once and releases their streams.
  virtual ncclResult_t shutdown() = 0;
};

}  // namespace chorus
