// How the direct primitives move and combine bytes. On host memory a copy is
// a memcpy and a reduction runs on this thread; on CUDA memory both are
// enqueued on a stream (runtime/device_mover.h) and are only certain to be
// done after settle(). The primitives settle before every meeting, so what
// a peer is told is ready is ready, and at the end of every operation.
#pragma once

#include <cstddef>

#include "collectives/reduce_ops.h"
#include "nccl.h"

namespace chorus {

class DataMover {
 public:
  virtual ~DataMover() = default;
  // dst[0..bytes) = src[0..bytes); the ranges do not overlap.
  virtual ncclResult_t copy(void* dst, const void* src, size_t bytes) = 0;
  // As copy, for a destination that will not be read again soon (a large
  // output): host memory bypasses the caches on the way.
  virtual ncclResult_t copyPastCache(void* dst, const void* src, size_t bytes) {
    return copy(dst, src, bytes);
  }
  // reduceCopy's contract (collectives/reduce_copy.h).
  virtual ncclResult_t reduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                                  bool applyPre, void* dst, bool applyPost, size_t count) = 0;
  // Returns once every copy and reduction issued so far is complete and
  // visible to other ranks and processes.
  virtual ncclResult_t settle() = 0;
  // Whether copies and reductions run in place on this thread (host memory):
  // data may then travel inline in the arena's operation lines.
  virtual bool synchronous() const = 0;
};

// Host memory: memcpy and the vectorised reduceCopy, nothing to settle.
class HostMover final : public DataMover {
 public:
  ncclResult_t copy(void* dst, const void* src, size_t bytes) override;
  ncclResult_t copyPastCache(void* dst, const void* src, size_t bytes) override;
  ncclResult_t reduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                          bool applyPre, void* dst, bool applyPost, size_t count) override;
  ncclResult_t settle() override { return ncclSuccess; }
  bool synchronous() const override { return true; }
};

// The one HostMover (it has no state).
HostMover& hostMover();

}  // namespace chorus
