// Host reduction loops.
//
// One loop template serves every (type, operator, peer?, pre?, post?) and is
// shaped so that GCC vectorizes it at the project's -O2:
// - The work is cut into blocks of a fixed 256 bytes. GCC's default cost
//   model at -O2 ("very cheap") vectorizes only loops whose trip count is a
//   known multiple of the vector width; the block loop is one, and the few
//   elements after the last block run in a scalar tail.
// - `ivdep` tells GCC that iterations are independent, so it needs no runtime
//   overlap checks. That holds here even in place: dst may equal local or
//   peer exactly, and element i is read before it is written in the same
//   iteration. (`__restrict` would be wrong for dst == local.)
// - The functor is passed by value, so its scalar cannot alias dst and stays
//   in a register.
// Narrow floats (half, bf16, fp8) convert to float, compute and round back
// inside the same block loop; the conversions in datatypes.h are branch-free
// so that this, too, vectorizes.
#include "collectives/reduce_copy.h"

#include <cstring>

#include "collectives/datatypes.h"

#if defined(__clang__)
#define CHORUS_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define CHORUS_IVDEP _Pragma("GCC ivdep")
#else
#define CHORUS_IVDEP
#endif

namespace chorus {

namespace {

constexpr size_t kBlockBytes = 256;

template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T = typename Fn::Elt>
inline T element(const Fn& fn, const T* peer, const T* local, size_t i) {
  T x = local[i];
  if constexpr (kPre) x = fn.pre(x);
  if constexpr (kPeer) x = fn(peer[i], x);
  if constexpr (kPost) x = fn.post(x);
  return x;
}

template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T = typename Fn::Elt>
void reduceLoop(const Fn fn, const T* peer, const T* local, T* dst, size_t count) {
  constexpr size_t kBlock = kBlockBytes / sizeof(T);
  size_t i = 0;
  for (; i + kBlock <= count; i += kBlock) {
    const T* p = kPeer ? peer + i : nullptr;
    const T* l = local + i;
    T* d = dst + i;
    CHORUS_IVDEP
    for (size_t j = 0; j < kBlock; ++j) d[j] = element<kPeer, kPre, kPost>(fn, p, l, j);
  }
  for (; i < count; ++i) dst[i] = element<kPeer, kPre, kPost>(fn, peer, local, i);
}

template <bool kPeer, typename Fn, typename T = typename Fn::Elt>
void reduceWith(const Fn& fn, const T* peer, const T* local, bool pre, T* dst, bool post,
                size_t count) {
  static_assert(!(Fn::kHasPre && Fn::kHasPost), "an operator has a pre or a post step, not both");
  if constexpr (Fn::kHasPre) {
    if (pre) return reduceLoop<kPeer, true, false>(fn, peer, local, dst, count);
  }
  if constexpr (Fn::kHasPost) {
    if (post) return reduceLoop<kPeer, false, true>(fn, peer, local, dst, count);
  }
  if constexpr (kPeer) {
    reduceLoop<true, false, false>(fn, peer, local, dst, count);
  } else {
    // Nothing to compute: a copy (nothing at all in place).
    if (dst != local) std::memmove(dst, local, count * sizeof(T));
  }
}

struct ReduceCopy {
  const RedOpArgs& op;
  const void* peer;
  const void* local;
  bool pre;
  void* dst;
  bool post;
  size_t count;

  template <typename T>
  void operator()() const {
    const T* p = static_cast<const T*>(peer);
    const T* l = static_cast<const T*>(local);
    T* d = static_cast<T*>(dst);
    dispatchRedOp<T>(op, [&](const auto& fn) {
      if (p) {
        reduceWith<true>(fn, p, l, pre, d, post, count);
      } else {
        reduceWith<false>(fn, p, l, pre, d, post, count);
      }
    });
  }
};

}  // namespace

void reduceCopy(const RedOpArgs& op, const void* peer, const void* local, bool applyPre,
                void* dst, bool applyPost, size_t count) {
  if (count == 0) return;
  dispatchType(op.type, ReduceCopy{op, peer, local, applyPre, dst, applyPost, count});
}

}  // namespace chorus
