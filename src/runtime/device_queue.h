// Device communicators: operations on the caller's CUDA stream.
//
// A batch (one call, or a communicator's part of a group) becomes a ticket.
// open() enqueues a gate-open kernel (device/stream_gate.h) on the batch's
// stream and hands the ticket to the communicator's proxy thread; hold()
// enqueues the worker kernel (device/worker_kernel.h) right after it. The
// proxy takes tickets in posted order, waits for each gate to open, and runs
// the batch with the direct algorithms: each copy and reduction becomes a
// command that the worker, holding the stream, runs (runtime/command_mover.h,
// device/command_ring.h); the ticket's last command lets the worker, and the
// stream, go. What the direct path does not take goes through host memory
// (device_host_staging.h). A group opens every communicator's gate before it
// holds any stream. Other streams of a batch join the first one with events.
//
// Under CUDA graph capture both kernels become graph nodes and the ticket is
// kept: each replay opens its gate again, and the proxy runs the ticket once
// per replay; a CUDA user object tells the proxy when the graph is gone.
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
  // worker. A group of several communicators opens every gate before it
  // holds any stream, so ranks of one process that share a stream cannot
  // block each other's gates. `ticket` is null when nothing needed posting.
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
  // The first failure a kernel reported by itself (the ring kernel's: a
  // size that does not match, abort), or ncclSuccess.
  virtual ncclResult_t kernelFailure() const = 0;
};

}  // namespace chorus
