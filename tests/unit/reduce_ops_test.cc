// reduceCopy against a scalar reference for every datatype and operator, with
// and without a peer, pre and post steps, in place and at counts that leave
// tails after the vector loops; plus the corner cases of the operators.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "collectives/reduce_copy.h"
#include "collectives/reduce_ops.h"

using namespace chorus;

namespace {

template <typename T>
double toDouble(T x) {
  return double(toCompute(x));
}

template <typename T>
T fromDouble(double x) {
  if constexpr (kIsNarrowFloat<T>) {
    return T::fromFloat(float(x));
  } else if constexpr (std::is_integral<T>::value) {
    return T(int64_t(x));
  } else {
    return T(x);
  }
}

// Small inputs whose every result below is exact in the type (E5M2 has only
// three significant bits, so it gets [-2, 2]; unsigned types get [0, 8]).
template <typename T>
double input(size_t i, int salt) {
  const int k = int((i * (salt ? 7 : 5) + (salt ? 3 : 1)) % 9);
  if constexpr (std::is_same<T, Fp8E5M2>::value) return double(k % 5 - 2);
  if constexpr (std::is_unsigned<T>::value) return double(k);
  return double(k - 4);
}

enum class Alias { None, DstIsLocal, DstIsPeer };

const char* aliasName(Alias a) {
  switch (a) {
    case Alias::None: return "separate";
    case Alias::DstIsLocal: return "dst==local";
    case Alias::DstIsPeer: return "dst==peer";
  }
  return "?";
}

struct Config {
  RedOpArgs op;
  bool withPeer;
  bool pre;
  bool post;
  Alias alias;
  size_t count;
  size_t offset;  // elements; 1 misaligns every buffer against the vectors
};

std::string describe(const Config& c) {
  std::ostringstream s;
  s << dataTypeName(c.op.type) << " " << redOpKindName(c.op.kind) << " peer=" << c.withPeer
    << " pre=" << c.pre << " post=" << c.post << " " << aliasName(c.alias)
    << " count=" << c.count << " offset=" << c.offset;
  return s.str();
}

template <typename T>
double referenceElement(const Config& c, double p, double l) {
  const bool integral = std::is_integral<T>::value;
  double x = l;
  if (c.pre && c.op.kind == RedOpKind::PreMulSum) x *= toDouble(bitsToValue<T>(c.op.scalar));
  if (c.withPeer) {
    switch (c.op.kind) {
      case RedOpKind::Prod: x = p * x; break;
      case RedOpKind::Max: x = std::max(p, x); break;
      case RedOpKind::Min: x = std::min(p, x); break;
      default: x = p + x; break;
    }
  }
  if (c.post && c.op.kind == RedOpKind::SumPostDiv) {
    x /= double(c.op.scalar);
    if (integral) x = std::trunc(x);
  }
  return x;
}

// Runs one configuration; returns false (after one failure message) on the
// first wrong element.
template <typename T>
bool runConfig(const Config& c) {
  const size_t n = c.count + c.offset;
  std::vector<T> peerBuf(n + 1), localBuf(n + 1), dstBuf(n + 1);
  for (size_t i = 0; i < n; ++i) {
    peerBuf[i] = fromDouble<T>(input<T>(i, 1));
    localBuf[i] = fromDouble<T>(input<T>(i, 0));
  }
  // A sentinel after the range catches writes past count.
  const T sentinel = fromDouble<T>(1.0);
  dstBuf[n] = sentinel;

  T* peer = c.withPeer ? peerBuf.data() + c.offset : nullptr;
  T* local = localBuf.data() + c.offset;
  T* dst = dstBuf.data() + c.offset;
  if (c.alias == Alias::DstIsLocal) {
    localBuf[n] = sentinel;
    dst = local;
  } else if (c.alias == Alias::DstIsPeer) {
    peerBuf[n] = sentinel;
    dst = peer;
  }
  const std::vector<T> peerIn = peerBuf, localIn = localBuf;

  reduceCopy(c.op, peer, local, c.pre, dst, c.post, c.count);

  for (size_t i = 0; i < c.count; ++i) {
    const size_t k = i + c.offset;
    const double want = toDouble(fromDouble<T>(
        referenceElement<T>(c, toDouble(peerIn[k]), toDouble(localIn[k]))));
    const double got = toDouble(dst[i]);
    if (got != want) {
      ADD_FAILURE() << describe(c) << ": element " << i << " is " << got << ", expected "
                    << want << " (peer " << toDouble(peerIn[k]) << ", local "
                    << toDouble(localIn[k]) << ")";
      return false;
    }
  }
  if (toDouble(dst[c.count]) != toDouble(sentinel)) {
    ADD_FAILURE() << describe(c) << ": wrote past the end";
    return false;
  }
  if (c.alias != Alias::DstIsLocal &&
      std::memcmp(local, localIn.data() + c.offset, c.count * sizeof(T)) != 0) {
    ADD_FAILURE() << describe(c) << ": local input changed";
    return false;
  }
  return true;
}

// The operators every type is tested with.
template <typename T>
std::vector<RedOpArgs> opsFor() {
  const ncclDataType_t type = DataTypeOf<T>::value;
  const bool floating = kIsFloating<T>;
  std::vector<RedOpArgs> ops = {
      builtinRedOp(ncclSum, type, 4),
      builtinRedOp(ncclProd, type, 4),
      builtinRedOp(ncclMax, type, 4),
      builtinRedOp(ncclMin, type, 4),
      // Floats: PreMulSum by 1/2 (exact); integers: SumPostDiv by 3, which
      // checks truncation toward zero of negative sums.
      builtinRedOp(ncclAvg, type, floating ? 2 : 3),
  };
  const T scalar = fromDouble<T>(std::is_unsigned<T>::value ? 3.0 : -2.0);
  ops.push_back(preMulSumOp(type, &scalar));
  if (floating) {  // SumPostDiv is well defined for floats too
    RedOpArgs div;
    div.kind = RedOpKind::SumPostDiv;
    div.type = type;
    div.scalar = 2;
    ops.push_back(div);
  }
  return ops;
}

struct SweepType {
  int* failures;
  template <typename T>
  void operator()() const {
    for (const RedOpArgs& op : opsFor<T>()) {
      for (bool withPeer : {false, true}) {
        for (bool pre : {false, true}) {
          for (bool post : {false, true}) {
            for (Alias alias : {Alias::None, Alias::DstIsLocal, Alias::DstIsPeer}) {
              if (alias == Alias::DstIsPeer && !withPeer) continue;
              for (size_t count : {0, 1, 7, 1023, 4099}) {
                for (size_t offset : {0, 1}) {
                  if (!runConfig<T>(Config{op, withPeer, pre, post, alias, count, offset})) {
                    ++*failures;
                  }
                }
              }
            }
          }
        }
      }
    }
  }
};

}  // namespace

TEST(ReduceCopy, EveryDatatypeAndOpMatchesScalarReference) {
  int failures = 0;
  for (int t = 0; t < ncclNumTypes; ++t) dispatchType(ncclDataType_t(t), SweepType{&failures});
  EXPECT_EQ(failures, 0);
}

// Where the CPU has wider loops (AVX2), the baseline ones must agree too.
TEST(ReduceCopy, BaselineLoopsMatchScalarReference) {
  if (!reduceCopyHasWideLoops()) GTEST_SKIP() << "the baseline loops are the only ones here";
  reduceCopyForceBaseline(true);
  int failures = 0;
  for (int t = 0; t < ncclNumTypes; ++t) dispatchType(ncclDataType_t(t), SweepType{&failures});
  reduceCopyForceBaseline(false);
  EXPECT_EQ(failures, 0);
}

// ---- every loop against the scalar operators, on arbitrary bits ------------------
// Random bit patterns give NaNs, infinities, subnormals, overflowing products
// and wrapping integers. The vector loops (and F16C for half) must give what
// the scalar functors give, bit for bit (for float and double, NaN payloads
// may differ: which operand's payload an addition keeps is up to the compiler).

namespace {

template <typename T>
bool sameResult(T a, T b) {
  if constexpr (std::is_floating_point<T>::value) {
    if (std::isnan(a) && std::isnan(b)) return true;
  }
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

struct RandomBitsSweep {
  int* failures;
  template <typename T>
  void operator()() const {
    constexpr size_t kCount = 4099;
    std::mt19937_64 rng(uint64_t(DataTypeOf<T>::value) + 1);
    std::vector<T> peer(kCount), local(kCount), out(kCount), want(kCount);
    for (size_t i = 0; i < kCount; ++i) {
      const uint64_t a = rng(), b = rng();
      std::memcpy(&peer[i], &a, sizeof(T));
      std::memcpy(&local[i], &b, sizeof(T));
    }
    const ncclDataType_t type = DataTypeOf<T>::value;
    std::vector<RedOpArgs> ops;
    for (ncclRedOp_t r : {ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg}) {
      ops.push_back(builtinRedOp(r, type, 3));
    }
    const T scalar = fromDouble<T>(std::is_integral<T>::value ? 3.0 : 0.3);
    ops.push_back(preMulSumOp(type, &scalar));
    RedOpArgs div;
    div.kind = RedOpKind::SumPostDiv;
    div.type = type;
    div.scalar = 3;
    ops.push_back(div);
    for (const RedOpArgs& op : ops) {
      for (bool withPeer : {false, true}) {
        for (bool pre : {false, true}) {
          for (bool post : {false, true}) {
            reduceCopy(op, withPeer ? peer.data() : nullptr, local.data(), pre, out.data(), post,
                       kCount);
            dispatchRedOp<T>(op, [&](const auto& fn) {
              for (size_t i = 0; i < kCount; ++i) {
                T x = local[i];
                if (pre) x = fn.pre(x);
                if (withPeer) x = fn(peer[i], x);
                if (post) x = fn.post(x);
                want[i] = x;
              }
            });
            for (size_t i = 0; i < kCount; ++i) {
              if (!sameResult(out[i], want[i])) {
                ADD_FAILURE() << dataTypeName(type) << " " << redOpKindName(op.kind)
                              << " peer=" << withPeer << " pre=" << pre << " post=" << post
                              << ": element " << i << " differs from the scalar operator";
                ++*failures;
                break;
              }
            }
          }
        }
      }
    }
  }
};

}  // namespace

TEST(ReduceCopy, VectorLoopsMatchScalarOperatorsOnRandomBits) {
  int failures = 0;
  for (int t = 0; t < ncclNumTypes; ++t) dispatchType(ncclDataType_t(t), RandomBitsSweep{&failures});
  EXPECT_EQ(failures, 0);
  if (reduceCopyHasWideLoops()) {
    reduceCopyForceBaseline(true);
    for (int t = 0; t < ncclNumTypes; ++t) {
      dispatchType(ncclDataType_t(t), RandomBitsSweep{&failures});
    }
    reduceCopyForceBaseline(false);
    EXPECT_EQ(failures, 0) << "baseline loops";
  }
}

// ---- operator corner cases -----------------------------------------------------

namespace {

template <typename T>
T reduce2(const RedOpArgs& op, T peer, T local, bool pre = true, bool post = true) {
  T out;
  reduceCopy(op, &peer, &local, pre, &out, post, 1);
  return out;
}

}  // namespace

TEST(ReduceOps, IntegersWrapOnOverflow) {
  EXPECT_EQ(reduce2<int8_t>(builtinRedOp(ncclSum, ncclInt8, 2), 100, 100), -56);
  EXPECT_EQ(reduce2<uint8_t>(builtinRedOp(ncclSum, ncclUint8, 2), 200, 100), 44);
  EXPECT_EQ(reduce2<int32_t>(builtinRedOp(ncclProd, ncclInt32, 2),
                             std::numeric_limits<int32_t>::max(), 2), -2);
  EXPECT_EQ(reduce2<int64_t>(builtinRedOp(ncclSum, ncclInt64, 2),
                             std::numeric_limits<int64_t>::max(), 1),
            std::numeric_limits<int64_t>::min());
  EXPECT_EQ(reduce2<uint64_t>(builtinRedOp(ncclMax, ncclUint64, 2), ~0ull, 1), ~0ull);
  EXPECT_EQ(reduce2<int64_t>(builtinRedOp(ncclMin, ncclInt64, 2), -5, 3), -5);
}

TEST(ReduceOps, IntegerAvgTruncatesTowardZeroWithWideDivisors) {
  EXPECT_EQ(reduce2<int32_t>(builtinRedOp(ncclAvg, ncclInt32, 2), -7, 0), -3);
  EXPECT_EQ(reduce2<int32_t>(builtinRedOp(ncclAvg, ncclInt32, 2), 7, 0), 3);
  // 130 ranks does not fit int8; a divisor cast to int8 (-126) would give 1.
  EXPECT_EQ(reduce2<int8_t>(builtinRedOp(ncclAvg, ncclInt8, 130), -127, 0), 0);
  EXPECT_EQ(reduce2<uint8_t>(builtinRedOp(ncclAvg, ncclUint8, 200), 250, 0), 1);
  EXPECT_EQ(reduce2<uint64_t>(builtinRedOp(ncclAvg, ncclUint64, 3), ~0ull, 0), ~0ull / 3);
  // post off: the plain sum, to be divided later by whoever applies post.
  EXPECT_EQ(reduce2<int32_t>(builtinRedOp(ncclAvg, ncclInt32, 2), -7, 0, true, false), -7);
}

// The host divides 8- and 32-bit integers in double (it vectorizes); that
// must equal C's truncating integer division for every value and divisor.
namespace {

template <typename T>
void checkDivision(std::mt19937_64& rng, uint64_t divisor, int* bad) {
  constexpr size_t kCount = 4096;
  std::vector<T> in(kCount), out(kCount);
  for (size_t i = 0; i < kCount; ++i) in[i] = T(rng());
  in[0] = std::numeric_limits<T>::min();
  in[1] = std::numeric_limits<T>::max();
  in[2] = T(divisor - 1);
  in[3] = T(divisor);
  in[4] = T(0 - divisor);
  RedOpArgs op;
  op.kind = RedOpKind::SumPostDiv;
  op.type = DataTypeOf<T>::value;
  op.scalar = divisor;
  reduceCopy(op, nullptr, in.data(), true, out.data(), true, kCount);
  using W = typename std::conditional<std::is_signed<T>::value, int64_t, uint64_t>::type;
  for (size_t i = 0; i < kCount; ++i) {
    const T want = std::is_signed<T>::value ? T(int64_t(in[i]) / int64_t(divisor))
                                            : T(uint64_t(W(in[i])) / divisor);
    if (out[i] != want && (*bad)++ < 5) {
      ADD_FAILURE() << dataTypeName(op.type) << " " << int64_t(in[i]) << " / " << divisor
                    << " gave " << int64_t(out[i]) << ", want " << int64_t(want);
    }
  }
}

}  // namespace

TEST(ReduceOps, IntegerAvgDivisionIsExactForAnyValueAndDivisor) {
  std::mt19937_64 rng(7);
  int bad = 0;
  std::vector<uint64_t> divisors = {1, 2, 3, 7, 8, 100, 127, 128, 255, 256, 1000, 65535, 65536,
                                    (1ull << 31) - 1, 1ull << 31, (1ull << 32) - 1, 1ull << 32,
                                    1ull << 53, (1ull << 53) + 1, 1ull << 62};
  for (int i = 0; i < 30; ++i) divisors.push_back(1 + rng() % 100000);
  for (uint64_t d : divisors) {
    checkDivision<int8_t>(rng, d, &bad);
    checkDivision<uint8_t>(rng, d, &bad);
    checkDivision<int32_t>(rng, d, &bad);
    checkDivision<uint32_t>(rng, d, &bad);
    checkDivision<int64_t>(rng, d, &bad);
    checkDivision<uint64_t>(rng, d, &bad);
  }
  EXPECT_EQ(bad, 0);
}

TEST(ReduceOps, MaxAndMinIgnoreNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const RedOpArgs fmax = builtinRedOp(ncclMax, ncclFloat32, 2);
  const RedOpArgs fmin = builtinRedOp(ncclMin, ncclFloat32, 2);
  EXPECT_EQ(reduce2<float>(fmax, nan, 1.0f), 1.0f);
  EXPECT_EQ(reduce2<float>(fmax, 1.0f, nan), 1.0f);
  EXPECT_EQ(reduce2<float>(fmin, nan, -1.0f), -1.0f);
  EXPECT_EQ(reduce2<float>(fmin, -1.0f, nan), -1.0f);
  EXPECT_TRUE(std::isnan(reduce2<float>(fmax, nan, nan)));
  EXPECT_EQ(reduce2<double>(builtinRedOp(ncclMax, ncclFloat64, 2), double(nan), 2.0), 2.0);

  const Half hnan{0x7e00}, one = Half::fromFloat(1.0f);
  EXPECT_EQ(reduce2<Half>(builtinRedOp(ncclMax, ncclFloat16, 2), hnan, one).bits, one.bits);
  EXPECT_EQ(reduce2<Half>(builtinRedOp(ncclMin, ncclFloat16, 2), one, hnan).bits, one.bits);
  EXPECT_EQ(reduce2<Half>(builtinRedOp(ncclMax, ncclFloat16, 2), hnan, hnan).bits, 0x7fff);
  const Fp8E4M3 enan{0xff}, two = Fp8E4M3::fromFloat(2.0f);
  EXPECT_EQ(reduce2<Fp8E4M3>(builtinRedOp(ncclMax, ncclFloat8e4m3, 2), enan, two).bits, two.bits);
  EXPECT_EQ(reduce2<Fp8E4M3>(builtinRedOp(ncclMax, ncclFloat8e4m3, 2), enan, enan).bits, 0x7f);
}

TEST(ReduceOps, SumPropagatesNaNAndInfinity) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isnan(reduce2<float>(builtinRedOp(ncclSum, ncclFloat32, 2), nan, 1.0f)));
  EXPECT_TRUE(std::isnan(reduce2<float>(builtinRedOp(ncclSum, ncclFloat32, 2), inf, -inf)));
  EXPECT_EQ(reduce2<Half>(builtinRedOp(ncclSum, ncclFloat16, 2), Half{0x7c00}, Half{0x3c00}).bits,
            0x7c00);
  EXPECT_EQ(reduce2<Bf16>(builtinRedOp(ncclSum, ncclBfloat16, 2), Bf16{0x7fc0}, Bf16{0x3f80}).bits,
            0x7fff);
}

TEST(ReduceOps, NarrowFloatsRoundOnceToNearestEven) {
  const RedOpArgs hsum = builtinRedOp(ncclSum, ncclFloat16, 2);
  // 2049 and 2051 are ties in half (spacing 2 above 2048).
  EXPECT_EQ(reduce2<Half>(hsum, Half::fromFloat(2048), Half::fromFloat(1)).toFloat(), 2048.0f);
  EXPECT_EQ(reduce2<Half>(hsum, Half::fromFloat(2048), Half::fromFloat(3)).toFloat(), 2052.0f);
  EXPECT_EQ(reduce2<Half>(hsum, Half::fromFloat(65504), Half::fromFloat(32)).bits, 0x7c00);
  const RedOpArgs bsum = builtinRedOp(ncclSum, ncclBfloat16, 2);
  EXPECT_EQ(reduce2<Bf16>(bsum, Bf16::fromFloat(256), Bf16::fromFloat(1)).toFloat(), 256.0f);
  EXPECT_EQ(reduce2<Bf16>(bsum, Bf16::fromFloat(256), Bf16::fromFloat(3)).toFloat(), 260.0f);
  // fp8 saturates instead of overflowing.
  EXPECT_EQ(reduce2<Fp8E4M3>(builtinRedOp(ncclSum, ncclFloat8e4m3, 2), Fp8E4M3{0x7e},
                             Fp8E4M3{0x7e}).bits, 0x7e);
  EXPECT_EQ(reduce2<Fp8E5M2>(builtinRedOp(ncclProd, ncclFloat8e5m2, 2), Fp8E5M2{0xfb},
                             Fp8E5M2::fromFloat(4)).bits, 0xfb);
  // A half product is rounded once: 1.5 * (1 + 2^-10) = 1.5 + 1.5*2^-10 is
  // a tie between 1.5+2^-10 and 1.5+2^-9 and goes to the even one.
  const Half h = reduce2<Half>(builtinRedOp(ncclProd, ncclFloat16, 2), Half::fromFloat(1.5f),
                               Half{0x3c01});
  EXPECT_EQ(h.bits, 0x3e02);
}

TEST(ReduceOps, BuiltinAvgScalarsFollowNccl) {
  RedOpArgs a = builtinRedOp(ncclAvg, ncclFloat32, 3);
  EXPECT_EQ(a.kind, RedOpKind::PreMulSum);
  EXPECT_EQ(bitsToValue<float>(a.scalar), float(1.0 / 3));
  a = builtinRedOp(ncclAvg, ncclFloat64, 3);
  EXPECT_EQ(bitsToValue<double>(a.scalar), 1.0 / 3);
  a = builtinRedOp(ncclAvg, ncclFloat16, 3);
  EXPECT_EQ(a.scalar, Half::fromFloat(float(1.0 / 3)).bits);
  a = builtinRedOp(ncclAvg, ncclBfloat16, 3);
  EXPECT_EQ(a.scalar, Bf16::fromFloat(float(1.0 / 3)).bits);
  a = builtinRedOp(ncclAvg, ncclFloat8e4m3, 8);
  EXPECT_EQ(a.scalar, Fp8E4M3::fromFloat(0.125f).bits);
  // E4M3's smallest value is 2^-9: from 1024 ranks 1/nranks rounds to 0.
  EXPECT_EQ(builtinRedOp(ncclAvg, ncclFloat8e4m3, 1024).scalar, 0u);
  a = builtinRedOp(ncclAvg, ncclUint32, 5);
  EXPECT_EQ(a.kind, RedOpKind::SumPostDiv);
  EXPECT_EQ(a.scalar, 5u);
  EXPECT_EQ(builtinRedOp(ncclAvg, ncclInt64, 0).scalar, 1u);  // nranks < 1 counts as 1
  EXPECT_EQ(builtinRedOp(ncclMax, ncclInt8, 4).kind, RedOpKind::Max);
  EXPECT_EQ(builtinRedOp(ncclSum, ncclInt8, 4).type, ncclInt8);
}

TEST(ReduceOps, PreMulSumReadsTheScalarInTheElementType) {
  const double d = 0.25;
  RedOpArgs op = preMulSumOp(ncclFloat64, &d);
  EXPECT_EQ(op.kind, RedOpKind::PreMulSum);
  EXPECT_EQ(reduce2<double>(op, 1.0, 8.0), 3.0);
  EXPECT_EQ(reduce2<double>(op, 1.0, 8.0, false), 9.0);  // pre off: plain sum
  const int8_t k = -3;
  EXPECT_EQ(reduce2<int8_t>(preMulSumOp(ncclInt8, &k), 1, 5), -14);
  const Bf16 s = Bf16::fromFloat(0.5f);
  EXPECT_EQ(reduce2<Bf16>(preMulSumOp(ncclBfloat16, &s), Bf16::fromFloat(1), Bf16::fromFloat(3))
                .toFloat(), 2.5f);
  // Without a peer the pre step still applies (a scaled copy).
  double out = 0, in = 4.0;
  reduceCopy(op, nullptr, &in, true, &out, true, 1);
  EXPECT_EQ(out, 1.0);
}
