// One channel's part of a collective on the ring algorithms, whichever
// primitives carry it: the host executor's FIFOs (host_primitives.h) or a
// kernel's (device/fifo_prims.h). Every rank computes the same slices and
// chunks from the same arguments.
#pragma once

#include "collectives/algorithm_common.h"
#include "collectives/ring_all_gather.h"
#include "collectives/ring_all_reduce.h"
#include "collectives/ring_broadcast.h"
#include "collectives/ring_reduce.h"
#include "collectives/ring_reduce_scatter.h"

namespace chorus {

// The collectives the ring runs (the first five of runtime/op.h's OpKind,
// in the same order).
enum class RingCollective { AllReduce, Broadcast, Reduce, AllGather, ReduceScatter };

// Channel slices start on 64-byte boundaries. (Every datatype's size is a
// power of two: a shift, where a division would cost each small operation
// several nanoseconds.)
CHORUS_HOST_DEVICE inline size_t ringSliceAlign(size_t elemSize) {
  size_t align = 64;
  for (size_t size = elemSize; size > 1 && align > 1; size >>= 1) align >>= 1;
  return align;
}

// Runs channel `channel` of `nChannels` of the collective: `count` is the
// per-rank count (AllGather's send count, ReduceScatter's receive count).
// Chunks are one slot of the primitives' connection. Ends with
// prims.finish() (what a protocol stores once per operation).
CHORUS_HD_TEMPLATE
template <typename Prims>
CHORUS_HOST_DEVICE ncclResult_t runRingChannel(Prims& prims, RingCollective coll, int rank,
                                               int nranks, int root, size_t count,
                                               size_t elemSize, int nChannels, int channel) {
  const ChannelSlice slice = channelSlice(count, nChannels, channel, ringSliceAlign(elemSize));
  const size_t chunk = nranks > 1 ? prims.slotElems() : slice.count + 1;
  if (chunk == 0) return ncclInternalError;  // the loops would never advance
  ncclResult_t result = ncclInternalError;
  switch (coll) {
    case RingCollective::AllReduce: result = ringAllReduce(prims, rank, nranks, slice, chunk); break;
    case RingCollective::AllGather:
      result = ringAllGather(prims, rank, nranks, slice, count, chunk);
      break;
    case RingCollective::ReduceScatter:
      result = ringReduceScatter(prims, rank, nranks, slice, count, chunk);
      break;
    case RingCollective::Broadcast:
      result = ringBroadcast(prims, rank, nranks, root, slice, chunk);
      break;
    case RingCollective::Reduce: result = ringReduce(prims, rank, nranks, root, slice, chunk); break;
  }
  prims.finish();
  return result;
}

}  // namespace chorus
