// Pipelined chain Broadcast along the ring, starting at the root: each chunk
// is forwarded as soon as it arrives, so the chain is busy end to end.
#pragma once

#include "collectives/algorithm_common.h"

namespace chorus {

template <typename Prims>
CHORUS_HOST_DEVICE ncclResult_t ringBroadcast(Prims& prims, int rank, int nranks, int root,
                                              ChannelSlice slice, size_t chunkElems) {
  const bool last = (rank + 1) % nranks == root;
  for (size_t off = 0; off < slice.count; off += chunkElems) {
    const size_t n = minSize(chunkElems, slice.count - off);
    const size_t at = slice.offset + off;
    if (nranks == 1) CHORUS_PRIM(prims.copy(at, at, n));
    else if (rank == root) CHORUS_PRIM(prims.copySend(at, at, n));
    else if (last) CHORUS_PRIM(prims.recv(at, n));
    else CHORUS_PRIM(prims.recvCopySend(at, n));
  }
  return ncclSuccess;
}

}  // namespace chorus
