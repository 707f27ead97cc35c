// Reduction operators over the storage types of datatypes.h, for the host
// loops (reduce_copy.cc) and, later, the CUDA kernels.
//
// Every operator is a small functor with
//   T operator()(T a, T b)   the reduction (a is the peer's value, b ours)
//   T pre(T x), T post(T x)  applied to our input / to the final result
//   kHasPre, kHasPost        whether pre/post do anything (else identity)
// constructed from a RedOpArgs, so that a loop is instantiated once per
// (type, operator) and the operator's scalar lives in a register.
//
// Semantics, chosen to match NCCL:
// - Integers wrap (two's complement) on overflow, in every operator.
// - Half, Bf16 and the fp8 types compute in float and round back once per
//   operation (round to nearest even, fp8 saturating to the largest finite).
//   A sum or product of two such values is exact in float or, for half sums,
//   rounded twice with float's 24 bits >= 2*11+2, which is innocuous: the
//   result equals a correctly rounded half operation (__hadd, __hmul).
// - Max/Min ignore a NaN operand (as fmaxf/fminf and __hmax/__hmin, which
//   NCCL uses): max(NaN, x) = x; only two NaNs give NaN.
// - PreMulSum multiplies our input by a scalar of the element type, then sums.
//   Floating ncclAvg is PreMulSum with 1/nranks rounded to the element type
//   (NCCL's definition), so for half it multiplies by half(1/nranks).
// - SumPostDiv (integer ncclAvg) sums, then divides the final sum by nranks,
//   truncating toward zero like C's `/`; the sum itself wraps first.
#pragma once

#include <cstdint>
#include <type_traits>

#include "collectives/datatypes.h"
#include "nccl.h"

namespace chorus {

enum class RedOpKind : uint8_t { Sum, Prod, Max, Min, PreMulSum, SumPostDiv };

struct RedOpArgs {
  RedOpKind kind = RedOpKind::Sum;
  ncclDataType_t type = ncclFloat32;
  uint64_t scalar = 0;  // PreMulSum: the scalar's bits as a value of `type`; SumPostDiv: the divisor
};

// The op for a built-in ncclRedOp_t (Sum/Prod/Max/Min/Avg) on `type` with
// nranks ranks. The caller has checked op and type; nranks < 1 counts as 1.
RedOpArgs builtinRedOp(ncclRedOp_t op, ncclDataType_t type, int nranks);
// PreMulSum with a scalar of `type` read from host memory.
RedOpArgs preMulSumOp(ncclDataType_t type, const void* scalar);

// Human-readable name ("sum", "premulsum", ...), for logs and test names.
const char* redOpKindName(RedOpKind kind);

// ---- arithmetic on compute types ---------------------------------------------

namespace ops {

// Integers go through their unsigned twin so that overflow wraps instead of
// being undefined.
template <typename C>
CHORUS_HOST_DEVICE CHORUS_INLINE C add(C a, C b) {
  if constexpr (std::is_integral<C>::value) {
    using U = typename std::make_unsigned<C>::type;
    return C(U(a) + U(b));
  } else {
    return a + b;
  }
}

// On the device the product is never contracted with a following sum into
// one fma (nvcc does that to a * b + c by default): PreMulSum must round the
// product and the sum separately, as the host does.
template <typename C>
CHORUS_HOST_DEVICE CHORUS_INLINE C mul(C a, C b) {
  if constexpr (std::is_integral<C>::value) {
    using U = typename std::make_unsigned<C>::type;
    return C(U(a) * U(b));
  } else {
#if defined(__CUDA_ARCH__)
    if constexpr (std::is_same<C, float>::value) return __fmul_rn(a, b);
    if constexpr (std::is_same<C, double>::value) return __dmul_rn(a, b);
#endif
    return a * b;
  }
}

// NaN-ignoring for floating types (a != a is the NaN test that vectorizes).
template <typename C>
CHORUS_HOST_DEVICE CHORUS_INLINE C max(C a, C b) {
  if constexpr (std::is_integral<C>::value) {
    return a < b ? b : a;
  } else {
    return (b > a || a != a) ? b : a;
  }
}

template <typename C>
CHORUS_HOST_DEVICE CHORUS_INLINE C min(C a, C b) {
  if constexpr (std::is_integral<C>::value) {
    return b < a ? b : a;
  } else {
    return (b < a || a != a) ? b : a;
  }
}

}  // namespace ops

// ---- functors ------------------------------------------------------------------

template <typename T>
struct FuncNoPrePost {
  using Elt = T;
  static constexpr bool kHasPre = false;
  static constexpr bool kHasPost = false;
  CHORUS_HOST_DEVICE CHORUS_INLINE T pre(T x) const { return x; }
  CHORUS_HOST_DEVICE CHORUS_INLINE T post(T x) const { return x; }
};

template <typename T>
struct FuncSum : FuncNoPrePost<T> {
  CHORUS_HOST_DEVICE explicit FuncSum(const RedOpArgs&) {}
  CHORUS_HOST_DEVICE CHORUS_INLINE T operator()(T a, T b) const {
    return fromCompute<T>(ops::add(toCompute(a), toCompute(b)));
  }
};

template <typename T>
struct FuncProd : FuncNoPrePost<T> {
  CHORUS_HOST_DEVICE explicit FuncProd(const RedOpArgs&) {}
  CHORUS_HOST_DEVICE CHORUS_INLINE T operator()(T a, T b) const {
    return fromCompute<T>(ops::mul(toCompute(a), toCompute(b)));
  }
};

template <typename T>
struct FuncMax : FuncNoPrePost<T> {
  CHORUS_HOST_DEVICE explicit FuncMax(const RedOpArgs&) {}
  CHORUS_HOST_DEVICE CHORUS_INLINE T operator()(T a, T b) const {
    return fromCompute<T>(ops::max(toCompute(a), toCompute(b)));
  }
};

template <typename T>
struct FuncMin : FuncNoPrePost<T> {
  CHORUS_HOST_DEVICE explicit FuncMin(const RedOpArgs&) {}
  CHORUS_HOST_DEVICE CHORUS_INLINE T operator()(T a, T b) const {
    return fromCompute<T>(ops::min(toCompute(a), toCompute(b)));
  }
};

// Sum after multiplying our input by `scalar` (one rounding for narrow floats:
// the product of two of them is exact in float).
template <typename T>
struct FuncPreMulSum {
  using Elt = T;
  static constexpr bool kHasPre = true;
  static constexpr bool kHasPost = false;
  ComputeType<T> scalar;
  CHORUS_HOST_DEVICE explicit FuncPreMulSum(const RedOpArgs& args)
      : scalar(toCompute(bitsToValue<T>(args.scalar))) {}
  CHORUS_HOST_DEVICE CHORUS_INLINE T operator()(T a, T b) const {
    return fromCompute<T>(ops::add(toCompute(a), toCompute(b)));
  }
  CHORUS_HOST_DEVICE CHORUS_INLINE T pre(T x) const {
    return fromCompute<T>(ops::mul(toCompute(x), scalar));
  }
  CHORUS_HOST_DEVICE CHORUS_INLINE T post(T x) const { return x; }
};

// Sum, then divide the result by `divisor` (1 <= divisor < 2^63). Integers
// truncate toward zero, with the divisor at full width, so that one wider
// than T (int8 with 200 ranks) is still right. Floating types divide and round (unused by
// builtinRedOp, which gives them PreMulSum, but well defined).
template <typename T>
struct FuncSumPostDiv {
  using Elt = T;
  static constexpr bool kHasPre = false;
  static constexpr bool kHasPost = true;
  uint64_t divisor;
  CHORUS_HOST_DEVICE explicit FuncSumPostDiv(const RedOpArgs& args)
      : divisor(args.scalar ? args.scalar : 1) {}
  CHORUS_HOST_DEVICE CHORUS_INLINE T operator()(T a, T b) const {
    return fromCompute<T>(ops::add(toCompute(a), toCompute(b)));
  }
  CHORUS_HOST_DEVICE CHORUS_INLINE T pre(T x) const { return x; }
  CHORUS_HOST_DEVICE CHORUS_INLINE T post(T x) const {
#if !defined(__CUDA_ARCH__)
    // Host: x86 has no vector integer division, but a double one. For |x| <
    // 2^32 the rounded double quotient is exact, or off by at most
    // 2^-53 * |x| / divisor < 1 / divisor, the least distance from a
    // non-integral x / divisor to an integer; so truncating it is exact.
    // (A divisor >= 2^53 leaves |quotient| < 2^-21, truncated to 0, right.)
    if constexpr (std::is_integral<T>::value && sizeof(T) <= 4) {
      using I = typename std::conditional<std::is_signed<T>::value, int32_t, uint32_t>::type;
      return T(I(double(I(x)) / double(divisor)));
    }
#endif
    if constexpr (std::is_integral<T>::value && std::is_signed<T>::value) {
      return T(int64_t(x) / int64_t(divisor));
    } else if constexpr (std::is_integral<T>::value) {
      return T(uint64_t(x) / divisor);
    } else {
      using C = ComputeType<T>;
      return fromCompute<T>(toCompute(x) / C(divisor));
    }
  }
};

// Calls f(Func<T>(op)) for op.kind's functor and returns what it returns.
CHORUS_HD_TEMPLATE
template <typename T, typename F>
CHORUS_HOST_DEVICE CHORUS_INLINE auto dispatchRedOp(const RedOpArgs& op, F&& f)
    -> decltype(f(FuncSum<T>(op))) {
  switch (op.kind) {
    case RedOpKind::Prod: return f(FuncProd<T>(op));
    case RedOpKind::Max: return f(FuncMax<T>(op));
    case RedOpKind::Min: return f(FuncMin<T>(op));
    case RedOpKind::PreMulSum: return f(FuncPreMulSum<T>(op));
    case RedOpKind::SumPostDiv: return f(FuncSumPostDiv<T>(op));
    case RedOpKind::Sum: break;
  }
  return f(FuncSum<T>(op));
}

}  // namespace chorus
