// Helpers for the device-communicator tests (device_comm_*_gpu_test.cc):
// ranks as communicators of this process, all bound to GPU 0 (Chorus lets
// several ranks share one GPU), each with its own non-blocking stream; device
// buffers; host images of elements; and one collective on every rank with its
// exact host reference (Job). Public API only: nccl.h and the CUDA runtime.
//
// Inputs are small integers (floats: -8..8, int32: -1000..1000), so that sums
// of up to 4 ranks, and their averages, are exact in every type used here
// (half and bfloat16 included): results are compared byte for byte.
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "nccl.h"

namespace chorus::gputest {

// Why these tests cannot run here, or empty when they can.
inline std::string whyNoDeviceComms() {
  const char* device = getenv("CHORUS_DEVICE");
  if (device != nullptr && strcmp(device, "host") == 0)
    return "CHORUS_DEVICE=host: communicators bind to the host, not to a GPU";
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the "no driver" error
    return std::string("no CUDA device: ") + cudaGetErrorString(err);
  }
  return count == 0 ? "no CUDA device: cudaGetDeviceCount returned 0" : "";
}

#define SKIP_WITHOUT_DEVICE_COMMS()                                    \
  do {                                                                 \
    const std::string why_ = ::chorus::gputest::whyNoDeviceComms();    \
    if (!why_.empty()) GTEST_SKIP() << why_;                           \
  } while (0)

// "what failed: error string (ncclGetLastError)" for assertion messages.
inline std::string ncclText(ncclResult_t r, ncclComm_t comm = nullptr) {
  return std::string(ncclGetErrorString(r)) + " (" + ncclGetLastError(comm) + ")";
}
inline std::string cudaText(cudaError_t e) { return cudaGetErrorString(e); }

#define EXPECT_NCCL_OK(call)                                                        \
  do {                                                                              \
    const ncclResult_t r_ = (call);                                                 \
    EXPECT_EQ(r_, ncclSuccess) << #call << ": " << ::chorus::gputest::ncclText(r_); \
  } while (0)
#define ASSERT_NCCL_OK(call)                                                        \
  do {                                                                              \
    const ncclResult_t r_ = (call);                                                 \
    ASSERT_EQ(r_, ncclSuccess) << #call << ": " << ::chorus::gputest::ncclText(r_); \
  } while (0)
#define ASSERT_CUDA_OK(call)                                                \
  do {                                                                      \
    const cudaError_t e_ = (call);                                          \
    ASSERT_EQ(e_, cudaSuccess) << #call << ": " << cudaGetErrorString(e_);  \
  } while (0)

// A cudaMalloc'ed buffer on the current device (null when that failed).
struct DeviceBuffer {
  void* p = nullptr;
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) {
    if (cudaMalloc(&p, bytes == 0 ? 1 : bytes) != cudaSuccess) p = nullptr;
  }
  ~DeviceBuffer() { cudaFree(p); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p(o.p) { o.p = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  DeviceBuffer(const DeviceBuffer&) = delete;
  unsigned char* bytes() const { return static_cast<unsigned char*>(p); }
};

// Page-locked host memory, so that cudaMemcpyAsync is truly asynchronous
// (null when cudaMallocHost failed).
struct PinnedFloats {
  float* p = nullptr;
  explicit PinnedFloats(size_t count) {
    if (cudaMallocHost(reinterpret_cast<void**>(&p), count * sizeof(float)) != cudaSuccess) p = nullptr;
  }
  ~PinnedFloats() { cudaFreeHost(p); }
  PinnedFloats(PinnedFloats&& o) noexcept : p(o.p) { o.p = nullptr; }
  PinnedFloats(const PinnedFloats&) = delete;
};

// A cudaLaunchHostFunc callback that holds its stream for 50 ms, so that work
// enqueued behind it has surely not run when the host goes on.
inline void CUDART_CB holdTheStream(void*) { std::this_thread::sleep_for(std::chrono::milliseconds(50)); }

enum class InitWay { InitAll, GroupOfInitRank };

// N communicators of one clique, all on GPU 0, each with a non-blocking stream
// (so nothing orders it against the legacy default stream: the tests see only
// the ordering the library gives). Destroyed after their streams drain.
struct DeviceComms {
  std::vector<ncclComm_t> comms;
  std::vector<cudaStream_t> streams;
  int size() const { return static_cast<int>(comms.size()); }
  ~DeviceComms() {
    for (cudaStream_t s : streams) cudaStreamSynchronize(s);
    for (ncclComm_t c : comms) ncclCommDestroy(c);
    for (cudaStream_t s : streams) cudaStreamDestroy(s);
  }
};

inline ::testing::AssertionResult makeComms(int n, InitWay way, DeviceComms* out);

// Tests on a clique of GetParam() ranks on GPU 0 (ncclCommInitAll), skipped
// with a message where device communicators are not available.
class CliqueOnGpu0 : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_DEVICE_COMMS();
    ASSERT_TRUE(makeComms(GetParam(), InitWay::InitAll, &dc_));
  }
  DeviceComms dc_;
};

// ncclCommInitAll(comms, n, {0,...,0}), or one thread calling ncclCommInitRank
// for every rank inside ncclGroupStart/End, each after cudaSetDevice(0).
inline ::testing::AssertionResult makeComms(int n, InitWay way, DeviceComms* out) {
  if (cudaSetDevice(0) != cudaSuccess) return ::testing::AssertionFailure() << "cudaSetDevice(0)";
  out->comms.assign(n, nullptr);
  ncclResult_t r = ncclSuccess;
  if (way == InitWay::InitAll) {
    const std::vector<int> devices(n, 0);
    r = ncclCommInitAll(out->comms.data(), n, devices.data());
  } else {
    ncclUniqueId id;
    r = ncclGetUniqueId(&id);
    if (r == ncclSuccess) r = ncclGroupStart();
    for (int rank = 0; r == ncclSuccess && rank < n; ++rank) {
      cudaSetDevice(0);
      r = ncclCommInitRank(&out->comms[rank], n, id, rank);
    }
    const ncclResult_t end = ncclGroupEnd();
    if (r == ncclSuccess) r = end;
  }
  if (r != ncclSuccess) {
    const std::string text = ncclText(r);
    out->comms.clear();  // whatever was made is not a usable clique
    return ::testing::AssertionFailure() << "creating " << n << " communicators on GPU 0: " << text;
  }
  for (int rank = 0; rank < n; ++rank) {
    int device = -1;
    if (ncclCommCuDevice(out->comms[rank], &device) != ncclSuccess || device != 0)
      return ::testing::AssertionFailure() << "rank " << rank << " is bound to device " << device
                                           << ", not 0 (a host communicator?)";
    cudaStream_t s = nullptr;
    if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess)
      return ::testing::AssertionFailure() << "cudaStreamCreateWithFlags";
    out->streams.push_back(s);
  }
  return ::testing::AssertionSuccess();
}

// ncclGroupStart, issue(rank) for every rank, ncclGroupEnd: how one thread
// drives several ranks.
// A call that fails stops the issuing; the group is closed all the same.
template <typename Issue>
::testing::AssertionResult onEveryRank(const DeviceComms& dc, Issue issue) {
  const ncclResult_t start = ncclGroupStart();
  if (start != ncclSuccess) return ::testing::AssertionFailure() << "ncclGroupStart: " << ncclText(start);
  for (int rank = 0; rank < dc.size(); ++rank) {
    const ncclResult_t r = issue(rank);
    if (r == ncclSuccess) continue;
    const std::string text = ncclText(r, dc.comms[rank]);
    const ncclResult_t end = ncclGroupEnd();
    return ::testing::AssertionFailure() << "rank " << rank << ": " << text
                                         << "; then ncclGroupEnd: " << ncclGetErrorString(end);
  }
  const ncclResult_t end = ncclGroupEnd();
  if (end != ncclSuccess) return ::testing::AssertionFailure() << "ncclGroupEnd: " << ncclText(end);
  return ::testing::AssertionSuccess();
}

// ---- elements: host images of the types used, from and to double ----------

inline size_t typeSize(ncclDataType_t t) {
  switch (t) {
    case ncclInt8: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclFloat32: return 4;
    default: return 0;
  }
}

inline const char* typeName(ncclDataType_t t) {
  switch (t) {
    case ncclInt8: return "int8";
    case ncclFloat16: return "half";
    case ncclBfloat16: return "bfloat16";
    case ncclInt32: return "int32";
    case ncclFloat32: return "float";
    default: return "?";
  }
}

// Exact for the values used here (small integers and their quarters).
inline void encode(ncclDataType_t t, double v, unsigned char* out) {
  const float f = static_cast<float>(v);
  uint32_t fbits;
  std::memcpy(&fbits, &f, 4);
  switch (t) {
    case ncclInt8: { const int8_t x = static_cast<int8_t>(v); std::memcpy(out, &x, 1); break; }
    case ncclInt32: { const int32_t x = static_cast<int32_t>(v); std::memcpy(out, &x, 4); break; }
    case ncclFloat32: std::memcpy(out, &f, 4); break;
    case ncclBfloat16: {  // the top half of the float
      const uint16_t x = static_cast<uint16_t>(fbits >> 16);
      std::memcpy(out, &x, 2);
      break;
    }
    case ncclFloat16: {  // normal halves only: exponent rebased 127 -> 15, 13 mantissa bits dropped
      uint16_t x = static_cast<uint16_t>((fbits >> 16) & 0x8000);
      if ((fbits & 0x7fffffff) != 0)
        x |= static_cast<uint16_t>((((fbits >> 23) & 0xff) - 127 + 15) << 10 | ((fbits >> 13) & 0x3ff));
      std::memcpy(out, &x, 2);
      break;
    }
    default: break;
  }
}

inline double decode(ncclDataType_t t, const unsigned char* in) {
  switch (t) {
    case ncclInt8: { int8_t x; std::memcpy(&x, in, 1); return x; }
    case ncclInt32: { int32_t x; std::memcpy(&x, in, 4); return x; }
    case ncclFloat32: { float x; std::memcpy(&x, in, 4); return x; }
    case ncclBfloat16: {
      uint16_t h; std::memcpy(&h, in, 2);
      const uint32_t bits = uint32_t(h) << 16; float x; std::memcpy(&x, &bits, 4); return x;
    }
    case ncclFloat16: {
      uint16_t h; std::memcpy(&h, in, 2);
      const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
      const double mag = e == 0    ? std::ldexp(m, -24)
                         : e == 31 ? (m ? NAN : INFINITY)
                                   : std::ldexp(1024 + m, e - 25);
      return (h & 0x8000) ? -mag : mag;
    }
    default: return NAN;
  }
}

inline std::vector<unsigned char> encodeAll(ncclDataType_t t, const std::vector<double>& values) {
  std::vector<unsigned char> out(values.size() * typeSize(t));
  for (size_t i = 0; i < values.size(); ++i) encode(t, values[i], out.data() + i * typeSize(t));
  return out;
}

// Rank `rank`'s element i for run `seed`: -1000..1000 for int32, else -8..8.
inline double inputValue(ncclDataType_t t, int rank, size_t i, uint64_t seed) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + uint64_t(rank) * 0xbf58476d1ce4e5b9ull + i;
  z = (z ^ (z >> 31)) * 0x94d049bb133111ebull;
  z ^= z >> 29;
  return t == ncclInt32 ? double(int64_t(z % 2001) - 1000) : double(int64_t(z % 17) - 8);
}

inline double reduce(ncclRedOp_t op, const std::vector<double>& v) {
  double acc = v[0];
  for (size_t k = 1; k < v.size(); ++k) {
    if (op == ncclMax) acc = v[k] > acc ? v[k] : acc;
    else if (op == ncclMin) acc = v[k] < acc ? v[k] : acc;
    else if (op == ncclProd) acc *= v[k];
    else acc += v[k];
  }
  return op == ncclAvg ? acc / double(v.size()) : acc;
}

inline const char* opName(ncclRedOp_t op) {
  switch (op) {
    case ncclSum: return "sum";
    case ncclProd: return "prod";
    case ncclMax: return "max";
    case ncclMin: return "min";
    case ncclAvg: return "avg";
    default: return "?";
  }
}

// Byte-for-byte comparison of `elems` elements; on a mismatch names the
// first element that differs (decoded) and how many do.
inline ::testing::AssertionResult sameElements(ncclDataType_t t, const unsigned char* got,
                                               const unsigned char* want, size_t elems,
                                               const std::string& what) {
  const size_t es = typeSize(t);
  if (std::memcmp(got, want, elems * es) == 0) return ::testing::AssertionSuccess();
  size_t first = elems, wrong = 0;
  for (size_t i = 0; i < elems; ++i)
    if (std::memcmp(got + i * es, want + i * es, es) != 0) {
      if (first == elems) first = i;
      ++wrong;
    }
  return ::testing::AssertionFailure() << what << ": " << wrong << " of " << elems
                                       << " elements wrong; first at " << first << ": got "
                                       << decode(t, got + first * es) << ", want "
                                       << decode(t, want + first * es);
}

inline ::testing::AssertionResult sameFloats(const float* got, const std::vector<float>& want,
                                             const std::string& what) {
  return sameElements(ncclFloat32, reinterpret_cast<const unsigned char*>(got),
                      reinterpret_cast<const unsigned char*>(want.data()), want.size(), what);
}

// ---- one operation on every rank, with its reference -----------------------

enum class Kind { AllReduce, Broadcast, Reduce, AllGather, ReduceScatter, SendRecvRing, AlltoAll };

inline const char* kindName(Kind k) {
  switch (k) {
    case Kind::AllReduce: return "AllReduce";
    case Kind::Broadcast: return "Broadcast";
    case Kind::Reduce: return "Reduce";
    case Kind::AllGather: return "AllGather";
    case Kind::ReduceScatter: return "ReduceScatter";
    case Kind::SendRecvRing: return "Send/Recv ring";
    case Kind::AlltoAll: return "AlltoAll";
  }
  return "?";
}

struct Spec {
  Kind kind;
  ncclDataType_t type;
  ncclRedOp_t op;  // reductions only
  size_t count;    // the count argument of the call
  int root;        // Broadcast and Reduce only
  bool inPlace;
};

inline std::string describe(const Spec& s) {
  std::string text = std::string(kindName(s.kind)) + " " + typeName(s.type);
  if (s.kind == Kind::AllReduce || s.kind == Kind::Reduce || s.kind == Kind::ReduceScatter)
    text += std::string(" ") + opName(s.op);
  text += " count " + std::to_string(s.count);
  if (s.kind == Kind::Broadcast || s.kind == Kind::Reduce) text += " root " + std::to_string(s.root);
  return text + (s.inPlace ? " in place" : " out of place");
}

// A job holds each rank's device buffers, the host images they start from
// and the elements each rank must end with. Buffers carry kGuard bytes of
// sentinel (0xa5) past their end, which must come back untouched; receive
// buffers start as sentinel too, and (out of place) send buffers must come
// back unchanged. Reduce checks the root only.
class Job {
 public:
  static constexpr size_t kGuard = 64;

  Job(const Spec& spec, int nranks, uint64_t seed) : spec_(spec), n_(nranks), es_(typeSize(spec.type)) {
    const size_t c = spec.count, n = size_t(nranks);
    sendElems_ = spec.kind == Kind::ReduceScatter || spec.kind == Kind::AlltoAll ? n * c : c;
    recvElems_ = spec.kind == Kind::AllGather || spec.kind == Kind::AlltoAll ? n * c : c;
    std::vector<std::vector<double>> in(n, std::vector<double>(sendElems_));
    for (int r = 0; r < nranks; ++r)
      for (size_t i = 0; i < sendElems_; ++i) in[r][i] = inputValue(spec.type, r, i, seed);
    want_.resize(n);
    std::vector<double> column(n);
    for (int r = 0; r < nranks; ++r) {
      std::vector<double> w(recvElems_);
      for (size_t i = 0; i < recvElems_; ++i) {
        switch (spec.kind) {
          case Kind::AllReduce: case Kind::Reduce: case Kind::ReduceScatter: {
            const size_t at = spec.kind == Kind::ReduceScatter ? size_t(r) * c + i : i;
            for (size_t p = 0; p < n; ++p) column[p] = in[p][at];
            w[i] = reduce(spec.op, column);
            break;
          }
          case Kind::Broadcast: w[i] = in[spec.root][i]; break;
          case Kind::AllGather: w[i] = in[i / c][i % c]; break;
          case Kind::SendRecvRing: w[i] = in[(r + nranks - 1) % nranks][i]; break;
          case Kind::AlltoAll: w[i] = in[i / c][size_t(r) * c + i % c]; break;
        }
      }
      if (spec.kind != Kind::Reduce || r == spec.root) want_[r] = encodeAll(spec.type, w);
    }
    // In place, one buffer per rank: the input at the send offset, sentinel elsewhere.
    for (int r = 0; r < nranks; ++r) {
      const std::vector<unsigned char> input = encodeAll(spec.type, in[r]);
      const bool sendsNothing = spec.kind == Kind::Broadcast && r != spec.root && spec.inPlace;
      if (spec.inPlace) {
        std::vector<unsigned char> image(std::max(sendElems_, recvElems_) * es_ + kGuard, 0xa5);
        if (!sendsNothing) std::copy(input.begin(), input.end(), image.begin() + sendOffset(r) * es_);
        images_.push_back(std::move(image));
      } else {
        std::vector<unsigned char> send(input);
        send.resize(input.size() + kGuard, 0xa5);
        images_.push_back(std::move(send));
        images_.emplace_back(recvElems_ * es_ + kGuard, 0xa5);
      }
    }
  }

  // Allocates and fills every buffer, on each rank's stream.
  ::testing::AssertionResult upload(const DeviceComms& dc) {
    for (size_t b = 0; b < images_.size(); ++b) {
      buffers_.emplace_back(images_[b].size());
      if (buffers_.back().p == nullptr) return ::testing::AssertionFailure() << "cudaMalloc failed";
      const cudaError_t e = cudaMemcpyAsync(buffers_[b].p, images_[b].data(), images_[b].size(),
                                            cudaMemcpyHostToDevice, dc.streams[b / buffersPerRank()]);
      if (e != cudaSuccess) return ::testing::AssertionFailure() << "cudaMemcpyAsync: " << cudaText(e);
    }
    return ::testing::AssertionSuccess();
  }

  // Rank r's call(s), on its communicator and stream (inside the caller's group).
  ncclResult_t issue(const DeviceComms& dc, int r) const {
    const Spec& s = spec_;
    const void* send = buffers_[r * buffersPerRank()].bytes() + sendOffset(r) * es_;
    void* recv = buffers_[r * buffersPerRank() + buffersPerRank() - 1].bytes() + recvOffset(r) * es_;
    ncclComm_t comm = dc.comms[r];
    cudaStream_t stream = dc.streams[r];
    switch (s.kind) {
      case Kind::AllReduce: return ncclAllReduce(send, recv, s.count, s.type, s.op, comm, stream);
      case Kind::Broadcast: return ncclBroadcast(send, recv, s.count, s.type, s.root, comm, stream);
      case Kind::Reduce: return ncclReduce(send, recv, s.count, s.type, s.op, s.root, comm, stream);
      case Kind::AllGather: return ncclAllGather(send, recv, s.count, s.type, comm, stream);
      case Kind::ReduceScatter: return ncclReduceScatter(send, recv, s.count, s.type, s.op, comm, stream);
      case Kind::AlltoAll: return ncclAlltoAll(send, recv, s.count, s.type, comm, stream);
      case Kind::SendRecvRing: {
        const ncclResult_t r1 = ncclSend(send, s.count, s.type, (r + 1) % n_, comm, stream);
        if (r1 != ncclSuccess) return r1;
        return ncclRecv(recv, s.count, s.type, (r + n_ - 1) % n_, comm, stream);
      }
    }
    return ncclInternalError;
  }

  // Copies every buffer back on its rank's stream, waits, and compares.
  ::testing::AssertionResult check(const DeviceComms& dc) const {
    for (int r = 0; r < n_; ++r) {
      const std::string who =
          describe(spec_) + ", " + std::to_string(n_) + " ranks, rank " + std::to_string(r);
      std::vector<std::vector<unsigned char>> got;
      for (size_t b = r * buffersPerRank(); b < size_t(r + 1) * buffersPerRank(); ++b) {
        got.emplace_back(images_[b].size());
        cudaMemcpyAsync(got.back().data(), buffers_[b].p, got.back().size(), cudaMemcpyDeviceToHost,
                        dc.streams[r]);
      }
      const cudaError_t e = cudaStreamSynchronize(dc.streams[r]);
      if (e != cudaSuccess) return ::testing::AssertionFailure() << who << ": stream error " << cudaText(e);
      const std::vector<unsigned char>& recv = got.back();
      const std::vector<unsigned char>& recvImage = images_[(r + 1) * buffersPerRank() - 1];
      if (!want_[r].empty()) {
        auto same = sameElements(spec_.type, recv.data() + recvOffset(r) * es_, want_[r].data(),
                                 recvElems_, who);
        if (!same) return same;
      }
      const size_t guard = recv.size() - kGuard;
      if (std::memcmp(recv.data() + guard, recvImage.data() + guard, kGuard) != 0)
        return ::testing::AssertionFailure() << who << ": bytes past the end of the receive buffer changed";
      if (!spec_.inPlace && got[0] != images_[r * 2])
        return ::testing::AssertionFailure() << who << ": the send buffer changed";
    }
    return ::testing::AssertionSuccess();
  }

 private:
  size_t buffersPerRank() const { return spec_.inPlace ? 1 : 2; }
  size_t sendOffset(int r) const {  // elements; in place, AllGather sends from its own block
    return spec_.inPlace && spec_.kind == Kind::AllGather ? size_t(r) * spec_.count : 0;
  }
  size_t recvOffset(int r) const {  // in place, ReduceScatter leaves its block where it was
    return spec_.inPlace && spec_.kind == Kind::ReduceScatter ? size_t(r) * spec_.count : 0;
  }

  Spec spec_;
  int n_;
  size_t es_, sendElems_ = 0, recvElems_ = 0;
  std::vector<std::vector<unsigned char>> images_;  // per rank: send, recv (in place: one)
  std::vector<std::vector<unsigned char>> want_;    // per rank; empty: not checked
  std::vector<DeviceBuffer> buffers_;               // as images_
};

// One job on every rank as one group: upload, issue, check.
inline ::testing::AssertionResult runJob(const DeviceComms& dc, const Spec& spec, uint64_t seed) {
  Job job(spec, dc.size(), seed);
  auto ok = job.upload(dc);
  if (ok) ok = onEveryRank(dc, [&](int r) { return job.issue(dc, r); });
  if (!ok) return ::testing::AssertionFailure() << describe(spec) << ": " << ok.message();
  return job.check(dc);
}

inline std::string ranksName(const ::testing::TestParamInfo<int>& info) {
  return std::to_string(info.param) + (info.param == 1 ? "Rank" : "Ranks");
}

}  // namespace chorus::gputest
