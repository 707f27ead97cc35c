// The primitives of algorithm_common.h on host memory: one channel's send
// connection to the next rank and receive connection from the previous one,
// moved in slot-sized pieces through the FIFOs, with reductions done by
// reduceCopy (SIMD loops).
#pragma once

#include <cstddef>

#include "collectives/reduce_copy.h"
#include "nccl.h"
#include "transport/fifo_host.h"

namespace chorus {

class HostPrimitives {
 public:
  // `input`/`output` are the collective's user buffers (either may be null
  // where the collective does not use it on this rank).
  HostPrimitives(FifoSender* toNext, FifoReceiver* fromPrev, const void* input, void* output,
                 const RedOpArgs& op, int rank, int next, int prev);

  ncclResult_t send(size_t src, size_t n);
  ncclResult_t recv(size_t dst, size_t n);
  ncclResult_t recvReduceSend(size_t src, size_t n);
  ncclResult_t recvReduceCopy(size_t src, size_t dst, size_t n);
  ncclResult_t recvReduceCopySend(size_t src, size_t dst, size_t n);
  ncclResult_t recvCopySend(size_t dst, size_t n);
  ncclResult_t copySend(size_t src, size_t dst, size_t n);
  ncclResult_t copy(size_t src, size_t dst, size_t n);

  // The end of an operation (runRingChannel): nothing is left to store.
  void finish() {}
  // Elements that fit one slot: the largest chunk worth asking for.
  size_t slotElems() const { return slotElems_; }

 private:
  const char* in(size_t element) const { return input_ + element * elemSize_; }
  char* out(size_t element) const { return output_ + element * elemSize_; }
  // Fails (instead of looping forever) when n elements cannot be cut into
  // slots.
  ncclResult_t checkPieces(size_t n) const;
  // Waits for the next slot from prev and checks it holds `bytes`.
  ncclResult_t receive(size_t bytes, const char** data);

  FifoSender* toNext_;
  FifoReceiver* fromPrev_;
  const char* input_;
  char* output_;
  RedOpArgs op_;
  size_t elemSize_;
  size_t slotElems_;
  int rank_, next_, prev_;
};

}  // namespace chorus
