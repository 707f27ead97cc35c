// Reduce-copy on device memory, for the threads that share one piece of work:
// a thread block (one per channel, inside the collective kernels) or a whole
// grid (the standalone kernel of reduce_copy_kernel.cu). It is the device twin
// of collectives/reduce_copy.h and keeps its contract and its bits:
//   dst[i] = post( peer ? peer[i] (+) pre(local[i]) : pre(local[i]) )
// pre/post only when applyPre/applyPost; dst may equal local or peer (in
// place), buffers may not otherwise overlap; pointers are element-aligned.
//
// Memory access:
// - 16-byte packs (uint4, one ld/st.v4.u32) over the middle of the buffers
//   when peer, local and dst have the same address modulo 16. The elements
//   before the first 16-byte boundary and after the last one go element by
//   element, in one loop. When the offsets differ every element goes that way
//   (still coalesced and unrolled, just narrower accesses).
// - Each thread loads kUnroll packs (or elements) of each input before it
//   computes or stores any: several independent 16-byte loads in flight per
//   thread is what a memory-bound loop needs to approach copy bandwidth. A
//   thread's pack u lies u * nthreads packs after its pack 0, so every load
//   of a warp covers 512 contiguous bytes.
// - Plain loads, not __ldg (ld.global.nc): a peer's buffer may change during
//   a kernel (a FIFO slot), and dst may alias an input.
// Device code only: include it from .cu files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "collectives/reduce_ops.h"

namespace chorus {
namespace device {

constexpr size_t kPackBytes = 16;
constexpr int kUnroll = 4;

// Words in flight per thread and input. Below sm_89 the fp8 conversions are
// emulated (dozens of instructions each), so fp8 is bound by arithmetic, not
// memory, there, and unrolling its 16-element packs 4x would only make
// nvcc's output 4x larger (over 100k lines of PTX for one kernel).
template <typename T>
__device__ constexpr int unrollFor() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 890
  if (kIsNarrowFloat<T> && sizeof(T) == 1) return 1;
#endif
  return kUnroll;
}

// A Word loaded or stored at once, seen as elements of T.
template <typename T, typename Word>
union Pack {
  Word word;
  T elt[sizeof(Word) / sizeof(T)];
};

template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T = typename Fn::Elt>
__device__ __forceinline__ T reduceElement(const Fn& fn, T peer, T x) {
  if constexpr (kPre) x = fn.pre(x);
  if constexpr (kPeer) x = fn(peer, x);
  if constexpr (kPost) x = fn.post(x);
  return x;
}

// Words j = 0 .. n-1 of the arrays, shared by threads tid = 0 .. nthreads-1;
// word j is at index j below `split` and at j + jump from there on (so that
// one loop serves the elements before and after the 16-byte packs). `peer`
// is read only when kPeer.
template <bool kPeer, bool kPre, bool kPost, typename Word, typename Fn>
__device__ __forceinline__ void wordLoop(const Fn& fn, const Word* peer, const Word* local, Word* dst,
                                         size_t n, size_t split, size_t jump, size_t tid,
                                         size_t nthreads) {
  using P = Pack<typename Fn::Elt, Word>;
  constexpr int kElts = int(sizeof(Word) / sizeof(typename Fn::Elt));
  constexpr int kDepth = unrollFor<typename Fn::Elt>();
  for (size_t base = tid; base < n; base += nthreads * kDepth) {
    P l[kDepth], p[kDepth];
#pragma unroll
    for (int u = 0; u < kDepth; ++u) {
      const size_t j = base + u * nthreads;
      const size_t i = j < split ? j : j + jump;
      if (j < n) {
        l[u].word = local[i];
        if constexpr (kPeer) p[u].word = peer[i];
      }
    }
#pragma unroll
    for (int u = 0; u < kDepth; ++u) {
      const size_t j = base + u * nthreads;
      const size_t i = j < split ? j : j + jump;
      if (j < n) {
#pragma unroll
        for (int e = 0; e < kElts; ++e) {
          l[u].elt[e] = reduceElement<kPeer, kPre, kPost>(fn, kPeer ? p[u].elt[e] : l[u].elt[e],
                                                          l[u].elt[e]);
        }
        dst[i] = l[u].word;
      }
    }
  }
}

// Elements [0, head) and [tail, count) one at a time, then the 16-byte packs
// of [head, tail). All three pointers must share their offset modulo 16 for
// packs; else head = tail = count and every element goes one at a time.
template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T = typename Fn::Elt>
__device__ __forceinline__ void reduceCopyRange(const Fn& fn, const T* peer, const T* local, T* dst,
                                                size_t count, size_t tid, size_t nthreads) {
  const uintptr_t offset = reinterpret_cast<uintptr_t>(dst) % kPackBytes;
  const bool packs = reinterpret_cast<uintptr_t>(local) % kPackBytes == offset &&
                     (!kPeer || reinterpret_cast<uintptr_t>(peer) % kPackBytes == offset);
  size_t head = count, tail = count;
  if (packs) {
    constexpr size_t kElts = kPackBytes / sizeof(T);
    head = (kPackBytes - offset) % kPackBytes / sizeof(T);
    if (head > count) head = count;
    tail = head + (count - head) / kElts * kElts;
  }
  wordLoop<kPeer, kPre, kPost>(fn, peer, local, dst, head + (count - tail), head, tail - head, tid,
                               nthreads);
  if (tail > head) {
    const size_t n = (tail - head) * sizeof(T) / kPackBytes;
    wordLoop<kPeer, kPre, kPost>(fn, kPeer ? reinterpret_cast<const uint4*>(peer + head) : nullptr,
                                 reinterpret_cast<const uint4*>(local + head),
                                 reinterpret_cast<uint4*>(dst + head), n, n, 0, tid, nthreads);
  }
}

// The runtime flags become template arguments here, outside the loops, as in
// the host's reduceWith: an operator has a pre or a post step, never both.
template <bool kPeer, typename Fn, typename T = typename Fn::Elt>
__device__ __forceinline__ void reduceCopyFlags(const Fn& fn, const T* peer, const T* local,
                                                bool applyPre, T* dst, bool applyPost,
                                                size_t count, size_t tid, size_t nthreads) {
  static_assert(!(Fn::kHasPre && Fn::kHasPost), "an operator has a pre or a post step, not both");
  if constexpr (Fn::kHasPre) {
    if (applyPre) return reduceCopyRange<kPeer, true, false>(fn, peer, local, dst, count, tid, nthreads);
  }
  if constexpr (Fn::kHasPost) {
    if (applyPost) return reduceCopyRange<kPeer, false, true>(fn, peer, local, dst, count, tid, nthreads);
  }
  reduceCopyRange<kPeer, false, false>(fn, peer, local, dst, count, tid, nthreads);
}

// reduceCopy for threads tid = 0 .. nthreads-1 of whatever group shares the
// work; no barrier at the end (each thread writes only what it read).
template <typename Fn, typename T = typename Fn::Elt>
__device__ __forceinline__ void reduceCopyThreads(const Fn& fn, const T* peer, const T* local,
                                                  bool applyPre, T* dst, bool applyPost,
                                                  size_t count, size_t tid, size_t nthreads) {
  if (peer) {
    reduceCopyFlags<true>(fn, peer, local, applyPre, dst, applyPost, count, tid, nthreads);
  } else {
    reduceCopyFlags<false>(fn, peer, local, applyPre, dst, applyPost, count, tid, nthreads);
  }
}

// The same for the threads of this block.
template <typename Fn, typename T = typename Fn::Elt>
__device__ __forceinline__ void reduceCopyBlock(const Fn& fn, const T* peer, const T* local,
                                                bool applyPre, T* dst, bool applyPost,
                                                size_t count) {
  reduceCopyThreads(fn, peer, local, applyPre, dst, applyPost, count, threadIdx.x, blockDim.x);
}

}  // namespace device
}  // namespace chorus
