// What the ring algorithms share: how a collective's elements are cut into
// chunks, and how a primitive's failure is passed up.
//
// Algorithms are templates over a primitives class (`Prims`) with these
// members, offsets and counts in elements of the collective's datatype:
//   send(src, n)                       pre(input[src..]) -> next
//   recv(dst, n)                       prev -> output[dst..]
//   recvReduceSend(src, n)             prev (+) pre(input[src..]) -> next
//   recvReduceCopy(src, dst, n)        post(prev (+) pre(input[src..])) -> output[dst..]
//   recvReduceCopySend(src, dst, n)    post(prev (+) pre(input[src..])) -> output[dst..] and next
//   recvCopySend(dst, n)               prev -> output[dst..] and next
//   copySend(src, dst, n)              input[src..] -> output[dst..] and next
//   copy(src, dst, n)                  post(pre(input[src..])) -> output[dst..] (one rank)
// Every rank computes the same chunk sizes, so a chunk that is empty is
// skipped by sender and receiver alike.
#pragma once

#include <cstddef>

#include "collectives/host_device.h"
#include "nccl.h"

#ifdef __CUDA_ARCH__
#define CHORUS_PRIM(call) (call)
#else
#define CHORUS_PRIM(call)                         \
  do {                                            \
    ncclResult_t chorusPrimResult_ = (call);      \
    if (chorusPrimResult_ != ncclSuccess) return chorusPrimResult_; \
  } while (0)
#endif

namespace chorus {

// The part of a collective one channel moves: elements [offset, offset+count)
// of every per-rank block.
struct ChannelSlice {
  size_t offset;
  size_t count;
};

CHORUS_HOST_DEVICE inline size_t minSize(size_t a, size_t b) { return a < b ? a : b; }
CHORUS_HOST_DEVICE inline size_t divUp(size_t a, size_t b) { return (a + b - 1) / b; }

// Splits `count` elements over `nChannels` channels in contiguous slices
// whose starts are multiples of `align` elements.
CHORUS_HOST_DEVICE inline ChannelSlice channelSlice(size_t count, int nChannels, int channel,
                                                    size_t align) {
  size_t per = divUp(divUp(count, static_cast<size_t>(nChannels)), align) * align;
  size_t begin = minSize(per * static_cast<size_t>(channel), count);
  size_t end = minSize(begin + per, count);
  return ChannelSlice{begin, end - begin};
}

}  // namespace chorus
