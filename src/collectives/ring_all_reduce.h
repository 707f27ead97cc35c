// Ring AllReduce: a reduce-scatter around the ring, then an all-gather.
//
// The slice is processed in rounds of nranks chunks. In each round, rank r
// first sends chunk r-1, adds its own data to what it receives for
// nranks-2 steps, and finishes chunk r (the fully reduced one), which it
// writes out and passes on; the remaining nranks-1 steps only forward the
// finished chunks. Every rank's contribution is pre-processed once
// (PreMulSum) and every final value post-processed once (integer average).
#pragma once

#include "collectives/algorithm_common.h"

namespace chorus {

template <typename Prims>
CHORUS_HOST_DEVICE ncclResult_t ringAllReduce(Prims& prims, int rank, int nranks,
                                              ChannelSlice slice, size_t chunkElems) {
  if (nranks == 1) {
    CHORUS_PRIM(prims.copy(slice.offset, slice.offset, slice.count));
    return ncclSuccess;
  }
  const size_t n = static_cast<size_t>(nranks);
  const size_t roundElems = n * chunkElems;
  for (size_t base = 0; base < slice.count; base += roundElems) {
    // Spread the last, shorter round evenly over the nranks chunks.
    size_t chunk = minSize(chunkElems, divUp(slice.count - base, n));
    auto chunkOffset = [&](int c) { return minSize(base + static_cast<size_t>(c) * chunk, slice.count); };
    auto chunkSize = [&](int c) { return minSize(chunk, slice.count - chunkOffset(c)); };
    auto at = [&](int c) { return slice.offset + chunkOffset(c); };

    int c = (rank + nranks - 1) % nranks;
    if (chunkSize(c)) CHORUS_PRIM(prims.send(at(c), chunkSize(c)));
    for (int j = 2; j < nranks; ++j) {
      c = (rank + nranks - j) % nranks;
      if (chunkSize(c)) CHORUS_PRIM(prims.recvReduceSend(at(c), chunkSize(c)));
    }
    c = rank;
    if (chunkSize(c)) CHORUS_PRIM(prims.recvReduceCopySend(at(c), at(c), chunkSize(c)));
    for (int j = 1; j < nranks - 1; ++j) {
      c = (rank + nranks - j) % nranks;
      if (chunkSize(c)) CHORUS_PRIM(prims.recvCopySend(at(c), chunkSize(c)));
    }
    c = (rank + 1) % nranks;
    if (chunkSize(c)) CHORUS_PRIM(prims.recv(at(c), chunkSize(c)));
  }
  return ncclSuccess;
}

}  // namespace chorus
