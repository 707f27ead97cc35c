// Ring AllGather: each rank's block travels once around the ring.
// Output block b holds rank b's input; step j forwards block rank-j.
#pragma once

#include "collectives/algorithm_common.h"

namespace chorus {

template <typename Prims>
CHORUS_HOST_DEVICE ncclResult_t ringAllGather(Prims& prims, int rank, int nranks,
                                              ChannelSlice slice, size_t blockElems,
                                              size_t chunkElems) {
  for (size_t off = 0; off < slice.count; off += chunkElems) {
    const size_t n = minSize(chunkElems, slice.count - off);
    const size_t src = slice.offset + off;
    auto block = [&](int b) { return static_cast<size_t>(b) * blockElems + src; };
    if (nranks == 1) {
      CHORUS_PRIM(prims.copy(src, block(rank), n));
      continue;
    }
    CHORUS_PRIM(prims.copySend(src, block(rank), n));
    for (int j = 1; j < nranks - 1; ++j)
      CHORUS_PRIM(prims.recvCopySend(block((rank + nranks - j) % nranks), n));
    CHORUS_PRIM(prims.recv(block((rank + 1) % nranks), n));
  }
  return ncclSuccess;
}

}  // namespace chorus
