// Datatype storage and conversions: exhaustive round trips, rounding ties,
// saturation and NaN, and (when the CUDA headers are around) bit-for-bit
// agreement with CUDA's own host conversions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "collectives/datatypes.h"

using namespace chorus;

namespace {

// Value of a binary floating-point pattern computed from the format's
// definition (independent of the code under test). expBits/manBits/bias
// describe the format; infNan says whether the all-ones exponent is special.
double decode(uint32_t bits, int expBits, int manBits, int bias) {
  const uint32_t sign = bits >> (expBits + manBits);
  const uint32_t e = (bits >> manBits) & ((1u << expBits) - 1);
  const uint32_t m = bits & ((1u << manBits) - 1);
  const double mag = e == 0 ? std::ldexp(double(m), 1 - bias - manBits)
                            : std::ldexp(double((1u << manBits) | m), int(e) - bias - manBits);
  return sign ? -mag : mag;
}

// Used by the comparisons against CUDA's own conversions (when built with them).
[[maybe_unused]] bool sameFloat(float a, float b) {
  return floatToBits(a) == floatToBits(b);
}

}  // namespace

TEST(DatatypeConversion, E4M3AllPatternsDecodeAndRoundTrip) {
  for (uint32_t b = 0; b < 256; ++b) {
    const float f = Fp8E4M3{uint8_t(b)}.toFloat();
    if ((b & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(f)) << b;
      EXPECT_EQ(Fp8E4M3::fromFloat(f).bits, 0x7f) << b;  // canonical NaN, sign dropped
      continue;
    }
    EXPECT_EQ(double(f), decode(b, 4, 3, 7)) << b;
    EXPECT_EQ(Fp8E4M3::fromFloat(f).bits, b) << b;  // -0 included
  }
  EXPECT_EQ(Fp8E4M3{0x7e}.toFloat(), 448.0f);
  EXPECT_EQ(Fp8E4M3{0x01}.toFloat(), 0x1p-9f);
}

TEST(DatatypeConversion, E5M2AllPatternsDecodeAndRoundTrip) {
  for (uint32_t b = 0; b < 256; ++b) {
    const float f = Fp8E5M2{uint8_t(b)}.toFloat();
    const uint32_t em = b & 0x7f;
    if (em > 0x7c) {
      EXPECT_TRUE(std::isnan(f)) << b;
      EXPECT_EQ(Fp8E5M2::fromFloat(f).bits, 0x7f) << b;
    } else if (em == 0x7c) {
      EXPECT_TRUE(std::isinf(f)) << b;
      EXPECT_EQ(std::signbit(f), b >= 0x80) << b;
      // SATFINITE: infinity does not survive the way back.
      EXPECT_EQ(Fp8E5M2::fromFloat(f).bits, (b & 0x80) | 0x7b) << b;
    } else {
      EXPECT_EQ(double(f), decode(b, 5, 2, 15)) << b;
      EXPECT_EQ(Fp8E5M2::fromFloat(f).bits, b) << b;
    }
  }
  EXPECT_EQ(Fp8E5M2{0x7b}.toFloat(), 57344.0f);
  EXPECT_EQ(Fp8E5M2{0x01}.toFloat(), 0x1p-16f);
}

TEST(DatatypeConversion, HalfAllPatternsDecodeAndRoundTrip) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = Half{uint16_t(b)}.toFloat();
    const uint32_t em = b & 0x7fff;
    if (em > 0x7c00) {
      ASSERT_TRUE(std::isnan(f)) << b;
      ASSERT_EQ(Half::fromFloat(f).bits, 0x7fff) << b;
    } else if (em == 0x7c00) {
      ASSERT_TRUE(std::isinf(f)) << b;
      ASSERT_EQ(Half::fromFloat(f).bits, b) << b;
    } else {
      ASSERT_EQ(double(f), decode(b, 5, 10, 15)) << b;
      ASSERT_EQ(Half::fromFloat(f).bits, b) << b;
    }
  }
}

TEST(DatatypeConversion, Bf16AllPatternsDecodeAndRoundTrip) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = Bf16{uint16_t(b)}.toFloat();
    const uint32_t em = b & 0x7fff;
    if (em > 0x7f80) {
      ASSERT_TRUE(std::isnan(f)) << b;
      ASSERT_EQ(Bf16::fromFloat(f).bits, 0x7fff) << b;
    } else if (em == 0x7f80) {
      ASSERT_TRUE(std::isinf(f)) << b;
      ASSERT_EQ(Bf16::fromFloat(f).bits, b) << b;
    } else {
      ASSERT_EQ(double(f), decode(b, 8, 7, 127)) << b;
      ASSERT_EQ(Bf16::fromFloat(f).bits, b) << b;
    }
  }
}

TEST(DatatypeConversion, HalfRoundsTiesToEvenAndOverflowsToInfinity) {
  EXPECT_EQ(Half::fromFloat(1.0f + 0x1p-11f).bits, 0x3c00);              // tie -> even 1.0
  EXPECT_EQ(Half::fromFloat(1.0f + 3 * 0x1p-11f).bits, 0x3c02);          // tie -> even up
  EXPECT_EQ(Half::fromFloat(1.0f + 0x1p-11f + 0x1p-20f).bits, 0x3c01);   // above the tie
  EXPECT_EQ(Half::fromFloat(-(1.0f + 0x1p-11f)).bits, 0xbc00);
  EXPECT_EQ(Half::fromFloat(0x1p-25f).bits, 0x0000);                     // half the smallest subnormal
  EXPECT_EQ(Half::fromFloat(3 * 0x1p-25f).bits, 0x0002);
  EXPECT_EQ(Half::fromFloat(-0x1p-30f).bits, 0x8000);                    // underflow keeps the sign
  EXPECT_EQ(Half::fromFloat(0x1p-14f - 0x1p-26f).bits, 0x0400);          // rounds up into the normals
  EXPECT_EQ(Half::fromFloat(65504.0f).bits, 0x7bff);
  EXPECT_EQ(Half::fromFloat(65519.99f).bits, 0x7bff);
  EXPECT_EQ(Half::fromFloat(65520.0f).bits, 0x7c00);                     // tie with 2^16 -> inf
  EXPECT_EQ(Half::fromFloat(-1e30f).bits, 0xfc00);
  EXPECT_EQ(Half::fromFloat(-std::numeric_limits<float>::quiet_NaN()).bits, 0x7fff);
}

TEST(DatatypeConversion, Bf16RoundsTiesToEven) {
  EXPECT_EQ(Bf16::fromFloat(1.0f + 0x1p-8f).bits, 0x3f80);
  EXPECT_EQ(Bf16::fromFloat(1.0f + 3 * 0x1p-8f).bits, 0x3f82);
  EXPECT_EQ(Bf16::fromFloat(1.0f + 0x1p-8f + 0x1p-20f).bits, 0x3f81);
  EXPECT_EQ(Bf16::fromFloat(std::numeric_limits<float>::max()).bits, 0x7f80);  // rounds to inf
  EXPECT_EQ(Bf16::fromFloat(std::numeric_limits<float>::denorm_min()).bits, 0x0000);
  EXPECT_EQ(Bf16::fromFloat(-std::numeric_limits<float>::quiet_NaN()).bits, 0x7fff);
}

TEST(DatatypeConversion, Fp8SaturatesFiniteAndKeepsNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(Fp8E4M3::fromFloat(1000.0f).bits, 0x7e);
  EXPECT_EQ(Fp8E4M3::fromFloat(-1000.0f).bits, 0xfe);
  EXPECT_EQ(Fp8E4M3::fromFloat(464.0f).bits, 0x7e);  // tie above 448 -> even 448
  EXPECT_EQ(Fp8E4M3::fromFloat(inf).bits, 0x7e);
  EXPECT_EQ(Fp8E4M3::fromFloat(-inf).bits, 0xfe);
  EXPECT_EQ(Fp8E4M3::fromFloat(nan).bits, 0x7f);
  EXPECT_EQ(Fp8E4M3::fromFloat(-nan).bits, 0x7f);
  EXPECT_EQ(Fp8E4M3::fromFloat(432.0f).bits, 0x7e);  // tie 416|448 -> even 448
  EXPECT_EQ(Fp8E4M3::fromFloat(400.0f).bits, 0x7c);  // tie 384|416 -> even 384
  EXPECT_EQ(Fp8E4M3::fromFloat(0x1p-10f).bits, 0x00);  // tie 0|2^-9 -> 0
  EXPECT_EQ(Fp8E4M3::fromFloat(3 * 0x1p-10f).bits, 0x02);
  EXPECT_EQ(Fp8E4M3::fromFloat(-0x1p-12f).bits, 0x80);

  EXPECT_EQ(Fp8E5M2::fromFloat(1e6f).bits, 0x7b);
  EXPECT_EQ(Fp8E5M2::fromFloat(57344.0f).bits, 0x7b);
  EXPECT_EQ(Fp8E5M2::fromFloat(61440.0f).bits, 0x7b);  // would be inf without SATFINITE
  EXPECT_EQ(Fp8E5M2::fromFloat(-inf).bits, 0xfb);
  EXPECT_EQ(Fp8E5M2::fromFloat(nan).bits, 0x7f);
  EXPECT_EQ(Fp8E5M2::fromFloat(1.125f).bits, 0x3c);  // tie 1|1.25 -> even 1
  EXPECT_EQ(Fp8E5M2::fromFloat(1.375f).bits, 0x3e);  // tie 1.25|1.5 -> even 1.5
  EXPECT_EQ(Fp8E5M2::fromFloat(0x1p-17f).bits, 0x00);
  EXPECT_EQ(Fp8E5M2::fromFloat(3 * 0x1p-17f).bits, 0x02);
}

namespace {

struct SizeAndTag {
  template <typename T>
  std::pair<size_t, ncclDataType_t> operator()() const {
    return {sizeof(T), DataTypeOf<T>::value};
  }
};

}  // namespace

TEST(DatatypeDispatch, VisitsTheStorageTypeOfEveryDatatype) {
  for (int t = 0; t < ncclNumTypes; ++t) {
    const auto type = ncclDataType_t(t);
    const auto [size, tag] = dispatchType(type, SizeAndTag{});
    EXPECT_EQ(tag, type) << dataTypeName(type);
    EXPECT_EQ(size, elementSize(type)) << dataTypeName(type);
    EXPECT_GT(size, 0u);
  }
  EXPECT_EQ(elementSize(ncclNumTypes), 0u);
  const auto invalid = dispatchType(ncclNumTypes, SizeAndTag{});
  EXPECT_EQ(invalid.first, 0u);
  EXPECT_STREQ(dataTypeName(ncclFloat8e4m3), "float8e4m3");
}

TEST(DatatypeDispatch, ScalarBitsRoundTrip) {
  EXPECT_EQ(valueToBits(1.0f), 0x3f800000u);
  EXPECT_EQ(bitsToValue<float>(0x3f800000u), 1.0f);
  EXPECT_EQ(valueToBits(int8_t(-1)), 0xffu);
  EXPECT_EQ(bitsToValue<int8_t>(0xffu), -1);
  EXPECT_EQ(valueToBits(Half{0x3c00}), 0x3c00u);
  EXPECT_EQ(bitsToValue<double>(valueToBits(-2.5)), -2.5);
}

// ---- against CUDA's host implementations ---------------------------------------
// nccl.h includes cuda_fp16.h, cuda_bf16.h and cuda_fp8.h when the CUDA
// headers are on the include path (chorus_core's users get it through
// CUDA::cudart_static when the build found CUDA).
#if defined(CHORUS_HAVE_CUDA) && defined(__has_include)
#if __has_include(<cuda_fp16.h>) && __has_include(<cuda_bf16.h>) && __has_include(<cuda_fp8.h>)
#define CHORUS_TEST_AGAINST_CUDA 1
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#endif
#endif

#if defined(CHORUS_TEST_AGAINST_CUDA)
namespace {

uint16_t cudaHalf(float f) {
  const __half h = __float2half_rn(f);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
uint16_t cudaBf16(float f) {
  const __nv_bfloat16 h = __float2bfloat16_rn(f);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
uint8_t cudaE4m3(float f) { return __nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E4M3); }
uint8_t cudaE5m2(float f) { return __nv_cvt_float_to_fp8(f, __NV_SATFINITE, __NV_E5M2); }

// Checks all four float -> narrow conversions for one input; returns the
// number of mismatches and reports the first few.
int compareOne(float f, int* reported) {
  int bad = 0;
  auto check = [&](const char* what, uint32_t ours, uint32_t cuda) {
    if (ours == cuda) return;
    ++bad;
    if ((*reported)++ < 10) {
      ADD_FAILURE() << what << "(0x" << std::hex << floatToBits(f) << "): ours 0x" << ours
                    << " cuda 0x" << cuda;
    }
  };
  check("half", Half::fromFloat(f).bits, cudaHalf(f));
  check("bf16", Bf16::fromFloat(f).bits, cudaBf16(f));
  check("e4m3", Fp8E4M3::fromFloat(f).bits, cudaE4m3(f));
  check("e5m2", Fp8E5M2::fromFloat(f).bits, cudaE5m2(f));
  return bad;
}

}  // namespace

TEST(DatatypeConversion, MatchesCudaOnRandomAndBoundaryFloats) {
  int reported = 0;
  int bad = 0;
  std::mt19937 rng(12345);
  // Random bit patterns: every exponent, NaNs and infinities included.
  for (int i = 0; i < 1500000; ++i) bad += compareOne(bitsToFloat(uint32_t(rng())), &reported);
  // Random values in the narrow formats' ranges, where rounding happens.
  std::uniform_int_distribution<int> exponent(-30, 20);
  for (int i = 0; i < 1500000; ++i) {
    const float m = 1.0f + float(rng() & 0x7fffff) * 0x1p-23f;
    const float f = std::ldexp(m, exponent(rng)) * ((rng() & 1) ? -1.0f : 1.0f);
    bad += compareOne(f, &reported);
  }
  // Every representable half and fp8 value, the midpoints between neighbours
  // (the ties) and one float ulp either side of each.
  auto around = [&](float f) {
    bad += compareOne(f, &reported);
    bad += compareOne(std::nextafter(f, 1e30f), &reported);
    bad += compareOne(std::nextafter(f, -1e30f), &reported);
  };
  for (uint32_t b = 0; b < 0x7c00; ++b) {
    const float lo = Half{uint16_t(b)}.toFloat();
    const float hi = Half{uint16_t(b + 1)}.toFloat();
    for (float s : {1.0f, -1.0f}) {
      around(s * lo);
      around(s * (0.5f * lo + 0.5f * hi));  // exact in float
    }
  }
  for (uint32_t b = 0; b < 0x7f80; b += 7) {  // bf16 ties: every seventh pattern
    const float lo = Bf16{uint16_t(b)}.toFloat();
    const float hi = Bf16{uint16_t(b + 1)}.toFloat();
    around(lo);
    around(0.5f * lo + 0.5f * hi);
  }
  auto fp8 = [](bool e5m2, uint32_t b) {
    return e5m2 ? Fp8E5M2{uint8_t(b)}.toFloat() : Fp8E4M3{uint8_t(b)}.toFloat();
  };
  for (uint32_t b = 1; b < 0x7f; ++b) {
    for (bool e5m2 : {false, true}) {
      const float lo = fp8(e5m2, b);
      const float hi = fp8(e5m2, b + 1);
      if (std::isfinite(lo) && !std::isfinite(hi)) {  // around the largest finite value
        around(lo + (lo - fp8(e5m2, b - 1)) * 0.5f);  // the tie above it
        around(lo * 1.0625f);
        around(lo * 1.125f);
      }
      for (float s : {1.0f, -1.0f}) {
        around(s * lo);
        around(s * (0.5f * lo + 0.5f * hi));
      }
    }
  }
  for (float f : {0.0f, -0.0f, 65504.0f, 65520.0f, 448.0f, 464.0f, 57344.0f, 61440.0f,
                  std::numeric_limits<float>::max(), std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(),
                  std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min()}) {
    around(f);
  }
  EXPECT_EQ(bad, 0);
}

TEST(DatatypeConversion, ToFloatMatchesCudaForEveryPattern) {
  for (uint32_t b = 0; b < 65536; ++b) {
    __half_raw raw;
    raw.x = uint16_t(b);
    const float cuda = __half2float(__half(raw));
    const float ours = Half{uint16_t(b)}.toFloat();
    ASSERT_TRUE(sameFloat(ours, cuda) || (std::isnan(ours) && std::isnan(cuda))) << b;
    __nv_bfloat16_raw braw;
    braw.x = uint16_t(b);
    const float bcuda = __bfloat162float(__nv_bfloat16(braw));
    ASSERT_TRUE(sameFloat(Bf16{uint16_t(b)}.toFloat(), bcuda) || std::isnan(bcuda)) << b;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    for (bool e5m2 : {false, true}) {
      const __half_raw raw = __nv_cvt_fp8_to_halfraw(uint8_t(b), e5m2 ? __NV_E5M2 : __NV_E4M3);
      const float cuda = __half2float(__half(raw));
      const float ours = e5m2 ? Fp8E5M2{uint8_t(b)}.toFloat() : Fp8E4M3{uint8_t(b)}.toFloat();
      ASSERT_TRUE(sameFloat(ours, cuda) || (std::isnan(ours) && std::isnan(cuda)))
          << b << (e5m2 ? " e5m2" : " e4m3");
    }
  }
}
#endif  // CHORUS_TEST_AGAINST_CUDA
