// launchReduceCopy (the device reduce-copy) against the host's reduceCopy, bit
// for bit, for every datatype and operator: counts from 0 to past a million,
// aligned buffers, buffers that share a misalignment (element loops at both
// ends, 16-byte packs between) and buffers that do not (element loops only),
// out of place and in place, with and without a peer, with and without the
// pre/post steps. Each case also checks that nothing outside dst changed.
//
// Floats and doubles compare bit for bit except that any NaN matches any NaN:
// the GPU's arithmetic returns one canonical NaN where x86 keeps an input's
// payload. The narrow types canonicalise NaN on both sides and compare
// exactly. Skipped, with a message, where no CUDA device is usable.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "collectives/reduce_copy.h"
#include "collectives/reduce_ops.h"
#include "common/result.h"
#include "device/reduce_copy_kernel.h"

using namespace chorus;

namespace {

// Why no device can run the tests, or empty when one can.
std::string noDeviceReason() {
  static const std::string reason = [] {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear the "no driver" error
      return std::string(cudaGetErrorString(err));
    }
    return count == 0 ? std::string("cudaGetDeviceCount returned 0") : std::string();
  }();
  return reason;
}

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Random elements: any bit pattern for integers and the narrow floats (NaN,
// infinities and subnormals included); for float and double mostly values of
// moderate size, so that sums and products round, and one in 32 a random
// pattern.
struct FillRandom {
  unsigned char* p;
  size_t count;
  uint64_t seed;
  template <typename T>
  void operator()() const {
    uint64_t state = seed;
    for (size_t i = 0; i < count; ++i) {
      const uint64_t r = splitmix(state);
      T v;
      if constexpr (std::is_floating_point<T>::value) {
        if (r % 32 == 0) {
          v = bitsToValue<T>(r >> 5);
        } else {
          const T mantissa = T(1) + T(double(r >> 11 & 0xffffff) * 0x1p-24);
          v = std::ldexp(mantissa, int(r >> 40 & 31) - 16) * ((r >> 63) ? T(-1) : T(1));
        }
      } else {
        v = bitsToValue<T>(r);
      }
      std::memcpy(p + i * sizeof(T), &v, sizeof(T));
    }
  }
};

// The index of the first element where the buffers differ (count if none).
struct FirstDifference {
  const unsigned char* a;
  const unsigned char* b;
  size_t count;
  template <typename T>
  size_t operator()() const {
    for (size_t i = 0; i < count; ++i) {
      T x, y;
      std::memcpy(&x, a + i * sizeof(T), sizeof(T));
      std::memcpy(&y, b + i * sizeof(T), sizeof(T));
      if (std::memcmp(&x, &y, sizeof(T)) == 0) continue;
      if constexpr (std::is_floating_point<T>::value) {
        if (std::isnan(x) && std::isnan(y)) continue;
      }
      return i;
    }
    return count;
  }
};

std::string hexElement(const unsigned char* p, size_t size) {
  std::ostringstream out;
  out << "0x" << std::hex;
  for (size_t i = size; i-- > 0;) out << (p[i] >> 4) << (p[i] & 15);
  return out.str();
}

// The operator's arguments as the library builds them: built-in ops for 3
// ranks, PreMulSum by a third of the type (3 for integers), SumPostDiv by 3
// (integer ncclAvg; spelled out for the floating types).
struct Third {
  template <typename T>
  uint64_t operator()() const {
    if constexpr (std::is_integral<T>::value) {
      return valueToBits<T>(T(3));
    } else {
      return valueToBits<T>(fromCompute<T>(ComputeType<T>(1.0 / 3.0)));
    }
  }
};

RedOpArgs makeOp(RedOpKind kind, ncclDataType_t type) {
  switch (kind) {
    case RedOpKind::Sum: return builtinRedOp(ncclSum, type, 3);
    case RedOpKind::Prod: return builtinRedOp(ncclProd, type, 3);
    case RedOpKind::Max: return builtinRedOp(ncclMax, type, 3);
    case RedOpKind::Min: return builtinRedOp(ncclMin, type, 3);
    case RedOpKind::PreMulSum: {
      const uint64_t bits = dispatchType(type, Third{});
      return preMulSumOp(type, &bits);  // little-endian: the value's bytes come first
    }
    case RedOpKind::SumPostDiv: {
      RedOpArgs op = builtinRedOp(ncclAvg, type, 3);
      if (op.kind != RedOpKind::SumPostDiv) op = RedOpArgs{RedOpKind::SumPostDiv, type, 3};
      return op;
    }
  }
  return RedOpArgs{};
}

enum class Layout { Aligned, SameOffset, LocalOffset };
enum class Dst { Separate, IsLocal, IsPeer };

const char* layoutName(Layout l) {
  switch (l) {
    case Layout::Aligned: return "aligned";
    case Layout::SameOffset: return "all shifted by one element";
    case Layout::LocalOffset: return "local shifted by one element";
  }
  return "?";
}

const char* dstName(Dst d) {
  switch (d) {
    case Dst::Separate: return "out of place";
    case Dst::IsLocal: return "dst==local";
    case Dst::IsPeer: return "dst==peer";
  }
  return "?";
}

constexpr size_t kCounts[] = {0, 1, 7, 1023, (1u << 20) + 5};
constexpr size_t kMaxCount = (1u << 20) + 5;
constexpr size_t kGuard = 40;  // elements after the last one, beyond any pack

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) {
    if (cudaMalloc(&p, bytes) != cudaSuccess) p = nullptr;
  }
  ~DeviceBuffer() { cudaFree(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  unsigned char* bytes() const { return static_cast<unsigned char*>(p); }
};

class ReduceCopyGpu : public ::testing::TestWithParam<std::tuple<ncclDataType_t, RedOpKind>> {
 protected:
  void SetUp() override {
    const std::string reason = noDeviceReason();
    if (!reason.empty()) GTEST_SKIP() << "no CUDA device: " << reason;
  }
};

TEST_P(ReduceCopyGpu, MatchesHostBitForBit) {
  const ncclDataType_t type = std::get<0>(GetParam());
  const RedOpArgs op = makeOp(std::get<1>(GetParam()), type);
  const size_t es = elementSize(type);
  const size_t capacity = (kMaxCount + 1 + kGuard) * es;

  // Host images of the three buffers: inputs random, dst a fixed pattern.
  std::vector<unsigned char> peerImage(capacity), localImage(capacity), dstImage(capacity, 0xa5);
  dispatchType(type, FillRandom{peerImage.data(), capacity / es, 1 + uint64_t(type)});
  dispatchType(type, FillRandom{localImage.data(), capacity / es, 100 + uint64_t(type)});
  DeviceBuffer dPeer(capacity), dLocal(capacity), dDst(capacity);
  ASSERT_TRUE(dPeer.p && dLocal.p && dDst.p) << "cudaMalloc of 3 x " << capacity << " bytes failed";

  std::vector<unsigned char> want[3], got(capacity);
  for (size_t count : kCounts) {
    const size_t bytes = (count + 1 + kGuard) * es;  // every buffer, guard included
    for (Layout layout : {Layout::Aligned, Layout::SameOffset, Layout::LocalOffset}) {
      const size_t peerShift = layout == Layout::SameOffset ? es : 0;
      const size_t localShift = layout == Layout::Aligned ? 0 : es;
      const size_t dstShift = layout == Layout::SameOffset ? es : 0;
      for (bool withPeer : {true, false}) {
        for (Dst where : {Dst::Separate, Dst::IsLocal, Dst::IsPeer}) {
          if (where == Dst::IsPeer && !withPeer) continue;
          for (bool prePost : {true, false}) {
            SCOPED_TRACE(::testing::Message()
                         << "count " << count << ", " << layoutName(layout) << ", "
                         << (withPeer ? "with peer" : "no peer") << ", " << dstName(where)
                         << ", pre/post " << (prePost ? "applied" : "not applied"));
            // Host reference, on copies of the images: [0] peer, [1] local, [2] dst.
            want[0].assign(peerImage.begin(), peerImage.begin() + bytes);
            want[1].assign(localImage.begin(), localImage.begin() + bytes);
            want[2].assign(dstImage.begin(), dstImage.begin() + bytes);
            unsigned char* hostDst = where == Dst::IsLocal  ? want[1].data() + localShift
                                     : where == Dst::IsPeer ? want[0].data() + peerShift
                                                            : want[2].data() + dstShift;
            reduceCopy(op, withPeer ? want[0].data() + peerShift : nullptr,
                       want[1].data() + localShift, prePost, hostDst, prePost, count);

            ASSERT_EQ(cudaMemcpy(dPeer.p, peerImage.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
            ASSERT_EQ(cudaMemcpy(dLocal.p, localImage.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
            ASSERT_EQ(cudaMemcpy(dDst.p, dstImage.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
            unsigned char* devDst = where == Dst::IsLocal  ? dLocal.bytes() + localShift
                                    : where == Dst::IsPeer ? dPeer.bytes() + peerShift
                                                           : dDst.bytes() + dstShift;
            ASSERT_EQ(launchReduceCopy(op, withPeer ? dPeer.bytes() + peerShift : nullptr,
                                       dLocal.bytes() + localShift, prePost, devDst, prePost,
                                       count, nullptr),
                      ncclSuccess)
                << lastError();
            ASSERT_EQ(cudaStreamSynchronize(nullptr), cudaSuccess)
                << cudaGetErrorString(cudaGetLastError());

            const DeviceBuffer* devices[3] = {&dPeer, &dLocal, &dDst};
            const char* names[3] = {"peer", "local", "dst"};
            for (int b = 0; b < 3; ++b) {
              ASSERT_EQ(cudaMemcpy(got.data(), devices[b]->p, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
              const size_t n = bytes / es;
              const size_t i = dispatchType(type, FirstDifference{got.data(), want[b].data(), n});
              ASSERT_EQ(i, n) << names[b] << " buffer differs at byte " << i * es << ": device "
                              << hexElement(got.data() + i * es, es) << ", host "
                              << hexElement(want[b].data() + i * es, es);
            }
          }
        }
      }
    }
  }
}

const ncclDataType_t kTypes[] = {ncclInt8,    ncclUint8,   ncclInt32,    ncclUint32,
                                 ncclInt64,   ncclUint64,  ncclFloat16,  ncclFloat32,
                                 ncclFloat64, ncclBfloat16, ncclFloat8e4m3, ncclFloat8e5m2};
const RedOpKind kOps[] = {RedOpKind::Sum, RedOpKind::Prod, RedOpKind::Max,
                          RedOpKind::Min, RedOpKind::PreMulSum, RedOpKind::SumPostDiv};

INSTANTIATE_TEST_SUITE_P(
    AllTypesAndOps, ReduceCopyGpu,
    ::testing::Combine(::testing::ValuesIn(kTypes), ::testing::ValuesIn(kOps)),
    [](const ::testing::TestParamInfo<ReduceCopyGpu::ParamType>& info) {
      return std::string(dataTypeName(std::get<0>(info.param))) + "_" +
             redOpKindName(std::get<1>(info.param));
    });

TEST(ReduceCopyGpuErrors, InvalidDatatypeIsAnErrorWithAMessage) {
  // Checked before anything touches the device, so it runs without one too.
  RedOpArgs op;
  op.type = ncclNumTypes;
  int a = 0, b = 0;
  EXPECT_EQ(launchReduceCopy(op, nullptr, &a, false, &b, false, 1, nullptr), ncclInvalidArgument);
  EXPECT_NE(lastError().find("invalid datatype"), std::string::npos) << lastError();
}

}  // namespace
