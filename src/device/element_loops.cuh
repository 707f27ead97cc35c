// Copy and reduce loops over a range of threads, for the kernels that run
// many datatypes and operators in one body (the worker of device/command_ring.h,
// the ring kernel of device/ring_kernel.cu): consecutive threads take
// consecutive elements, plain copies move 16-byte words where aligned.
// These compile in seconds for all twelve types and every operator; the
// unrolled 16-byte reduction loops of reduce_copy_device.cuh take minutes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "collectives/reduce_ops.h"
#include "device/reduce_copy_device.cuh"

namespace chorus::device {

// The threads that share a loop: this one's index among them, and how many.
struct ThreadRange {
  size_t index;
  size_t count;
};

template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T>
__device__ void elementLoop(const Fn& fn, const T* peer, const T* local, T* dst, size_t count,
                            ThreadRange threads) {
  for (size_t i = threads.index; i < count; i += threads.count)
    dst[i] = reduceElement<kPeer, kPre, kPost>(fn, kPeer ? peer[i] : T{}, local[i]);
}

template <typename Word>
__device__ void copyWords(const Word* from, Word* to, size_t count, ThreadRange threads) {
  for (size_t i = threads.index; i < count; i += threads.count) to[i] = from[i];
}

__device__ inline void copyBytes(const void* fromPtr, void* toPtr, size_t bytes,
                                 ThreadRange threads) {
  auto from = static_cast<const unsigned char*>(fromPtr);
  auto to = static_cast<unsigned char*>(toPtr);
  if ((reinterpret_cast<uintptr_t>(from) | reinterpret_cast<uintptr_t>(to)) % 16 == 0) {
    const size_t words = bytes / 16;
    copyWords(reinterpret_cast<const uint4*>(from), reinterpret_cast<uint4*>(to), words, threads);
    from += words * 16;
    to += words * 16;
    bytes -= words * 16;
  }
  copyWords(from, to, bytes, threads);
}

// reduce_copy.h's reduceCopy for the threads of `threads`. An operator
// without its step is a Sum; without a peer, anything but a step is a copy
// of bytes (max, min, prod and sum of one value are the value).
template <typename T>
__device__ void reduceCopyElements(RedOpArgs op, const T* peer, const T* local, bool applyPre,
                                   T* dst, bool applyPost, size_t count, ThreadRange threads) {
  if ((op.kind == RedOpKind::PreMulSum && !applyPre) ||
      (op.kind == RedOpKind::SumPostDiv && !applyPost))
    op.kind = RedOpKind::Sum;
  if (peer == nullptr && op.kind != RedOpKind::PreMulSum && op.kind != RedOpKind::SumPostDiv) {
    if (dst != local) copyBytes(local, dst, count * sizeof(T), threads);
    return;
  }
  dispatchRedOp<T>(op, [&](const auto& fn) {
    using Fn = std::decay_t<decltype(fn)>;
    constexpr bool kPre = Fn::kHasPre, kPost = Fn::kHasPost;
    if (peer) {
      elementLoop<true, kPre, kPost>(fn, peer, local, dst, count, threads);
    } else if constexpr (kPre || kPost) {
      elementLoop<false, kPre, kPost>(fn, peer, local, dst, count, threads);
    }
  });
}

}  // namespace chorus::device
