// Device buffers through host memory: for what the device communicators'
// direct path does not cover (point-to-point operations, and collectives of
// communicators that span hosts or run without the direct algorithms). The
// inputs are copied into host buffers, the host executor runs the
// operations there over the host transports (shared memory, sockets), and
// the outputs are copied back. Every transport works this way, at the cost
// of a copy each way. Built only with CUDA.
#pragma once

#include <cstddef>

#include "collectives/data_mover.h"
#include "nccl.h"
#include "runtime/op.h"

struct ncclComm;

namespace chorus {

// Host memory that grows to the largest batch and is kept. Pageable, not
// pinned: cudaHostAlloc and cudaFreeHost may wait for the whole device,
// where a gate kernel holds a stream until this very batch is done.
class HostBounceBuffer {
 public:
  HostBounceBuffer() = default;
  HostBounceBuffer(const HostBounceBuffer&) = delete;
  HostBounceBuffer& operator=(const HostBounceBuffer&) = delete;
  ~HostBounceBuffer();
  // At least `bytes` of host memory.
  ncclResult_t reserve(size_t bytes, char** data);

 private:
  char* data_ = nullptr;
  size_t bytes_ = 0;
};

// Runs ops[0..n) (collectives in order, then the point-to-point ones
// together, as executeHostOps does) on host copies of their buffers.
ncclResult_t runThroughHostMemory(ncclComm* comm, const Op* ops, size_t n, DataMover& mover,
                                  HostBounceBuffer& bounce);

}  // namespace chorus
