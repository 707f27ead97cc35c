// Pipelined chain Reduce along the ring, ending at the root: the chain
// starts at root+1, each rank adds its share and forwards, and the root
// adds the last share and writes the result.
#pragma once

#include "collectives/algorithm_common.h"

namespace chorus {

template <typename Prims>
CHORUS_HOST_DEVICE ncclResult_t ringReduce(Prims& prims, int rank, int nranks, int root,
                                           ChannelSlice slice, size_t chunkElems) {
  const bool first = rank == (root + 1) % nranks;
  for (size_t off = 0; off < slice.count; off += chunkElems) {
    const size_t n = minSize(chunkElems, slice.count - off);
    const size_t at = slice.offset + off;
    if (nranks == 1) CHORUS_PRIM(prims.copy(at, at, n));
    else if (rank == root) CHORUS_PRIM(prims.recvReduceCopy(at, at, n));
    else if (first) CHORUS_PRIM(prims.send(at, n));
    else CHORUS_PRIM(prims.recvReduceSend(at, n));
  }
  return ncclSuccess;
}

}  // namespace chorus
