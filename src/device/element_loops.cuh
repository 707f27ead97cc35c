// Copy and reduce loops over a range of threads, for the kernels that run
// many datatypes and operators in one body (the worker of device/command_ring.h,
// the ring kernel of device/ring_kernel.cu): consecutive threads take
// consecutive 16-byte packs for copies and sums where the buffers are
// aligned, consecutive elements otherwise. These compile in seconds for all
// twelve types and every operator; the unrolled loops of
// reduce_copy_device.cuh (several packs in flight per thread) take minutes.
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

// Sums with a peer: 16-byte packs (one load per input and one store per
// pack, the elements of a pack added in registers) where all three pointers
// are aligned to 16 bytes, then the elements after the last pack one at a
// time. Everything else element by element.
template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T>
__device__ void elementLoop(const Fn& fn, const T* peer, const T* local, T* dst, size_t count,
                            ThreadRange threads) {
  // Packs only for the hot loop of gradients, a sum with a peer (every
  // pair unrolled per pack would add minutes of nvcc time per kernel and
  // architecture); and not for fp8 below sm_89, which converts in
  // software: a 16-element pack there is only more code, not faster.
  constexpr bool kPacked = kPeer && !kPre && !kPost && std::is_same<Fn, FuncSum<T>>::value &&
                           unrollFor<T>() != 1;
  constexpr size_t kElts = kPacked ? kPackBytes / sizeof(T) : 1;
  size_t first = 0;
  const uintptr_t addresses = reinterpret_cast<uintptr_t>(local) |
                              reinterpret_cast<uintptr_t>(dst) |
                              (kPeer ? reinterpret_cast<uintptr_t>(peer) : 0);
  if (kElts > 1 && addresses % kPackBytes == 0) {
    using P = Pack<T, uint4>;
    const size_t packs = count / kElts;
    for (size_t i = threads.index; i < packs; i += threads.count) {
      P l, p;
      l.word = reinterpret_cast<const uint4*>(local)[i];
      if (kPeer) p.word = reinterpret_cast<const uint4*>(peer)[i];
#pragma unroll
      for (size_t e = 0; e < kElts; ++e)
        l.elt[e] = reduceElement<kPeer, kPre, kPost>(fn, kPeer ? p.elt[e] : l.elt[e], l.elt[e]);
      reinterpret_cast<uint4*>(dst)[i] = l.word;
    }
    first = packs * kElts;
  }
  for (size_t i = first + threads.index; i < count; i += threads.count)
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
