// The ring kernel's primitives (device/fifo_prims.h) on the CPU: one host
// thread plays each rank's thread block on each channel, and the FIFOs the
// kernels would share through CUDA IPC are plain host memory both ends
// reach. Every ring collective runs through runRingChannel
// (collectives/ring_collective.h) as the kernel runs it, and its results are
// checked exactly against a reference computed here element by element.
// Then: collectives back to back on the same FIFOs (the counters carry on),
// a sender held back by a full FIFO, ranks that disagree, and abort.
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "collectives/datatypes.h"
#include "collectives/reduce_copy.h"
#include "collectives/reduce_ops.h"
#include "collectives/ring_collective.h"
#include "device/fifo_prims.h"

using namespace chorus;

namespace {

using Clock = std::chrono::steady_clock;

// A block that waits longer than this gives up (ncclSystemError): a bug
// fails the test instead of hanging it.
constexpr auto kDeadline = std::chrono::seconds(20);

// FifoPrims' Block with one host thread per block: the thread is the
// leader and the whole block, so sync and share have nothing to do.
struct HostBlock {
  const std::atomic<bool>* abortFlag;
  Clock::time_point deadline;

  bool leader() const { return true; }
  uint64_t load(const uint64_t* word) const { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
  void store(uint64_t* word, uint64_t value) const {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
  }
  uint32_t load32(const uint32_t* word) const { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
  void store32(uint32_t* word, uint32_t value) const {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
  }
  void release() const { std::atomic_thread_fence(std::memory_order_release); }
  void sync() const {}
  template <typename T>
  void share(T*) const {}
  bool aborted() const {
    return abortFlag->load(std::memory_order_acquire) || Clock::now() >= deadline;
  }
  void pause() const { sched_yield(); }
  void copy(const void* from, void* to, size_t bytes) const { std::memcpy(to, from, bytes); }
  void reduceCopy(const RedOpArgs& op, const void* peer, const void* local, bool applyPre,
                  void* dst, bool applyPost, size_t count) const {
    chorus::reduceCopy(op, peer, local, applyPre, dst, applyPost, count);
  }
};

// ---- memory ------------------------------------------------------------------

// What memory holds before anyone writes it: a wrong read or a missing write
// shows as this pattern, which no input value has.
constexpr unsigned char kGarbage = 0xA5;
// Bytes after every output, which no rank may write.
constexpr size_t kGuardBytes = 64;

// 64-byte aligned heap bytes, filled with `fill`.
class Buffer {
 public:
  Buffer() = default;
  Buffer(size_t bytes, unsigned char fill)
      : data_(static_cast<char*>(std::aligned_alloc(64, (bytes + 64) / 64 * 64))) {
    std::memset(data_.get(), fill, bytes);
  }
  char* data() const { return data_.get(); }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> data_;
};

// Slots per FIFO and bytes per slot.
struct FifoShape {
  uint32_t nSlots;
  uint32_t slotBytes;
};

// One FIFO in host memory: the slots, and a control area with the tail, the
// head (each on its own cache line) and the size words.
struct HostFifo {
  HostFifo(FifoShape shape, uint64_t start)
      : slots(size_t{shape.nSlots} * shape.slotBytes, kGarbage),
        control(128 + 4 * size_t{shape.nSlots}, 0) {
    fifo.slots = slots.data();
    fifo.tail = reinterpret_cast<uint64_t*>(control.data());
    fifo.head = reinterpret_cast<uint64_t*>(control.data() + 64);
    fifo.sizes = reinterpret_cast<uint32_t*>(control.data() + 128);
    fifo.nSlots = shape.nSlots;
    fifo.slotBytes = shape.slotBytes;
    *fifo.tail = start;
    *fifo.head = start;
  }
  uint64_t tail() const { return __atomic_load_n(fifo.tail, __ATOMIC_ACQUIRE); }
  uint64_t head() const { return __atomic_load_n(fifo.head, __ATOMIC_ACQUIRE); }

  Buffer slots;
  Buffer control;
  DeviceFifo fifo{};
};

// A ring of nranks ranks with nChannels channels: on every channel, rank r
// sends to r+1 through link (channel, r), which rank r+1 receives from, the
// same DeviceFifo seen from both ends. No links on one rank. The counters
// start at `start` (a ring that has already carried that many slots).
class HostRing {
 public:
  HostRing(int nranks, int nChannels, FifoShape shape, uint64_t start = 0)
      : nranks_(nranks), nChannels_(nChannels), shape_(shape) {
    if (nranks < 2) return;
    for (int i = 0; i < nranks * nChannels; ++i)
      links_.push_back(std::make_unique<HostFifo>(shape, start));
  }
  int nranks() const { return nranks_; }
  int nChannels() const { return nChannels_; }
  FifoShape shape() const { return shape_; }
  const DeviceFifo* toNext(int channel, int rank) const {
    return nranks_ > 1 ? &links_[static_cast<size_t>(channel * nranks_ + rank)]->fifo : nullptr;
  }
  const DeviceFifo* fromPrev(int channel, int rank) const {
    return toNext(channel, (rank + nranks_ - 1) % nranks_);
  }
  const HostFifo& link(int channel, int rank) const {
    return *links_[static_cast<size_t>(channel * nranks_ + rank)];
  }
  // "" when every slot published has been released (a finished collective
  // leaves every FIFO empty), else which link holds what.
  std::string undrained() const {
    std::ostringstream s;
    for (int ch = 0; ch < nChannels_ && nranks_ > 1; ++ch)
      for (int r = 0; r < nranks_; ++r) {
        const HostFifo& l = link(ch, r);
        if (l.tail() != l.head())
          s << "channel " << ch << " link " << r << "->" << (r + 1) % nranks_ << ": tail "
            << l.tail() << " head " << l.head() << "; ";
      }
    return s.str();
  }
  // Slots carried so far, over every link.
  uint64_t totalTail() const {
    uint64_t sum = 0;
    for (const auto& l : links_) sum += l->tail();
    return sum;
  }

 private:
  int nranks_, nChannels_;
  FifoShape shape_;
  std::vector<std::unique_ptr<HostFifo>> links_;
};

// Runs body(rank, channel, block) on its own thread for every rank and
// channel, as the ranks' kernels run their blocks; the first block that
// fails raises the abort flag so that the others stop waiting for it.
// Returns the statuses, rank-major.
template <typename Body>
std::vector<ncclResult_t> runBlocks(int nranks, int nChannels, Body body) {
  std::atomic<bool> abortFlag{false};
  const Clock::time_point deadline = Clock::now() + kDeadline;
  std::vector<ncclResult_t> status(static_cast<size_t>(nranks * nChannels), ncclInternalError);
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r)
    for (int ch = 0; ch < nChannels; ++ch)
      threads.emplace_back([&, r, ch] {
        HostBlock block{&abortFlag, deadline};
        const ncclResult_t s = body(r, ch, block);
        status[static_cast<size_t>(r * nChannels + ch)] = s;
        if (s != ncclSuccess) abortFlag.store(true, std::memory_order_release);
      });
  for (std::thread& t : threads) t.join();
  return status;
}

// ---- values and the reference ------------------------------------------------

bool reduces(RingCollective coll) {
  return coll == RingCollective::AllReduce || coll == RingCollective::Reduce ||
         coll == RingCollective::ReduceScatter;
}
bool hasRoot(RingCollective coll) {
  return coll == RingCollective::Broadcast || coll == RingCollective::Reduce;
}
bool isFloating(ncclDataType_t type) {
  return type == ncclFloat16 || type == ncclBfloat16 || type == ncclFloat32 ||
         type == ncclFloat64;
}

const char* collName(RingCollective coll) {
  switch (coll) {
    case RingCollective::AllReduce: return "AllReduce";
    case RingCollective::Broadcast: return "Broadcast";
    case RingCollective::Reduce: return "Reduce";
    case RingCollective::AllGather: return "AllGather";
    case RingCollective::ReduceScatter: return "ReduceScatter";
  }
  return "?";
}
// PreMulSum with the scalar 2 (ncclRedOpCreatePreMulSum's operator): each
// rank's input is doubled exactly once.
constexpr ncclRedOp_t kPreMulSumTwo = ncclNumOps;

const char* opName(ncclRedOp_t op) {
  if (op == kPreMulSumTwo) return "premulsum(2)";
  switch (op) {
    case ncclSum: return "sum";
    case ncclProd: return "prod";
    case ncclMax: return "max";
    case ncclMin: return "min";
    case ncclAvg: return "avg";
    default: return "?";
  }
}

struct RingCase {
  RingCollective coll;
  ncclDataType_t type;
  ncclRedOp_t op;
  size_t count;  // per rank: AllGather's send count, ReduceScatter's receive count
  int root;
  bool inPlace;
  int nChannels = 0;  // channels the collective runs on; 0: all of the ring's
};

std::string describe(const RingCase& c, const HostRing& ring) {
  std::ostringstream s;
  s << collName(c.coll) << " " << dataTypeName(c.type);
  if (reduces(c.coll)) s << " " << opName(c.op);
  s << " count " << c.count;
  if (hasRoot(c.coll)) s << " root " << c.root;
  s << (c.inPlace ? " in place" : " out of place") << " on " << ring.nranks() << " ranks, "
    << (c.nChannels ? c.nChannels : ring.nChannels()) << " of " << ring.nChannels()
    << " channels, " << ring.shape().nSlots << " slots of " << ring.shape().slotBytes
    << " bytes";
  return s.str();
}

// Exact in every datatype: the reductions' inputs are 0..7 (1..2 for a
// product, with at most two 2s per element), the data movements' 1..97
// (distinct per rank, so a block from the wrong rank shows).
double inputValue(const RingCase& c, int rank, size_t i) {
  const size_t r = static_cast<size_t>(rank);
  if (!reduces(c.coll)) return static_cast<double>((i * 31 + r * 17 + 1) % 97);
  if (c.op == ncclProd) return (i + r) % 5 == 0 ? 2.0 : 1.0;
  return static_cast<double>((i * 5 + r * 3 + i / 8) % 8);
}

// A floating average multiplies each input by 1/nranks: exact only where
// that is a power of two. The integer average divides the exact sum.
bool exactOn(ncclDataType_t type, ncclRedOp_t op, int nranks) {
  return op != ncclAvg || !isFloating(type) || (nranks & (nranks - 1)) == 0;
}

// The reduction of element i of every rank's input, in exact arithmetic.
double reduced(const RingCase& c, int nranks, size_t i) {
  const double scale = c.op == kPreMulSumTwo ? 2 : 1;
  double acc = scale * inputValue(c, 0, i);
  for (int q = 1; q < nranks; ++q) {
    const double v = scale * inputValue(c, q, i);
    switch (c.op) {
      case ncclProd: acc *= v; break;
      case ncclMax: acc = v > acc ? v : acc; break;
      case ncclMin: acc = v < acc ? v : acc; break;
      default: acc += v; break;  // sum, avg, premulsum
    }
  }
  if (c.op == ncclAvg)
    acc = isFloating(c.type) ? acc / nranks : std::floor(acc / nranks);
  return acc;
}

template <typename T>
T fromDouble(double v) {
  if constexpr (kIsNarrowFloat<T>) {
    return T::fromFloat(static_cast<float>(v));
  } else if constexpr (std::is_floating_point<T>::value) {
    return static_cast<T>(v);
  } else {
    return static_cast<T>(static_cast<int64_t>(v));
  }
}

struct StoreValue {
  void* base;
  size_t index;
  double value;
  template <typename T>
  void operator()() const {
    const T x = fromDouble<T>(value);
    std::memcpy(static_cast<char*>(base) + index * sizeof(T), &x, sizeof(T));
  }
};

// The operator's arguments, as the communicator would pass them.
RedOpArgs opArgs(ncclDataType_t type, ncclRedOp_t op, int nranks) {
  if (op != kPreMulSumTwo) return builtinRedOp(op, type, nranks);
  uint64_t two = 0;
  dispatchType(type, StoreValue{&two, 0, 2.0});
  return preMulSumOp(type, &two);
}

struct LoadValue {
  const void* base;
  size_t index;
  template <typename T>
  double operator()() const {
    T x;
    std::memcpy(&x, static_cast<const char*>(base) + index * sizeof(T), sizeof(T));
    return static_cast<double>(toCompute(x));
  }
};

size_t inputElems(const RingCase& c, int nranks) {
  return c.coll == RingCollective::ReduceScatter ? c.count * static_cast<size_t>(nranks) : c.count;
}
size_t outputElems(const RingCase& c, int nranks) {
  return c.coll == RingCollective::AllGather ? c.count * static_cast<size_t>(nranks) : c.count;
}

// Output element j of `rank`, as the collective defines it.
double expectedOutput(const RingCase& c, int nranks, int rank, size_t j) {
  switch (c.coll) {
    case RingCollective::AllReduce:
    case RingCollective::Reduce: return reduced(c, nranks, j);
    case RingCollective::Broadcast: return inputValue(c, c.root, j);
    case RingCollective::AllGather:
      return inputValue(c, static_cast<int>(j / c.count), j % c.count);
    case RingCollective::ReduceScatter:
      return reduced(c, nranks, static_cast<size_t>(rank) * c.count + j);
  }
  return 0;
}

// One rank's buffers: out of place an input and an output, in place one
// buffer that holds both (AllGather's input is the rank's block of the
// output, ReduceScatter's output the rank's block of the input). Either is
// followed by kGuardBytes of garbage.
struct RankBuffers {
  Buffer first, second;
  const char* input = nullptr;
  char* output = nullptr;
  const char* guard = nullptr;  // the kGuardBytes after the buffer that holds the output
  std::vector<char> inputCopy;  // the input as written, to check it is left alone
};

// Runs the collective on every rank and channel of `ring` and checks it:
// "" when every block succeeded, the FIFOs are empty again, every output is
// exact, inputs (out of place) and the guard bytes after every output are
// untouched; else what went wrong first.
std::string runAndCheck(const HostRing& ring, const RingCase& c) {
  const int n = ring.nranks();
  const int channels = c.nChannels ? c.nChannels : ring.nChannels();
  const size_t es = elementSize(c.type);
  const size_t inN = inputElems(c, n), outN = outputElems(c, n);
  std::vector<RankBuffers> ranks(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    RankBuffers& b = ranks[static_cast<size_t>(r)];
    if (c.inPlace) {
      const size_t elems = inN > outN ? inN : outN;
      b.first = Buffer(elems * es + kGuardBytes, kGarbage);
      b.output = b.first.data();
      b.input = b.first.data();
      b.guard = b.first.data() + elems * es;
      const size_t block = static_cast<size_t>(r) * c.count * es;
      if (c.coll == RingCollective::AllGather) b.input += block;
      if (c.coll == RingCollective::ReduceScatter) b.output += block;
    } else {
      b.first = Buffer(inN * es, kGarbage);
      b.second = Buffer(outN * es + kGuardBytes, kGarbage);
      b.input = b.first.data();
      b.output = b.second.data();
      b.guard = b.output + outN * es;
    }
    for (size_t i = 0; i < inN; ++i)
      dispatchType(c.type, StoreValue{const_cast<char*>(b.input), i, inputValue(c, r, i)});
    b.inputCopy.assign(b.input, b.input + inN * es);
  }

  const RedOpArgs op = opArgs(c.type, c.op, n);
  const std::vector<ncclResult_t> status =
      runBlocks(n, channels, [&](int r, int ch, HostBlock& block) {
        const RankBuffers& b = ranks[static_cast<size_t>(r)];
        FifoPrims<HostBlock> prims(block, ring.toNext(ch, r), ring.fromPrev(ch, r), b.input,
                                   b.output, op, es);
        const ncclResult_t s =
            runRingChannel(prims, c.coll, r, n, c.root, c.count, es, channels, ch);
        // The kernel reads prims.status(), the host the result: they agree.
        return s != ncclSuccess ? s : prims.status();
      });

  std::ostringstream err;
  for (size_t i = 0; i < status.size(); ++i)
    if (status[i] != ncclSuccess)
      err << "rank " << i / static_cast<size_t>(channels) << " channel "
          << i % static_cast<size_t>(channels) << ": " << ncclGetErrorString(status[i]) << "; ";
  if (!err.str().empty()) return err.str();
  const std::string left = ring.undrained();
  if (!left.empty()) return "slots left in the FIFOs: " + left;

  std::vector<char> expected(outN * es);
  for (int r = 0; r < n; ++r) {
    const RankBuffers& b = ranks[static_cast<size_t>(r)];
    if (c.coll == RingCollective::Reduce && r != c.root) continue;
    for (size_t j = 0; j < outN; ++j)
      dispatchType(c.type, StoreValue{expected.data(), j, expectedOutput(c, n, r, j)});
    if (outN > 0 && std::memcmp(expected.data(), b.output, outN * es) != 0) {
      size_t bad = 0, first = outN;
      for (size_t j = 0; j < outN; ++j)
        if (std::memcmp(expected.data() + j * es, b.output + j * es, es) != 0) {
          if (first == outN) first = j;
          ++bad;
        }
      err << "rank " << r << ": " << bad << " of " << outN << " outputs wrong, the first at "
          << first << ": " << dispatchType(c.type, LoadValue{b.output, first}) << " where "
          << dispatchType(c.type, LoadValue{expected.data(), first}) << " was expected";
      return err.str();
    }
    for (size_t g = 0; g < kGuardBytes; ++g)
      if (static_cast<unsigned char>(b.guard[g]) != kGarbage) {
        err << "rank " << r << " wrote past the end of its output (byte " << g << ")";
        return err.str();
      }
    if (!c.inPlace && inN > 0 && std::memcmp(b.inputCopy.data(), b.input, inN * es) != 0) {
      err << "rank " << r << "'s input changed";
      return err.str();
    }
  }
  return "";
}

const RingCollective kColls[] = {RingCollective::AllReduce, RingCollective::Broadcast,
                                 RingCollective::Reduce, RingCollective::AllGather,
                                 RingCollective::ReduceScatter};
const ncclDataType_t kTypes[] = {ncclInt8,    ncclInt32,   ncclUint64, ncclFloat16,
                                 ncclBfloat16, ncclFloat32, ncclFloat64};
const ncclRedOp_t kOps[] = {ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg, kPreMulSumTwo};

// Hands out every (datatype, operator) pair in turn, skipping those a ring
// of nranks cannot compute exactly.
class TypeOpCycle {
 public:
  std::pair<ncclDataType_t, ncclRedOp_t> next(int nranks) {
    constexpr size_t kOpsN = sizeof(kOps) / sizeof(kOps[0]);
    constexpr size_t kPairs = sizeof(kTypes) / sizeof(kTypes[0]) * kOpsN;
    for (;;) {
      const size_t k = next_++ % kPairs;
      const ncclDataType_t type = kTypes[k / kOpsN];
      const ncclRedOp_t op = kOps[k % kOpsN];
      if (exactOn(type, op, nranks)) return {type, op};
    }
  }

 private:
  size_t next_ = 0;
};

// Every collective, every root, both placements, at `counts`, through one
// ring (so each runs where the previous one left the counters).
void runEveryCollective(const HostRing& ring, const std::vector<size_t>& counts,
                        TypeOpCycle& cycle) {
  const int n = ring.nranks();
  for (size_t count : counts)
    for (RingCollective coll : kColls)
      for (int root = 0; root < (hasRoot(coll) ? n : 1); ++root)
        for (bool inPlace : {false, true}) {
          const auto typeOp = cycle.next(n);
          // Broadcast and AllGather get a plain sum, as the API passes
          // them (on one rank they run copy(), which applies pre and post).
          const RingCase c{coll, typeOp.first, reduces(coll) ? typeOp.second : ncclSum, count,
                           root, inPlace};
          const std::string err = runAndCheck(ring, c);
          ASSERT_TRUE(err.empty()) << describe(c, ring) << ": " << err;
        }
}

// ---- the collectives ---------------------------------------------------------

TEST(FifoPrims, EveryRingCollectiveIsExactOnOneToFiveRanks) {
  TypeOpCycle cycle;
  for (int nranks = 1; nranks <= 5; ++nranks)
    for (int channels : {1, 3}) {
      // Slots small enough that pieces span several slots and the FIFOs
      // wrap many times; three slots on three channels (not a power of two).
      const HostRing ring(nranks, channels, channels == 1 ? FifoShape{4, 256} : FifoShape{3, 1024});
      runEveryCollective(ring, {0, 1, 7, 1023, 4099}, cycle);
      if (HasFatalFailure()) return;
    }
}

TEST(FifoPrims, EveryRingCollectiveIsExactOnEightRanks) {
  TypeOpCycle cycle;
  for (int channels : {1, 3}) {
    const HostRing ring(8, channels, FifoShape{4, 512});
    runEveryCollective(ring, {0, 7, 1023, 4099}, cycle);
    if (HasFatalFailure()) return;
  }
}

TEST(FifoPrims, EveryDatatypeAndOperatorIsExactInEveryReduction) {
  for (int nranks : {2, 3, 4}) {
    const HostRing ring(nranks, 2, FifoShape{4, 256});
    int k = 0;
    for (ncclDataType_t type : kTypes)
      for (ncclRedOp_t op : kOps) {
        if (!exactOn(type, op, nranks)) continue;
        for (RingCollective coll :
             {RingCollective::AllReduce, RingCollective::Reduce, RingCollective::ReduceScatter}) {
          ++k;
          const RingCase c{coll, type, op, 1023, k % nranks, k % 2 == 0};
          const std::string err = runAndCheck(ring, c);
          ASSERT_TRUE(err.empty()) << describe(c, ring) << ": " << err;
        }
      }
  }
}

TEST(FifoPrims, LargeCountsAreExactThroughSmallAndLargeSlots) {
  const size_t count = 100003;
  int k = 0;
  for (FifoShape shape : {FifoShape{4, 1024}, FifoShape{4, 1u << 20}})
    for (int nranks : {2, 3, 5}) {
      const HostRing ring(nranks, 3, shape);
      for (RingCollective coll : kColls) {
        ++k;
        const ncclDataType_t type = k % 3 == 0 ? ncclFloat64 : k % 3 == 1 ? ncclFloat32 : ncclInt8;
        const RingCase c{coll, type, ncclSum, count, nranks - 1, k % 2 == 0};
        const std::string err = runAndCheck(ring, c);
        ASSERT_TRUE(err.empty()) << describe(c, ring) << ": " << err;
      }
    }
}

// The counters never go back: each collective's FifoPrims starts where the
// last one left them, whatever the datatype (and so the elements per slot),
// the collective, or how many of the channels it uses. They start just under
// 2^32, so that they cross it on the way.
TEST(FifoPrims, CollectivesBackToBackStartWhereTheLastOneLeftTheCounters) {
  const uint64_t start = (uint64_t{1} << 32) - 5;
  for (FifoShape shape : {FifoShape{2, 256}, FifoShape{3, 192}}) {
    const HostRing ring(3, 3, shape, start);
    const RingCase sequence[] = {
        {RingCollective::AllReduce, ncclFloat32, ncclSum, 4099, 0, false},
        {RingCollective::AllGather, ncclInt8, ncclSum, 1023, 0, true},
        {RingCollective::Reduce, ncclFloat64, ncclMax, 777, 2, false},
        {RingCollective::ReduceScatter, ncclInt32, ncclAvg, 1000, 0, true},
        {RingCollective::Broadcast, ncclUint64, ncclSum, 333, 1, false, 1},
        {RingCollective::AllReduce, ncclFloat16, ncclProd, 2050, 0, true, 2},
        {RingCollective::AllReduce, ncclInt8, ncclMin, 1, 0, false},
        {RingCollective::ReduceScatter, ncclBfloat16, ncclSum, 513, 0, false, 1},
        {RingCollective::Broadcast, ncclFloat32, ncclSum, 4099, 0, true},
        {RingCollective::AllReduce, ncclUint64, ncclAvg, 3001, 0, false},
        {RingCollective::AllGather, ncclFloat64, ncclSum, 65, 0, false, 2},
        {RingCollective::Reduce, ncclInt32, ncclSum, 0, 1, false},
        {RingCollective::ReduceScatter, ncclFloat64, kPreMulSumTwo, 100, 0, false},
        {RingCollective::Reduce, ncclInt32, ncclProd, 8191, 1, true},
    };
    uint64_t carried = ring.totalTail();
    for (int round = 0; round < 2; ++round)
      for (const RingCase& c : sequence) {
        const std::string err = runAndCheck(ring, c);
        ASSERT_TRUE(err.empty()) << describe(c, ring) << ": " << err;
        const uint64_t now = ring.totalTail();
        if (c.count > 0) {
          EXPECT_GT(now, carried) << describe(c, ring) << " moved no slot";
        }
        carried = now;
      }
    EXPECT_GT(ring.link(0, 0).tail(), uint64_t{1} << 32);
  }
}

// ---- the FIFO protocol -------------------------------------------------------

// One FIFO between a sender and a receiver, and the abort flag both watch.
struct OneLink {
  std::atomic<bool> abortFlag{false};
  HostFifo link;
  explicit OneLink(FifoShape shape) : link(shape, 0) {}
  HostBlock block(Clock::duration limit = kDeadline) {
    return HostBlock{&abortFlag, Clock::now() + limit};
  }
};

// `slots` slots' worth of bytes, every byte of slot s holding s + 1.
std::vector<char> slotPattern(size_t slots, size_t slotBytes) {
  std::vector<char> data(slots * slotBytes);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i / slotBytes + 1);
  return data;
}

TEST(FifoPrims, ASenderWaitsForTheReceiverToReleaseASlotBeforeReusingIt) {
  const FifoShape shape{3, 64};
  const size_t slots = 10;
  OneLink one(shape);
  const std::vector<char> data = slotPattern(slots, shape.slotBytes);
  const RedOpArgs copy = builtinRedOp(ncclSum, ncclInt8, 1);
  ncclResult_t sent = ncclInternalError;
  std::thread sender([&] {
    HostBlock block = one.block();
    FifoPrims<HostBlock> prims(block, &one.link.fifo, nullptr, data.data(), nullptr, copy, 1);
    sent = prims.send(0, data.size());
  });
  // No receiver yet: the sender fills the three slots and waits.
  const Clock::time_point until = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < until && one.link.tail() < shape.nSlots) sched_yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(one.link.tail(), shape.nSlots) << "the sender overwrote slots nobody had read";
  EXPECT_EQ(one.link.head(), 0u);
  for (uint32_t s = 0; s < shape.nSlots; ++s) EXPECT_EQ(one.link.fifo.sizes[s], shape.slotBytes);

  std::vector<char> received(data.size(), 0);
  ncclResult_t got = ncclInternalError;
  std::thread receiver([&] {
    HostBlock block = one.block();
    FifoPrims<HostBlock> prims(block, nullptr, &one.link.fifo, nullptr, received.data(), copy, 1);
    got = prims.recv(0, received.size());
  });
  sender.join();
  receiver.join();
  EXPECT_EQ(sent, ncclSuccess);
  EXPECT_EQ(got, ncclSuccess);
  EXPECT_EQ(one.link.tail(), slots);
  EXPECT_EQ(one.link.head(), slots);
  EXPECT_TRUE(received == data) << "slots arrived out of order or overwritten";
}

// The receiver checks each slot's size word: a piece cut differently
// (ranks that called different collectives) stops it with ncclInvalidUsage.
TEST(FifoPrims, RanksThatDisagreeOnTheCountStopWithInvalidUsage) {
  struct Mismatch {
    size_t count0, count1;
    int channels;
  };
  // 10 against 12 floats: the first chunks are 5 and 6 elements; 4099
  // against 4100 on three channels: only the last round of the last
  // channel differs.
  for (const Mismatch m : {Mismatch{10, 12, 1}, Mismatch{4099, 4100, 3}}) {
    const HostRing ring(2, m.channels, FifoShape{4, 256});
    std::vector<float> in(8192, 1.0f), out0(8192), out1(8192);
    const RedOpArgs op = builtinRedOp(ncclSum, ncclFloat32, 2);
    const Clock::time_point begin = Clock::now();
    const std::vector<ncclResult_t> status =
        runBlocks(2, m.channels, [&](int r, int ch, HostBlock& block) {
          FifoPrims<HostBlock> prims(block, ring.toNext(ch, r), ring.fromPrev(ch, r), in.data(),
                                     r == 0 ? out0.data() : out1.data(), op, sizeof(float));
          const ncclResult_t s = runRingChannel(prims, RingCollective::AllReduce, r, 2, 0,
                                                r == 0 ? m.count0 : m.count1, sizeof(float),
                                                m.channels, ch);
          return s != ncclSuccess ? s : prims.status();
        });
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    int invalid = 0;
    for (ncclResult_t s : status) invalid += s == ncclInvalidUsage;
    EXPECT_GE(invalid, 1) << m.count0 << " against " << m.count1 << " floats: no rank saw it";
    // The others were stopped by the abort flag, not by the deadline.
    EXPECT_LT(seconds, 10.0) << m.count0 << " against " << m.count1;
  }
}

// Pieces that happen to match in size cannot be told apart: rank 0 finishes
// a one-element AllReduce (it needs nothing from rank 1 but its first
// slot), while rank 1, running two elements, takes rank 0's result for its
// own second chunk and then waits for a slot that never comes, until its
// deadline (on the GPU: until the abort flag).
TEST(FifoPrims, ADisagreementTheSizesCannotShowEndsOnTheDeadline) {
  const HostRing ring(2, 1, FifoShape{4, 256});
  std::vector<float> in(2, 1.0f), out0(2), out1(2);
  const RedOpArgs op = builtinRedOp(ncclSum, ncclFloat32, 2);
  std::vector<ncclResult_t> status(2, ncclInternalError);
  std::atomic<bool> never{false};
  const Clock::time_point now = Clock::now();
  std::thread ranks[2];
  for (int r = 0; r < 2; ++r)
    ranks[r] = std::thread([&, r] {
      HostBlock block{&never, now + (r == 0 ? Clock::duration(kDeadline)
                                            : Clock::duration(std::chrono::milliseconds(500)))};
      FifoPrims<HostBlock> prims(block, ring.toNext(0, r), ring.fromPrev(0, r), in.data(),
                                 r == 0 ? out0.data() : out1.data(), op, sizeof(float));
      status[static_cast<size_t>(r)] =
          runRingChannel(prims, RingCollective::AllReduce, r, 2, 0, static_cast<size_t>(r + 1),
                         sizeof(float), 1, 0);
    });
  for (std::thread& t : ranks) t.join();
  EXPECT_EQ(status[0], ncclSuccess);
  EXPECT_EQ(status[1], ncclSystemError);
}

TEST(FifoPrims, AbortEndsABlockThatWaitsToReceiveOrToSend) {
  for (bool receiving : {true, false}) {
    OneLink one(FifoShape{2, 64});
    std::vector<char> buffer(64 * 5, 1);
    const RedOpArgs copy = builtinRedOp(ncclSum, ncclInt8, 1);
    ncclResult_t result = ncclSuccess, status = ncclSuccess;
    std::atomic<bool> done{false};
    std::thread waiter([&] {
      HostBlock block = one.block();
      // A receiver with no sender, or a sender with no receiver and more
      // than the FIFO holds.
      FifoPrims<HostBlock> prims(block, receiving ? nullptr : &one.link.fifo,
                                 receiving ? &one.link.fifo : nullptr, buffer.data(),
                                 buffer.data(), copy, 1);
      result = receiving ? prims.recv(0, buffer.size()) : prims.send(0, buffer.size());
      status = prims.status();
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(done.load()) << (receiving ? "recv" : "send") << " returned without its peer";
    const Clock::time_point aborted = Clock::now();
    one.abortFlag = true;
    waiter.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - aborted).count();
    EXPECT_EQ(result, ncclSystemError) << (receiving ? "recv" : "send");
    EXPECT_EQ(status, ncclSystemError) << (receiving ? "recv" : "send");
    EXPECT_LT(seconds, 5.0) << (receiving ? "recv" : "send")
                            << " ended on the deadline, not on the abort";
    if (!receiving) {
      EXPECT_EQ(one.link.tail(), 2u) << "the sender filled more slots than the FIFO has";
    }
  }
}

}  // namespace
