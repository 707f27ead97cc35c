#include "collectives/data_mover.h"

#include <cstring>

#include "collectives/reduce_copy.h"
#include "collectives/streaming_copy.h"

namespace chorus {

ncclResult_t HostMover::copy(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) memcpy(dst, src, bytes);
  return ncclSuccess;
}

ncclResult_t HostMover::copyPastCache(void* dst, const void* src, size_t bytes) {
  copyWithStreamingStores(dst, src, bytes);
  return ncclSuccess;
}

ncclResult_t HostMover::reduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                                   bool applyPre, void* dst, bool applyPost, size_t count) {
  chorus::reduceCopy(op, peer, local, applyPre, dst, applyPost, count);
  return ncclSuccess;
}

HostMover& hostMover() {
  static HostMover mover;
  return mover;
}

}  // namespace chorus
