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
//
// On x86-64 every loop is compiled twice, for the SSE2 baseline and for AVX2,
// and the AVX2 copy runs when the CPU has it: twice the vector width halves
// the time of cache-resident reductions and of the narrow-float conversions,
// which are compute-bound. Half goes further there, with F16C's conversion
// instructions (see halfLoop). Results are identical on every path: the same
// operations in the same order, one rounding per operator, and no FMA (the
// targets add no FMA, and -std=c++17 keeps GCC from contracting a*b+c anyway).
// The unit tests compare every path with the scalar operators bit for bit.
#include "collectives/reduce_copy.h"

#include <atomic>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define CHORUS_REDUCE_AVX2 1
#endif

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

// The loop itself; always inlined, so that it is compiled for the target of
// each function below.
template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T = typename Fn::Elt>
__attribute__((always_inline)) inline void blockLoop(const Fn& fn, const T* peer, const T* local,
                                                     T* dst, size_t count) {
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

template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T = typename Fn::Elt>
void baselineLoop(const Fn fn, const T* peer, const T* local, T* dst, size_t count) {
  blockLoop<kPeer, kPre, kPost>(fn, peer, local, dst, count);
}

std::atomic<bool> forceBaseline{false};

#if defined(CHORUS_REDUCE_AVX2)
template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T = typename Fn::Elt>
__attribute__((target("avx2"))) void avx2Loop(const Fn fn, const T* peer, const T* local,
                                              T* dst, size_t count) {
  blockLoop<kPeer, kPre, kPost>(fn, peer, local, dst, count);
}

// ---- Half with F16C -------------------------------------------------------------
// vcvtph2ps / vcvtps2ph convert eight halves at a time, rounding to nearest
// even like Half::fromFloat; only NaN differs (the instruction keeps sign and
// payload, CUDA gives 0x7FFF), which the store fixes. The operators are
// restated on 8 float lanes below, rounding to half after each one exactly
// where the scalar functors do.
#define CHORUS_F16C __attribute__((target("avx2,f16c"), always_inline)) inline

CHORUS_F16C __m256 loadHalves(const Half* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

CHORUS_F16C __m128i toHalves(__m256 x) {
  const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m128i isNan = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)),
                                        _mm_set1_epi16(0x7c00));
  return _mm_blendv_epi8(h, _mm_set1_epi16(0x7fff), isNan);
}

CHORUS_F16C void storeHalves(Half* p, __m256 x) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), toHalves(x));
}

// The value a Half result holds: x rounded to half and back.
CHORUS_F16C __m256 roundToHalf(__m256 x) { return _mm256_cvtph_ps(toHalves(x)); }

// a ⊕ b on float lanes, for each functor (max/min ignore a NaN operand, as
// ops::max/min do).
CHORUS_F16C __m256 lanes(const FuncSum<Half>&, __m256 a, __m256 b) { return _mm256_add_ps(a, b); }
CHORUS_F16C __m256 lanes(const FuncPreMulSum<Half>&, __m256 a, __m256 b) { return _mm256_add_ps(a, b); }
CHORUS_F16C __m256 lanes(const FuncSumPostDiv<Half>&, __m256 a, __m256 b) { return _mm256_add_ps(a, b); }
CHORUS_F16C __m256 lanes(const FuncProd<Half>&, __m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
CHORUS_F16C __m256 lanes(const FuncMax<Half>&, __m256 a, __m256 b) {
  const __m256 takeB = _mm256_or_ps(_mm256_cmp_ps(b, a, _CMP_GT_OQ), _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  return _mm256_blendv_ps(a, b, takeB);
}
CHORUS_F16C __m256 lanes(const FuncMin<Half>&, __m256 a, __m256 b) {
  const __m256 takeB = _mm256_or_ps(_mm256_cmp_ps(b, a, _CMP_LT_OQ), _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  return _mm256_blendv_ps(a, b, takeB);
}

template <bool kPeer, bool kPre, bool kPost, typename Fn>
__attribute__((target("avx2,f16c"))) void halfLoop(const Fn fn, const Half* peer, const Half* local,
                                                   Half* dst, size_t count) {
  __m256 scale = _mm256_setzero_ps(), divisor = _mm256_setzero_ps();
  if constexpr (kPre) scale = _mm256_set1_ps(fn.scalar);
  if constexpr (kPost) divisor = _mm256_set1_ps(float(fn.divisor));
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m256 x = loadHalves(local + i);
    if constexpr (kPre) x = roundToHalf(_mm256_mul_ps(x, scale));                // fn.pre
    if constexpr (kPeer) x = lanes(fn, loadHalves(peer + i), x);                 // fn(peer, x)
    if constexpr (kPeer && kPost) x = roundToHalf(x);
    if constexpr (kPost) x = _mm256_div_ps(x, divisor);                          // fn.post
    storeHalves(dst + i, x);
  }
  for (; i < count; ++i) dst[i] = element<kPeer, kPre, kPost>(fn, peer, local, i);
}
#undef CHORUS_F16C

bool cpuHasAvx2() {
  static const bool has = [] {
    __builtin_cpu_init();  // in case we run before libgcc's constructor
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}

bool cpuHasF16c() {
  // F16C is CPUID.1:ECX bit 29 (clang's __builtin_cpu_supports does not know
  // it); the AVX2 check has already made sure the OS saves the YMM state.
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return cpuHasAvx2() && __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
  }();
  return has;
}
#endif

template <bool kPeer, bool kPre, bool kPost, typename Fn, typename T = typename Fn::Elt>
void reduceLoop(const Fn fn, const T* peer, const T* local, T* dst, size_t count) {
#if defined(CHORUS_REDUCE_AVX2)
  if (!forceBaseline.load(std::memory_order_relaxed)) {
    if constexpr (std::is_same<T, Half>::value) {
      if (cpuHasF16c()) return halfLoop<kPeer, kPre, kPost>(fn, peer, local, dst, count);
    }
    if (cpuHasAvx2()) return avx2Loop<kPeer, kPre, kPost>(fn, peer, local, dst, count);
  }
#endif
  baselineLoop<kPeer, kPre, kPost>(fn, peer, local, dst, count);
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

bool reduceCopyHasWideLoops() {
#if defined(CHORUS_REDUCE_AVX2)
  return cpuHasAvx2();
#else
  return false;
#endif
}

void reduceCopyForceBaseline(bool force) {
  forceBaseline.store(force, std::memory_order_relaxed);
}

}  // namespace chorus
