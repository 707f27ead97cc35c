// Ring ReduceScatter: block b is summed around the ring so that it ends,
// complete, on rank b. Step j adds this rank's share of block rank-j-1.
#pragma once

#include "collectives/algorithm_common.h"

namespace chorus {

template <typename Prims>
CHORUS_HOST_DEVICE ncclResult_t ringReduceScatter(Prims& prims, int rank, int nranks,
                                                  ChannelSlice slice, size_t blockElems,
                                                  size_t chunkElems) {
  for (size_t off = 0; off < slice.count; off += chunkElems) {
    const size_t n = minSize(chunkElems, slice.count - off);
    const size_t dst = slice.offset + off;
    auto block = [&](int b) { return static_cast<size_t>(b) * blockElems + dst; };
    if (nranks == 1) {
      CHORUS_PRIM(prims.copy(block(rank), dst, n));
      continue;
    }
    CHORUS_PRIM(prims.send(block((rank + nranks - 1) % nranks), n));
    for (int j = 2; j < nranks; ++j)
      CHORUS_PRIM(prims.recvReduceSend(block((rank + nranks - j) % nranks), n));
    CHORUS_PRIM(prims.recvReduceCopy(block(rank), dst, n));
  }
  return ncclSuccess;
}

}  // namespace chorus
