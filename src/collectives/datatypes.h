// Storage types for the twelve ncclDataType_t values, their conversions, and a
// visitor that turns a runtime datatype into a template argument.
//
// Half (IEEE binary16), Bf16, Fp8E4M3 and Fp8E5M2 are plain structs holding the
// bits; arithmetic on them goes through float (see reduce_ops.h). Conversions
// from float round to nearest even and match CUDA's bit for bit:
//   Half::fromFloat    = __float2half_rn       (overflow -> inf, NaN -> 0x7FFF)
//   Bf16::fromFloat    = __float2bfloat16_rn   (overflow -> inf, NaN -> 0x7FFF)
//   Fp8E4M3::fromFloat = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3)
//   Fp8E5M2::fromFloat = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E5M2)
// SATFINITE turns every value that would round past the largest finite one,
// infinities included, into +-max (448 for E4M3, 57344 for E5M2); NaN becomes
// 0x7F whatever its sign, as CUDA canonicalises it.
//
// In device code the conversions are CUDA's own intrinsics (one cvt
// instruction on recent GPUs). On the host they are branch-free integer and
// float arithmetic, written so that GCC vectorizes loops over them with plain
// SSE2. The subnormal cases use the "add a power of two" trick: adding 2^k to
// a small float rounds it (to nearest even, the default mode) to a multiple of
// the target's smallest subnormal, and the low bits of the sum are the answer.
// That relies on the default rounding mode; DAZ/FTZ do not change any result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "collectives/host_device.h"
#include "nccl.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#endif

namespace chorus {

// ---- bit casts ---------------------------------------------------------------

CHORUS_HOST_DEVICE CHORUS_INLINE uint32_t floatToBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

CHORUS_HOST_DEVICE CHORUS_INLINE float bitsToFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// ---- host conversions (also usable in device code; kernels use intrinsics) --

namespace convert {

// c ? a : b, written with masks: GCC turns a `?:` between values computed with
// float arithmetic into branches (the float ops may trap, so they are not
// speculated), and a loop with branches does not vectorize.
CHORUS_HOST_DEVICE CHORUS_INLINE uint32_t select(bool c, uint32_t a, uint32_t b) {
  const uint32_t mask = 0u - uint32_t(c);
  return (a & mask) | (b & ~mask);
}

// binary16 -> float: exact for every pattern; NaN payloads are kept.
CHORUS_HOST_DEVICE CHORUS_INLINE float halfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;                     // exponent and mantissa
  const uint32_t normal = (em << 13) + (112u << 23);   // rebias 15 -> 127
  const uint32_t special = (em << 13) | 0x7f800000u;   // inf and NaN
  const uint32_t subnormal = floatToBits(float(int32_t(em)) * 0x1p-24f);  // exact
  const uint32_t bits = select(em >= 0x7c00u, special, select(em >= 0x0400u, normal, subnormal));
  return bitsToFloat(bits | sign);
}

// float -> binary16, round to nearest even (__float2half_rn).
CHORUS_HOST_DEVICE CHORUS_INLINE uint16_t floatToHalf(float f) {
  const uint32_t x = floatToBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7fffffffu;
  // Normal results: rebias, then add just under half an ulp plus the lowest
  // kept bit, so that ties go to even; a carry into the exponent is correct
  // (up to and including rounding to infinity).
  const uint32_t normal = (a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
  // Subnormal results: 0.5f has an ulp of 2^-24, binary16's smallest step.
  const uint32_t subnormal = floatToBits(bitsToFloat(a) + 0.5f) - 0x3f000000u;
  const uint32_t mag = select(a >= 0x47800000u, 0x7c00u,  // >= 2^16 (and inf): inf
                              select(a >= 0x38800000u, normal, subnormal));  // >= 2^-14
  return uint16_t(select(a > 0x7f800000u, 0x7fffu, sign | mag));
}

CHORUS_HOST_DEVICE CHORUS_INLINE float bf16ToFloat(uint16_t b) {
  return bitsToFloat(uint32_t(b) << 16);
}

// float -> bfloat16, round to nearest even (__float2bfloat16_rn).
CHORUS_HOST_DEVICE CHORUS_INLINE uint16_t floatToBf16(float f) {
  const uint32_t x = floatToBits(f);
  const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
  return uint16_t(select((x & 0x7fffffffu) > 0x7f800000u, 0x7fffu, rounded));
}

// OCP E4M3FN -> float: bias 7, no infinities, S.1111.111 is NaN.
CHORUS_HOST_DEVICE CHORUS_INLINE float e4m3ToFloat(uint8_t v) {
  const uint32_t sign = uint32_t(v & 0x80u) << 24;
  const uint32_t em = v & 0x7fu;
  const uint32_t normal = (em << 20) + (120u << 23);   // rebias 7 -> 127
  const uint32_t subnormal = floatToBits(float(int32_t(em)) * 0x1p-9f);
  const uint32_t bits = select(em == 0x7fu, 0x7fc00000u, select(em >= 0x08u, normal, subnormal));
  return bitsToFloat(bits | sign);
}

// float -> E4M3 with __NV_SATFINITE, round to nearest even.
CHORUS_HOST_DEVICE CHORUS_INLINE uint8_t floatToE4m3(float f) {
  const uint32_t x = floatToBits(f);
  const uint32_t sign = (x >> 24) & 0x80u;
  const uint32_t a = x & 0x7fffffffu;
  const uint32_t normal = (a - (120u << 23) + 0x7ffffu + ((a >> 20) & 1u)) >> 20;
  // 2^14 has an ulp of 2^-9, E4M3's smallest subnormal.
  const uint32_t subnormal = floatToBits(bitsToFloat(a) + 0x1p14f) - 0x46800000u;
  // Above 464 = 448 + half an ulp everything saturates to 448 (0x7E); 464
  // itself is a tie that rounds to the even 0x7E as well.
  const uint32_t mag = select(a > 0x43e80000u, 0x7eu,  // > 464 (and inf)
                              select(a >= 0x3c800000u, normal, subnormal));  // >= 2^-6
  return uint8_t(select(a > 0x7f800000u, 0x7fu, sign | mag));
}

// E5M2 -> float: the top byte of a binary16.
CHORUS_HOST_DEVICE CHORUS_INLINE float e5m2ToFloat(uint8_t v) {
  return halfToFloat(uint16_t(uint16_t(v) << 8));
}

// float -> E5M2 with __NV_SATFINITE, round to nearest even.
CHORUS_HOST_DEVICE CHORUS_INLINE uint8_t floatToE5m2(float f) {
  const uint32_t x = floatToBits(f);
  const uint32_t sign = (x >> 24) & 0x80u;
  const uint32_t a = x & 0x7fffffffu;
  const uint32_t normal = (a - (112u << 23) + 0xfffffu + ((a >> 21) & 1u)) >> 21;
  // 2^7 has an ulp of 2^-16, E5M2's smallest subnormal.
  const uint32_t subnormal = floatToBits(bitsToFloat(a) + 128.0f) - 0x43000000u;
  // From 61440 = 57344 + half an ulp (a tie that would round to inf) upwards,
  // and for inf, SATFINITE gives 57344 (0x7B).
  const uint32_t mag = select(a >= 0x47700000u, 0x7bu,  // >= 61440 (and inf)
                              select(a >= 0x38800000u, normal, subnormal));  // >= 2^-14
  return uint8_t(select(a > 0x7f800000u, 0x7fu, sign | mag));
}

}  // namespace convert

// ---- storage types -----------------------------------------------------------
// Trivial aggregates of their bits, so that buffers of them can be memcpy'd
// and loops over them vectorize.

struct Half {
  uint16_t bits;
  CHORUS_HOST_DEVICE CHORUS_INLINE float toFloat() const {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(bits));
#else
    return convert::halfToFloat(bits);
#endif
  }
  CHORUS_HOST_DEVICE CHORUS_INLINE static Half fromFloat(float f) {
#if defined(__CUDA_ARCH__)
    return Half{__half_as_ushort(__float2half_rn(f))};
#else
    return Half{convert::floatToHalf(f)};
#endif
  }
};

struct Bf16 {
  uint16_t bits;
  CHORUS_HOST_DEVICE CHORUS_INLINE float toFloat() const { return convert::bf16ToFloat(bits); }
  CHORUS_HOST_DEVICE CHORUS_INLINE static Bf16 fromFloat(float f) {
#if defined(__CUDA_ARCH__)
    return Bf16{__bfloat16_as_ushort(__float2bfloat16_rn(f))};
#else
    return Bf16{convert::floatToBf16(f)};
#endif
  }
};

struct Fp8E4M3 {
  uint8_t bits;
  CHORUS_HOST_DEVICE CHORUS_INLINE float toFloat() const {
#if defined(__CUDA_ARCH__)
    return __half2float(__half(__nv_cvt_fp8_to_halfraw(bits, __NV_E4M3)));
#else
    return convert::e4m3ToFloat(bits);
#endif
  }
  CHORUS_HOST_DEVICE CHORUS_INLINE static Fp8E4M3 fromFloat(float f) {
#if defined(__CUDA_ARCH__)
    return Fp8E4M3{__nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E4M3)};
#else
    return Fp8E4M3{convert::floatToE4m3(f)};
#endif
  }
};

struct Fp8E5M2 {
  uint8_t bits;
  CHORUS_HOST_DEVICE CHORUS_INLINE float toFloat() const {
#if defined(__CUDA_ARCH__)
    return __half2float(__half(__nv_cvt_fp8_to_halfraw(bits, __NV_E5M2)));
#else
    return convert::e5m2ToFloat(bits);
#endif
  }
  CHORUS_HOST_DEVICE CHORUS_INLINE static Fp8E5M2 fromFloat(float f) {
#if defined(__CUDA_ARCH__)
    return Fp8E5M2{__nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E5M2)};
#else
    return Fp8E5M2{convert::floatToE5m2(f)};
#endif
  }
};

static_assert(sizeof(Half) == 2 && sizeof(Bf16) == 2, "16-bit storage");
static_assert(sizeof(Fp8E4M3) == 1 && sizeof(Fp8E5M2) == 1, "8-bit storage");
static_assert(std::is_trivially_copyable<Half>::value, "storage must be trivially copyable");

// ---- traits ------------------------------------------------------------------

// Types stored narrower than float and computed in float.
template <typename T>
struct IsNarrowFloat : std::false_type {};
template <> struct IsNarrowFloat<Half> : std::true_type {};
template <> struct IsNarrowFloat<Bf16> : std::true_type {};
template <> struct IsNarrowFloat<Fp8E4M3> : std::true_type {};
template <> struct IsNarrowFloat<Fp8E5M2> : std::true_type {};

template <typename T>
constexpr bool kIsNarrowFloat = IsNarrowFloat<T>::value;
template <typename T>
constexpr bool kIsFloating = kIsNarrowFloat<T> || std::is_floating_point<T>::value;

// The storage type's ncclDataType_t.
template <typename T>
struct DataTypeOf;
template <> struct DataTypeOf<int8_t> { static constexpr ncclDataType_t value = ncclInt8; };
template <> struct DataTypeOf<uint8_t> { static constexpr ncclDataType_t value = ncclUint8; };
template <> struct DataTypeOf<int32_t> { static constexpr ncclDataType_t value = ncclInt32; };
template <> struct DataTypeOf<uint32_t> { static constexpr ncclDataType_t value = ncclUint32; };
template <> struct DataTypeOf<int64_t> { static constexpr ncclDataType_t value = ncclInt64; };
template <> struct DataTypeOf<uint64_t> { static constexpr ncclDataType_t value = ncclUint64; };
template <> struct DataTypeOf<Half> { static constexpr ncclDataType_t value = ncclFloat16; };
template <> struct DataTypeOf<float> { static constexpr ncclDataType_t value = ncclFloat32; };
template <> struct DataTypeOf<double> { static constexpr ncclDataType_t value = ncclFloat64; };
template <> struct DataTypeOf<Bf16> { static constexpr ncclDataType_t value = ncclBfloat16; };
template <> struct DataTypeOf<Fp8E4M3> { static constexpr ncclDataType_t value = ncclFloat8e4m3; };
template <> struct DataTypeOf<Fp8E5M2> { static constexpr ncclDataType_t value = ncclFloat8e5m2; };

// The type arithmetic is done in: float for the narrow floats, else itself.
template <typename T>
using ComputeType = typename std::conditional<kIsNarrowFloat<T>, float, T>::type;

template <typename T>
CHORUS_HOST_DEVICE CHORUS_INLINE ComputeType<T> toCompute(T x) {
  if constexpr (kIsNarrowFloat<T>) {
    return x.toFloat();
  } else {
    return x;
  }
}

template <typename T>
CHORUS_HOST_DEVICE CHORUS_INLINE T fromCompute(ComputeType<T> x) {
  if constexpr (kIsNarrowFloat<T>) {
    return T::fromFloat(x);
  } else {
    return x;
  }
}

// A value of T kept in the low bits of a uint64_t (RedOpArgs::scalar), the
// same on every endianness: the integer holds T's bit pattern zero-extended.
template <typename T>
CHORUS_HOST_DEVICE CHORUS_INLINE uint64_t valueToBits(T v) {
  static_assert(sizeof(T) <= 8, "scalar wider than 64 bits");
  if constexpr (sizeof(T) == 1) {
    uint8_t b; memcpy(&b, &v, 1); return b;
  } else if constexpr (sizeof(T) == 2) {
    uint16_t b; memcpy(&b, &v, 2); return b;
  } else if constexpr (sizeof(T) == 4) {
    uint32_t b; memcpy(&b, &v, 4); return b;
  } else {
    uint64_t b; memcpy(&b, &v, 8); return b;
  }
}

template <typename T>
CHORUS_HOST_DEVICE CHORUS_INLINE T bitsToValue(uint64_t bits) {
  static_assert(sizeof(T) <= 8, "scalar wider than 64 bits");
  T v;
  if constexpr (sizeof(T) == 1) {
    uint8_t b = uint8_t(bits); memcpy(&v, &b, 1);
  } else if constexpr (sizeof(T) == 2) {
    uint16_t b = uint16_t(bits); memcpy(&v, &b, 2);
  } else if constexpr (sizeof(T) == 4) {
    uint32_t b = uint32_t(bits); memcpy(&v, &b, 4);
  } else {
    memcpy(&v, &bits, 8);
  }
  return v;
}

// ---- runtime datatype --------------------------------------------------------

// Bytes per element; 0 for a value that is not a datatype.
CHORUS_HOST_DEVICE CHORUS_INLINE constexpr size_t elementSize(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: case ncclUint8: case ncclFloat8e4m3: case ncclFloat8e5m2:
      return 1;
    case ncclFloat16: case ncclBfloat16:
      return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32:
      return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64:
      return 8;
    default:
      return 0;
  }
}

inline const char* dataTypeName(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: return "int8";
    case ncclUint8: return "uint8";
    case ncclInt32: return "int32";
    case ncclUint32: return "uint32";
    case ncclInt64: return "int64";
    case ncclUint64: return "uint64";
    case ncclFloat16: return "float16";
    case ncclFloat32: return "float32";
    case ncclFloat64: return "float64";
    case ncclBfloat16: return "bfloat16";
    case ncclFloat8e4m3: return "float8e4m3";
    case ncclFloat8e5m2: return "float8e5m2";
    default: return "invalid";
  }
}

// Calls f.template operator()<T>() with T the storage type of `type`, and
// returns what it returns, so that a caller writes one template instead of a
// twelve-way switch:
//   struct Zero { void* p; size_t n;
//     template <typename T> void operator()() { std::fill_n((T*)p, n, T{}); } };
//   dispatchType(type, Zero{buf, n});
// The API layer rejects invalid datatypes before any of this runs; for one
// that slips through f is not called and a value-initialised result returns.
CHORUS_HD_TEMPLATE
template <typename F>
CHORUS_HOST_DEVICE CHORUS_INLINE auto dispatchType(ncclDataType_t type, F&& f)
    -> decltype(f.template operator()<float>()) {
  switch (type) {
    case ncclInt8: return f.template operator()<int8_t>();
    case ncclUint8: return f.template operator()<uint8_t>();
    case ncclInt32: return f.template operator()<int32_t>();
    case ncclUint32: return f.template operator()<uint32_t>();
    case ncclInt64: return f.template operator()<int64_t>();
    case ncclUint64: return f.template operator()<uint64_t>();
    case ncclFloat16: return f.template operator()<Half>();
    case ncclFloat32: return f.template operator()<float>();
    case ncclFloat64: return f.template operator()<double>();
    case ncclBfloat16: return f.template operator()<Bf16>();
    case ncclFloat8e4m3: return f.template operator()<Fp8E4M3>();
    case ncclFloat8e5m2: return f.template operator()<Fp8E5M2>();
    default: break;
  }
  using R = decltype(f.template operator()<float>());
  if constexpr (std::is_void<R>::value) {
    return;
  } else {
    return R{};
  }
}

}  // namespace chorus
