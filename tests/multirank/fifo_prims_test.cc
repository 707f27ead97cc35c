// The ring kernel's primitives on the CPU, both protocols: Simple
// (device/fifo_prims.h, suite FifoPrims) and LL (device/fifo_ll_prims.h,
// suite FifoPrimsLL). One host thread plays each rank's thread block on
// each channel (or a team of host threads plays it, to exercise the
// blocks' barriers), and the FIFOs the kernels would share through CUDA IPC
// are plain host memory both ends reach. Every ring collective runs through
// runRingChannel (collectives/ring_collective.h) as the kernel runs it, and
// its results are checked exactly against a reference computed here element
// by element. Then: collectives back to back on the same FIFOs (the counters
// carry on), the two protocols alternating on the same FIFOs, a sender held
// back by a full FIFO, ranks that disagree, and abort.
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
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
#include "device/fifo_ll_prims.h"
#include "device/fifo_prims.h"

using namespace chorus;

namespace {

using Clock = std::chrono::steady_clock;

// A block that waits longer than this gives up (ncclSystemError): a bug
// fails the test instead of hanging it.
constexpr auto kDeadline = std::chrono::seconds(20);

// The protocol a collective runs on (the kernel picks one per collective,
// the same on every rank).
enum class Protocol { Simple, LL };

const char* protocolName(Protocol p) { return p == Protocol::LL ? "LL" : "Simple"; }

// The host threads that play one block together (the GPU's threads of a
// block): its barrier and what the leader hands to the others.
struct Team {
  Team(size_t n, Clock::time_point until) : size(n), deadline(until) {}

  // A barrier. Threads of a block that stop passing barriers alike (a bug
  // in the primitives) would wait forever: the test dies instead.
  void wait() {
    const uint64_t gen = generation.load(std::memory_order_acquire);
    if (arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == size) {
      arrived.store(0, std::memory_order_relaxed);
      generation.fetch_add(1, std::memory_order_release);
      return;
    }
    while (generation.load(std::memory_order_acquire) == gen) {
      if (Clock::now() > deadline + std::chrono::seconds(10)) {
        std::fprintf(stderr, "the threads of a block are stuck at a barrier\n");
        std::abort();
      }
      sched_yield();
    }
  }

  const size_t size;
  const Clock::time_point deadline;
  std::atomic<size_t> arrived{0};
  std::atomic<uint64_t> generation{0};
  alignas(16) unsigned char shared[16] = {};  // as much as the kernel's share() holds
  std::atomic<bool> any[2] = {{false}, {false}};
};

// The primitives' Block on the host. With no team, one host thread is the
// leader and the whole block, so sync and share have nothing to do; with a
// team, thread `index` of team->size, which take their parts of copies and
// reductions as a GPU block's threads do: contiguous ranges, in reverse
// order for copies (a thread's part of a copy is what other threads wrote
// in the reduction before it, and the LL protocol's threads take lines in
// turn), so that a missing barrier between two steps shows.
struct HostBlock {
  const std::atomic<bool>* abortFlag;
  Clock::time_point deadline;
  Team* team = nullptr;
  size_t index = 0;
  // Stores each half of an LL line on its own, in either order, with a
  // pause between (a reader that checks one flag only reads a torn line).
  bool tornLines = false;
  std::atomic<uint64_t>* lineStores = nullptr;  // counts storeLine calls, where set
  unsigned anyCalls = 0;
  unsigned steps = 0;

  bool leader() const { return index == 0; }
  uint64_t load(const uint64_t* word) const { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
  void store(uint64_t* word, uint64_t value) const {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
  }
  uint32_t load32(const uint32_t* word) const { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }
  void store32(uint32_t* word, uint32_t value) const {
    __atomic_store_n(word, value, __ATOMIC_RELEASE);
  }
  void release() const { std::atomic_thread_fence(std::memory_order_release); }
  void sync() const {
    if (team) team->wait();
  }
  template <typename T>
  void share(T* value) const {
    if (!team) return;
    static_assert(sizeof(T) <= sizeof(Team::shared), "a shared value fits");
    if (leader()) std::memcpy(team->shared, value, sizeof(T));
    team->wait();
    if (!leader()) std::memcpy(value, team->shared, sizeof(T));
    team->wait();
  }
  bool aborted() const {
    return abortFlag->load(std::memory_order_acquire) || Clock::now() >= deadline;
  }
  void pause() const { sched_yield(); }
  void copy(const void* from, void* to, size_t bytes) {
    lag();
    const size_t mirror = threadCount() - 1 - index;
    const size_t begin = part(bytes, mirror), end = part(bytes, mirror + 1);
    if (end > begin)
      std::memcpy(static_cast<char*>(to) + begin, static_cast<const char*>(from) + begin,
                  end - begin);
  }
  void reduceCopy(const RedOpArgs& op, const void* peer, const void* local, bool applyPre,
                  void* dst, bool applyPost, size_t count) {
    lag();
    const size_t es = elementSize(op.type);
    const size_t begin = part(count, index), end = part(count, index + 1);
    if (end == begin) return;
    chorus::reduceCopy(op, peer ? static_cast<const char*>(peer) + begin * es : nullptr,
                       static_cast<const char*>(local) + begin * es, applyPre,
                       static_cast<char*>(dst) + begin * es, applyPost, end - begin);
  }

  // The LL protocol's members.
  size_t threadIndex() const { return index; }
  size_t threadCount() const { return team ? team->size : 1; }
  void storeLine(uint64_t* line, uint64_t lo, uint64_t hi) const {
    if (lineStores) lineStores->fetch_add(1, std::memory_order_relaxed);
    // Relaxed: each half carries its own flag.
    if (!tornLines) {
      __atomic_store_n(line, lo, __ATOMIC_RELAXED);
      __atomic_store_n(line + 1, hi, __ATOMIC_RELAXED);
      return;
    }
    const bool hiFirst = reinterpret_cast<uintptr_t>(line) / 16 % 2 == 1;
    __atomic_store_n(hiFirst ? line + 1 : line, hiFirst ? hi : lo, __ATOMIC_RELAXED);
    sched_yield();
    __atomic_store_n(hiFirst ? line : line + 1, hiFirst ? lo : hi, __ATOMIC_RELAXED);
  }
  void loadLine(const uint64_t* line, uint64_t* lo, uint64_t* hi) const {
    *lo = __atomic_load_n(line, __ATOMIC_RELAXED);
    *hi = __atomic_load_n(line + 1, __ATOMIC_RELAXED);
  }
  bool anyOf(bool value) {
    if (!team) return value;
    // Two flags in turn: the leader clears the next call's flag, which no
    // thread sets before this call's second barrier.
    const unsigned k = anyCalls++ % 2;
    if (value) team->any[k].store(true, std::memory_order_relaxed);
    team->wait();
    const bool result = team->any[k].load(std::memory_order_relaxed);
    if (leader()) team->any[1 - k].store(false, std::memory_order_relaxed);
    team->wait();
    return result;
  }

 private:
  // In a team, one thread in turn falls behind the others at each copy or
  // reduction, as a GPU's warps do.
  void lag() {
    if (team && steps++ % team->size == index) sched_yield();
  }
  // Where this thread's part of n things starts.
  size_t part(size_t n, size_t thread) const {
    return team ? n * thread / team->size : (thread == 0 ? 0 : n);
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

// Slots per FIFO, bytes per Simple slot, 16-byte lines per LL slot (the
// first carries the byte count, each other 8 bytes).
struct FifoShape {
  uint32_t nSlots;
  uint32_t slotBytes;
  uint32_t llLinesPerSlot = 1 + 32;
};

// Bytes an LL slot carries.
size_t llBytes(FifoShape shape) {
  DeviceFifo fifo{};
  fifo.llLinesPerSlot = shape.llLinesPerSlot;
  return llDataBytes(fifo);
}

// One FIFO in host memory: the slots, a control area with the tail, the
// head (each on its own cache line) and the size words, and the LL lines
// (zero, as the runtime allocates them).
struct HostFifo {
  HostFifo(FifoShape shape, uint64_t start)
      : slots(size_t{shape.nSlots} * shape.slotBytes, kGarbage),
        control(128 + 4 * size_t{shape.nSlots}, 0),
        llLines(size_t{shape.nSlots} * shape.llLinesPerSlot * 16, 0) {
    fifo.slots = slots.data();
    fifo.tail = reinterpret_cast<uint64_t*>(control.data());
    fifo.head = reinterpret_cast<uint64_t*>(control.data() + 64);
    fifo.sizes = reinterpret_cast<uint32_t*>(control.data() + 128);
    fifo.nSlots = shape.nSlots;
    fifo.slotBytes = shape.slotBytes;
    fifo.llLines = reinterpret_cast<uint64_t*>(llLines.data());
    fifo.llLinesPerSlot = shape.llLinesPerSlot;
    *fifo.tail = start;
    *fifo.head = start;
  }
  uint64_t tail() const { return __atomic_load_n(fifo.tail, __ATOMIC_ACQUIRE); }
  uint64_t head() const { return __atomic_load_n(fifo.head, __ATOMIC_ACQUIRE); }

  Buffer slots;
  Buffer control;
  Buffer llLines;
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

// How a block runs: its threads, and how it stores LL lines.
struct BlockShape {
  size_t threads = 1;  // host threads per block (a team where more than one)
  bool tornLines = false;
};

// Runs body(rank, channel, block) on its own thread (or team of threads)
// for every rank and channel, as the ranks' kernels run their blocks; the
// first block that fails raises the abort flag so that the others stop
// waiting for it. Returns the statuses, rank-major; a block whose threads
// returned different results reads as ncclInternalError.
template <typename Body>
std::vector<ncclResult_t> runBlocks(int nranks, int nChannels, Body body,
                                    BlockShape shape = BlockShape{}) {
  std::atomic<bool> abortFlag{false};
  const Clock::time_point deadline = Clock::now() + kDeadline;
  const size_t blocks = static_cast<size_t>(nranks * nChannels), t = shape.threads;
  std::vector<ncclResult_t> status(blocks * t, ncclInternalError);
  std::vector<std::unique_ptr<Team>> teams;
  for (size_t b = 0; b < blocks; ++b)
    teams.push_back(t > 1 ? std::make_unique<Team>(t, deadline) : nullptr);
  std::vector<std::thread> threads;
  for (size_t b = 0; b < blocks; ++b)
    for (size_t i = 0; i < t; ++i)
      threads.emplace_back([&, b, i] {
        HostBlock block{&abortFlag, deadline, teams[b].get(), i, shape.tornLines};
        const ncclResult_t s = body(static_cast<int>(b) / nChannels,
                                    static_cast<int>(b) % nChannels, block);
        status[b * t + i] = s;
        if (s != ncclSuccess) abortFlag.store(true, std::memory_order_release);
      });
  for (std::thread& th : threads) th.join();
  std::vector<ncclResult_t> result(blocks);
  for (size_t b = 0; b < blocks; ++b) {
    result[b] = status[b * t];
    for (size_t i = 1; i < t; ++i)
      if (status[b * t + i] != result[b]) result[b] = ncclInternalError;
  }
  return result;
}

// Runs fn(prims) on the protocol's primitives; `scratch` (LL only): two
// LL slots' worth of bytes, 16-byte aligned.
template <typename Fn>
ncclResult_t withPrims(Protocol protocol, HostBlock& block, const DeviceFifo* toNext,
                       const DeviceFifo* fromPrev, const void* input, void* output,
                       const RedOpArgs& op, size_t elemSize, char* scratch, Fn fn) {
  if (protocol == Protocol::LL) {
    FifoLLPrims<HostBlock> prims(block, toNext, fromPrev, input, output, op, elemSize, scratch);
    return fn(prims);
  }
  FifoPrims<HostBlock> prims(block, toNext, fromPrev, input, output, op, elemSize);
  return fn(prims);
}

// Each block's LL scratch (shared memory on the GPU), kGarbage, with
// kGuardBytes after it that no block may write.
class BlockScratch {
 public:
  BlockScratch(size_t blocks, FifoShape shape) : bytes_(2 * llBytes(shape)) {
    for (size_t b = 0; b < blocks; ++b) buffers_.emplace_back(bytes_ + kGuardBytes, kGarbage);
  }
  char* at(size_t block) const { return buffers_[block].data(); }
  bool guardsIntact() const {
    for (const Buffer& b : buffers_)
      for (size_t g = 0; g < kGuardBytes; ++g)
        if (static_cast<unsigned char>(b.data()[bytes_ + g]) != kGarbage) return false;
    return true;
  }

 private:
  size_t bytes_;
  std::vector<Buffer> buffers_;
};

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

std::string describe(const RingCase& c, const HostRing& ring,
                     Protocol protocol = Protocol::Simple, BlockShape block = BlockShape{}) {
  std::ostringstream s;
  s << protocolName(protocol) << ": " << collName(c.coll) << " " << dataTypeName(c.type);
  if (reduces(c.coll)) s << " " << opName(c.op);
  s << " count " << c.count;
  if (hasRoot(c.coll)) s << " root " << c.root;
  s << (c.inPlace ? " in place" : " out of place") << " on " << ring.nranks() << " ranks, "
    << (c.nChannels ? c.nChannels : ring.nChannels()) << " of " << ring.nChannels()
    << " channels, " << ring.shape().nSlots << " slots of ";
  if (protocol == Protocol::LL)
    s << llBytes(ring.shape()) << " bytes (" << ring.shape().llLinesPerSlot << " LL lines)";
  else
    s << ring.shape().slotBytes << " bytes";
  if (block.threads > 1) s << ", " << block.threads << " threads per block";
  if (block.tornLines) s << ", LL lines stored one half at a time";
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

// Runs the collective on every rank and channel of `ring` over `protocol`
// and checks it: "" when every block succeeded, the FIFOs are empty again,
// every output is exact, inputs (out of place) and the guard bytes after
// every output and every LL scratch are untouched; else what went wrong
// first.
std::string runAndCheck(const HostRing& ring, const RingCase& c,
                        Protocol protocol = Protocol::Simple, BlockShape block = BlockShape{}) {
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
  const BlockScratch scratch(static_cast<size_t>(n * channels), ring.shape());
  const std::vector<ncclResult_t> status = runBlocks(
      n, channels,
      [&](int r, int ch, HostBlock& hostBlock) {
        const RankBuffers& b = ranks[static_cast<size_t>(r)];
        return withPrims(protocol, hostBlock, ring.toNext(ch, r), ring.fromPrev(ch, r), b.input,
                         b.output, op, es, scratch.at(static_cast<size_t>(r * channels + ch)),
                         [&](auto& prims) {
                           const ncclResult_t s = runRingChannel(prims, c.coll, r, n, c.root,
                                                                 c.count, es, channels, ch);
                           // The kernel reads prims.status(), the host the
                           // result: they agree.
                           return s != ncclSuccess ? s : prims.status();
                         });
      },
      block);

  std::ostringstream err;
  for (size_t i = 0; i < status.size(); ++i)
    if (status[i] != ncclSuccess)
      err << "rank " << i / static_cast<size_t>(channels) << " channel "
          << i % static_cast<size_t>(channels) << ": " << ncclGetErrorString(status[i]) << "; ";
  if (!err.str().empty()) return err.str();
  const std::string left = ring.undrained();
  if (!left.empty()) return "slots left in the FIFOs: " + left;
  if (!scratch.guardsIntact()) return "a block wrote past its LL scratch";

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
                        TypeOpCycle& cycle, Protocol protocol) {
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
          const std::string err = runAndCheck(ring, c, protocol);
          ASSERT_TRUE(err.empty()) << describe(c, ring, protocol) << ": " << err;
        }
}

// ---- the collectives ---------------------------------------------------------
//
// Each test body runs once per protocol: TEST(FifoPrims, X) on Simple,
// TEST(FifoPrimsLL, X) on LL, with the same cases.

// Slots small enough that pieces span several slots and the FIFOs wrap many
// times; three slots on three channels (not a power of two), and LL slots
// of 192 bytes there (not a power of two either).
void everyCollectiveOnOneToFiveRanks(Protocol protocol) {
  TypeOpCycle cycle;
  for (int nranks = 1; nranks <= 5; ++nranks)
    for (int channels : {1, 3}) {
      const HostRing ring(nranks, channels,
                          channels == 1 ? FifoShape{4, 256, 1 + 32} : FifoShape{3, 1024, 1 + 24});
      runEveryCollective(ring, {0, 1, 7, 1023, 4099}, cycle, protocol);
      if (::testing::Test::HasFatalFailure()) return;
    }
}
TEST(FifoPrims, EveryRingCollectiveIsExactOnOneToFiveRanks) {
  everyCollectiveOnOneToFiveRanks(Protocol::Simple);
}
TEST(FifoPrimsLL, EveryRingCollectiveIsExactOnOneToFiveRanks) {
  everyCollectiveOnOneToFiveRanks(Protocol::LL);
}

void everyCollectiveOnEightRanks(Protocol protocol) {
  TypeOpCycle cycle;
  for (int channels : {1, 3}) {
    const HostRing ring(8, channels, FifoShape{4, 512, 1 + 64});
    runEveryCollective(ring, {0, 7, 1023, 4099}, cycle, protocol);
    if (::testing::Test::HasFatalFailure()) return;
  }
}
TEST(FifoPrims, EveryRingCollectiveIsExactOnEightRanks) {
  everyCollectiveOnEightRanks(Protocol::Simple);
}
TEST(FifoPrimsLL, EveryRingCollectiveIsExactOnEightRanks) {
  everyCollectiveOnEightRanks(Protocol::LL);
}

void everyDatatypeAndOperator(Protocol protocol) {
  for (int nranks : {2, 3, 4}) {
    const HostRing ring(nranks, 2, FifoShape{4, 256, 1 + 32});
    int k = 0;
    for (ncclDataType_t type : kTypes)
      for (ncclRedOp_t op : kOps) {
        if (!exactOn(type, op, nranks)) continue;
        for (RingCollective coll :
             {RingCollective::AllReduce, RingCollective::Reduce, RingCollective::ReduceScatter}) {
          ++k;
          const RingCase c{coll, type, op, 1023, k % nranks, k % 2 == 0};
          const std::string err = runAndCheck(ring, c, protocol);
          ASSERT_TRUE(err.empty()) << describe(c, ring, protocol) << ": " << err;
        }
      }
  }
}
TEST(FifoPrims, EveryDatatypeAndOperatorIsExactInEveryReduction) {
  everyDatatypeAndOperator(Protocol::Simple);
}
TEST(FifoPrimsLL, EveryDatatypeAndOperatorIsExactInEveryReduction) {
  everyDatatypeAndOperator(Protocol::LL);
}

// LL is for small messages, but nothing in it depends on the count.
void largeCounts(Protocol protocol) {
  const size_t count = 100003;
  int k = 0;
  for (FifoShape shape : {FifoShape{4, 1024, 1 + 32}, FifoShape{4, 1u << 20, 1 + 512}})
    for (int nranks : {2, 3, 5}) {
      const HostRing ring(nranks, 3, shape);
      for (RingCollective coll : kColls) {
        ++k;
        const ncclDataType_t type = k % 3 == 0 ? ncclFloat64 : k % 3 == 1 ? ncclFloat32 : ncclInt8;
        const RingCase c{coll, type, ncclSum, count, nranks - 1, k % 2 == 0};
        const std::string err = runAndCheck(ring, c, protocol);
        ASSERT_TRUE(err.empty()) << describe(c, ring, protocol) << ": " << err;
      }
    }
}
TEST(FifoPrims, LargeCountsAreExactThroughSmallAndLargeSlots) { largeCounts(Protocol::Simple); }
TEST(FifoPrimsLL, LargeCountsAreExactThroughSmallAndLargeSlots) { largeCounts(Protocol::LL); }

// Collectives of every kind, datatype and channel count one after another.
std::vector<RingCase> backToBackSequence() {
  return {
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
}

// Runs `sequence` twice on `ring`, collective i of round r over
// protocolOf(r, i), checking each and that each of a nonzero count moved
// the counters on.
template <typename ProtocolOf>
void runSequence(const HostRing& ring, const std::vector<RingCase>& sequence,
                 ProtocolOf protocolOf) {
  uint64_t carried = ring.totalTail();
  for (int round = 0; round < 2; ++round)
    for (size_t i = 0; i < sequence.size(); ++i) {
      const RingCase& c = sequence[i];
      const Protocol protocol = protocolOf(round, i);
      const std::string err = runAndCheck(ring, c, protocol);
      ASSERT_TRUE(err.empty()) << "round " << round << " collective " << i << ": "
                               << describe(c, ring, protocol) << ": " << err;
      const uint64_t now = ring.totalTail();
      if (c.count > 0) {
        EXPECT_GT(now, carried) << describe(c, ring, protocol) << " moved no slot";
      }
      carried = now;
    }
}

// The counters never go back: each collective's primitives start where the
// last one left them, whatever the datatype (and so the elements per slot),
// the collective, or how many of the channels it uses. They start just under
// 2^32, so that they cross it on the way (LL's flags are 32 bits).
void backToBack(Protocol protocol) {
  const uint64_t start = (uint64_t{1} << 32) - 5;
  for (FifoShape shape : {FifoShape{2, 256, 1 + 32}, FifoShape{3, 192, 1 + 24}}) {
    const HostRing ring(3, 3, shape, start);
    runSequence(ring, backToBackSequence(), [&](int, size_t) { return protocol; });
    if (::testing::Test::HasFatalFailure()) return;
    EXPECT_GT(ring.link(0, 0).tail(), uint64_t{1} << 32);
  }
}
TEST(FifoPrims, CollectivesBackToBackStartWhereTheLastOneLeftTheCounters) {
  backToBack(Protocol::Simple);
}
TEST(FifoPrimsLL, CollectivesBackToBackStartWhereTheLastOneLeftTheCounters) {
  backToBack(Protocol::LL);
}

// The kernel picks the protocol per collective (LL for small ones), so the
// two take turns on the same FIFOs: each must start where the other left
// the shared head and tail (LL stores its tail once, at the end), and LL
// must not take what it left in its lines several Simple collectives ago
// for new data. Every turn (Simple to LL, LL to Simple, either twice), the
// second round with the protocols swapped; counters from 0 and across 2^32;
// LL slots smaller and larger than Simple's.
TEST(FifoPrimsLL, ProtocolsTakeTurnsOnTheSameFifos) {
  constexpr Protocol S = Protocol::Simple, L = Protocol::LL;
  const Protocol turns[] = {L, S, L, L, S, S, L, S, L, L, L, S, S, L};
  const std::vector<RingCase> sequence = backToBackSequence();
  ASSERT_EQ(sequence.size(), sizeof(turns) / sizeof(turns[0]));
  for (FifoShape shape : {FifoShape{2, 256, 1 + 16}, FifoShape{3, 192, 1 + 40}})
    for (uint64_t start : {uint64_t{0}, (uint64_t{1} << 32) - 7}) {
      const HostRing ring(3, 3, shape, start);
      runSequence(ring, sequence, [&](int round, size_t i) {
        return round == 0 ? turns[i] : turns[i] == S ? L : S;
      });
      if (HasFatalFailure()) return;
    }
}

// Blocks of several threads, as on the GPU: LL's threads take lines in turn
// while copies and reductions split ranges, so each barrier between them
// matters (a slot's scratch read before every thread unpacked its lines, or
// written again before every thread packed it, shows in the results). Counts
// that leave partial lines and partial slots; then (LL) both protocols in
// turn.
void severalThreadsPerBlock(Protocol protocol) {
  const RingCase cases[] = {
      {RingCollective::AllReduce, ncclFloat32, ncclSum, 1001, 0, false},
      {RingCollective::AllGather, ncclInt8, ncclSum, 333, 0, true},
      {RingCollective::ReduceScatter, ncclBfloat16, ncclMax, 130, 0, false},
      {RingCollective::Broadcast, ncclUint64, ncclSum, 257, 2, false},
      {RingCollective::Reduce, ncclFloat64, kPreMulSumTwo, 515, 1, true},
      {RingCollective::AllReduce, ncclInt32, ncclProd, 77, 0, true},
  };
  const bool mixed = protocol == Protocol::LL;
  for (size_t threads : {2, 3, 4}) {
    const HostRing ring(3, 2, FifoShape{3, 256, 1 + 20});
    const BlockShape block{threads};
    for (int round = 0; round < (mixed ? 3 : 2); ++round)
      for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        const RingCase& c = cases[i];
        const Protocol p = round < 2 ? protocol : i % 2 ? Protocol::Simple : Protocol::LL;
        const std::string err = runAndCheck(ring, c, p, block);
        ASSERT_TRUE(err.empty()) << "round " << round << ": " << describe(c, ring, p, block)
                                 << ": " << err;
      }
  }
}
TEST(FifoPrims, BlocksOfSeveralThreadsAgree) { severalThreadsPerBlock(Protocol::Simple); }
TEST(FifoPrimsLL, BlocksOfSeveralThreadsAgree) { severalThreadsPerBlock(Protocol::LL); }

// Each half of a line carries its own flag: a line whose second half is not
// there yet is not read, whichever half comes first.
TEST(FifoPrimsLL, ALineIsReadOnlyWhenBothHalvesAreThere) {
  const RingCase cases[] = {
      {RingCollective::AllReduce, ncclFloat32, ncclSum, 2000, 0, false},
      {RingCollective::AllGather, ncclInt32, ncclSum, 700, 0, false},
      {RingCollective::Broadcast, ncclFloat64, ncclSum, 500, 1, true},
      {RingCollective::ReduceScatter, ncclInt8, ncclMax, 300, 0, false},
  };
  const HostRing ring(3, 2, FifoShape{4, 256, 1 + 32});
  BlockShape block;
  block.tornLines = true;
  for (int round = 0; round < 2; ++round)
    for (const RingCase& c : cases) {
      const std::string err = runAndCheck(ring, c, Protocol::LL, block);
      ASSERT_TRUE(err.empty()) << describe(c, ring, Protocol::LL, block) << ": " << err;
    }
}

// ---- the FIFO protocol -------------------------------------------------------

// One FIFO between a sender and a receiver, the abort flag both watch, and
// the LL lines stored so far.
struct OneLink {
  std::atomic<bool> abortFlag{false};
  std::atomic<uint64_t> lineStores{0};
  HostFifo link;
  explicit OneLink(FifoShape shape, uint64_t start = 0) : link(shape, start) {}
  HostBlock block(Clock::duration limit = kDeadline, Team* team = nullptr, size_t index = 0) {
    return HostBlock{&abortFlag, Clock::now() + limit, team, index, false, &lineStores};
  }
};

// `slots` slots' worth of bytes, every byte of slot s holding s + 1.
std::vector<char> slotPattern(size_t slots, size_t slotBytes) {
  std::vector<char> data(slots * slotBytes);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i / slotBytes + 1);
  return data;
}

// Simple publishes a slot with its tail; LL with its lines (a full slot is
// all of them), and stores the tail only at the end.
void senderWaitsForTheReceiver(Protocol protocol) {
  const FifoShape shape{3, 64, 1 + 8};  // 64 bytes a slot in either protocol
  const size_t slotBytes = 64, slots = 10;
  const bool ll = protocol == Protocol::LL;
  OneLink one(shape);
  const BlockScratch scratch(2, shape);
  const std::vector<char> data = slotPattern(slots, slotBytes);
  const RedOpArgs copy = builtinRedOp(ncclSum, ncclInt8, 1);
  ncclResult_t sent = ncclInternalError;
  std::thread sender([&] {
    HostBlock block = one.block();
    sent = withPrims(protocol, block, &one.link.fifo, nullptr, data.data(), nullptr, copy, 1,
                     scratch.at(0), [&](auto& prims) {
                       const ncclResult_t s = prims.send(0, data.size());
                       prims.finish();
                       return s;
                     });
  });
  // No receiver yet: the sender fills the three slots and waits.
  auto published = [&] { return ll ? one.lineStores.load() : one.link.tail(); };
  const uint64_t full = ll ? uint64_t{shape.nSlots} * shape.llLinesPerSlot : shape.nSlots;
  const Clock::time_point until = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < until && published() < full) sched_yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(published(), full) << "the sender overwrote slots nobody had read";
  EXPECT_EQ(one.link.head(), 0u);
  if (!ll) {
    for (uint32_t s = 0; s < shape.nSlots; ++s) EXPECT_EQ(one.link.fifo.sizes[s], slotBytes);
  }

  std::vector<char> received(data.size(), 0);
  ncclResult_t got = ncclInternalError;
  std::thread receiver([&] {
    HostBlock block = one.block();
    got = withPrims(protocol, block, nullptr, &one.link.fifo, nullptr, received.data(), copy, 1,
                    scratch.at(1), [&](auto& prims) { return prims.recv(0, received.size()); });
  });
  sender.join();
  receiver.join();
  EXPECT_EQ(sent, ncclSuccess);
  EXPECT_EQ(got, ncclSuccess);
  EXPECT_EQ(one.link.tail(), slots);
  EXPECT_EQ(one.link.head(), slots);
  EXPECT_TRUE(received == data) << "slots arrived out of order or overwritten";
  EXPECT_TRUE(scratch.guardsIntact());
}
TEST(FifoPrims, ASenderWaitsForTheReceiverToReleaseASlotBeforeReusingIt) {
  senderWaitsForTheReceiver(Protocol::Simple);
}
TEST(FifoPrimsLL, ASenderWaitsForTheReceiverToReleaseASlotBeforeReusingIt) {
  senderWaitsForTheReceiver(Protocol::LL);
}

// The receiver checks each slot's size (Simple's size word, LL's line 0): a
// piece cut differently (ranks that called different collectives) stops it
// with ncclInvalidUsage.
void ranksThatDisagree(Protocol protocol) {
  struct Mismatch {
    size_t count0, count1;
    int channels;
  };
  // 10 against 12 floats: the first chunks are 5 and 6 elements; 4099
  // against 4100 on three channels: only the last round of the last
  // channel differs.
  const FifoShape shape{4, 256, 1 + 32};
  for (const Mismatch m : {Mismatch{10, 12, 1}, Mismatch{4099, 4100, 3}}) {
    const HostRing ring(2, m.channels, shape);
    const BlockScratch scratch(static_cast<size_t>(2 * m.channels), shape);
    std::vector<float> in(8192, 1.0f), out0(8192), out1(8192);
    const RedOpArgs op = builtinRedOp(ncclSum, ncclFloat32, 2);
    const Clock::time_point begin = Clock::now();
    const std::vector<ncclResult_t> status =
        runBlocks(2, m.channels, [&](int r, int ch, HostBlock& block) {
          return withPrims(protocol, block, ring.toNext(ch, r), ring.fromPrev(ch, r), in.data(),
                           r == 0 ? out0.data() : out1.data(), op, sizeof(float),
                           scratch.at(static_cast<size_t>(r * m.channels + ch)),
                           [&](auto& prims) {
                             const ncclResult_t s = runRingChannel(
                                 prims, RingCollective::AllReduce, r, 2, 0,
                                 r == 0 ? m.count0 : m.count1, sizeof(float), m.channels, ch);
                             return s != ncclSuccess ? s : prims.status();
                           });
        });
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    int invalid = 0;
    for (ncclResult_t s : status) invalid += s == ncclInvalidUsage;
    EXPECT_GE(invalid, 1) << m.count0 << " against " << m.count1 << " floats: no rank saw it";
    // The others were stopped by the abort flag, not by the deadline.
    EXPECT_LT(seconds, 10.0) << m.count0 << " against " << m.count1;
  }
}
TEST(FifoPrims, RanksThatDisagreeOnTheCountStopWithInvalidUsage) {
  ranksThatDisagree(Protocol::Simple);
}
TEST(FifoPrimsLL, RanksThatDisagreeOnTheCountStopWithInvalidUsage) {
  ranksThatDisagree(Protocol::LL);
}

// Ranks whose counts put them on different protocols (the kernel picks LL
// by bytes per rank): the root broadcasts on LL, the other rank receives
// on Simple, after four Simple broadcasts of the same count left every
// Simple slot with the size it expects and data of its own. The LL sender's
// finish() zeroed the size word of its step, so the Simple receiver stops
// with ncclInvalidUsage instead of taking the old slot for the new data.
TEST(FifoPrimsLL, ARankOnTheOtherProtocolFailsTheSizeCheckInsteadOfReadingOldData) {
  const FifoShape shape{4, 256, 1 + 32};  // both protocols: 64 floats per slot
  const size_t count = 64;
  const HostRing ring(2, 1, shape);
  const BlockScratch scratch(2, shape);
  const RedOpArgs op = builtinRedOp(ncclSum, ncclFloat32, 2);
  std::vector<float> in(count), out(count);
  auto broadcast = [&](Protocol root, Protocol other) {
    return runBlocks(2, 1, [&](int r, int ch, HostBlock& block) {
      return withPrims(r == 0 ? root : other, block, ring.toNext(ch, r), ring.fromPrev(ch, r),
                       in.data(), r == 0 ? in.data() : out.data(), op, sizeof(float),
                       scratch.at(static_cast<size_t>(r)), [&](auto& prims) {
                         const ncclResult_t s = runRingChannel(
                             prims, RingCollective::Broadcast, r, 2, 0, count, sizeof(float), 1, ch);
                         return s != ncclSuccess ? s : prims.status();
                       });
    });
  };
  for (int i = 0; i < 4; ++i) {
    std::fill(in.begin(), in.end(), static_cast<float>(i + 1));
    const std::vector<ncclResult_t> status = broadcast(Protocol::Simple, Protocol::Simple);
    ASSERT_EQ(status[0], ncclSuccess);
    ASSERT_EQ(status[1], ncclSuccess);
    ASSERT_EQ(out[count - 1], static_cast<float>(i + 1));
  }
  std::fill(in.begin(), in.end(), 9.0f);
  const std::vector<ncclResult_t> status = broadcast(Protocol::LL, Protocol::Simple);
  EXPECT_EQ(status[1], ncclInvalidUsage) << "the Simple receiver took an old slot for new data";
}

// One slot of more or fewer bytes than the receiver expects (12 floats)
// stops it at once with ncclInvalidUsage and frees nothing. More: every
// line or byte the receiver reads is there. Fewer: Simple's leader and a
// one-thread LL block read the count first; in an LL block of several
// threads, those whose lines never come see the count in line 0 while
// they wait.
void aSlotOfAnotherSize(Protocol protocol) {
  const FifoShape shape{4, 256, 1 + 32};
  const size_t expected = 12;
  for (size_t threads : {1, 4})
    for (size_t sentCount : {16, 8}) {
      const std::string what = std::string(protocolName(protocol)) + ": " +
                               std::to_string(sentCount) + " floats sent, " +
                               std::to_string(expected) + " expected, " +
                               std::to_string(threads) + " receiving threads";
      OneLink one(shape);
      const BlockScratch scratch(2, shape);
      std::vector<float> in(16, 1.0f), out(16, 0.0f);
      const RedOpArgs op = builtinRedOp(ncclSum, ncclFloat32, 1);
      // One slot: the sender needs nothing from the receiver.
      HostBlock sendBlock = one.block();
      const ncclResult_t sent = withPrims(
          protocol, sendBlock, &one.link.fifo, nullptr, in.data(), nullptr, op, sizeof(float),
          scratch.at(0), [&](auto& prims) { return prims.send(0, sentCount); });
      EXPECT_EQ(sent, ncclSuccess) << what;

      std::unique_ptr<Team> team =
          threads > 1 ? std::make_unique<Team>(threads, Clock::now() + kDeadline) : nullptr;
      std::vector<ncclResult_t> got(threads, ncclInternalError);
      std::atomic<size_t> done{0};
      std::vector<std::thread> receivers;
      for (size_t i = 0; i < threads; ++i)
        receivers.emplace_back([&, i] {
          HostBlock block = one.block(kDeadline, team.get(), i);
          got[i] = withPrims(protocol, block, nullptr, &one.link.fifo, nullptr, out.data(), op,
                             sizeof(float), scratch.at(1),
                             [&](auto& prims) { return prims.recv(0, expected); });
          ++done;
        });
      const Clock::time_point until = Clock::now() + std::chrono::seconds(5);
      while (Clock::now() < until && done.load() < threads) sched_yield();
      EXPECT_EQ(done.load(), threads) << what << ": the receiver did not stop before the abort";
      const Clock::time_point aborted = Clock::now();
      one.abortFlag = true;
      for (std::thread& t : receivers) t.join();
      const double seconds = std::chrono::duration<double>(Clock::now() - aborted).count();
      EXPECT_LT(seconds, 5.0) << what << ": ended on the deadline, not on the abort";
      for (size_t i = 0; i < threads; ++i) EXPECT_EQ(got[i], ncclInvalidUsage) << what;
      EXPECT_EQ(one.link.head(), 0u) << what << ": the receiver freed a slot it refused";
    }
}
TEST(FifoPrims, ASlotOfAnotherSizeStopsTheReceiverWithInvalidUsage) {
  aSlotOfAnotherSize(Protocol::Simple);
}
TEST(FifoPrimsLL, ASlotOfAnotherSizeStopsTheReceiverWithInvalidUsage) {
  aSlotOfAnotherSize(Protocol::LL);
}

// Pieces that happen to match in size cannot be told apart: rank 0 finishes
// a one-element AllReduce (it needs nothing from rank 1 but its first
// slot), while rank 1, running two elements, takes rank 0's result for its
// own second chunk and then waits for a slot that never comes, until its
// deadline (on the GPU: until the abort flag).
void disagreementTheSizesCannotShow(Protocol protocol) {
  const FifoShape shape{4, 256, 1 + 32};
  const HostRing ring(2, 1, shape);
  const BlockScratch scratch(2, shape);
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
      status[static_cast<size_t>(r)] = withPrims(
          protocol, block, ring.toNext(0, r), ring.fromPrev(0, r), in.data(),
          r == 0 ? out0.data() : out1.data(), op, sizeof(float),
          scratch.at(static_cast<size_t>(r)), [&](auto& prims) {
            return runRingChannel(prims, RingCollective::AllReduce, r, 2, 0,
                                  static_cast<size_t>(r + 1), sizeof(float), 1, 0);
          });
    });
  for (std::thread& t : ranks) t.join();
  EXPECT_EQ(status[0], ncclSuccess);
  EXPECT_EQ(status[1], ncclSystemError);
}
TEST(FifoPrims, ADisagreementTheSizesCannotShowEndsOnTheDeadline) {
  disagreementTheSizesCannotShow(Protocol::Simple);
}
TEST(FifoPrimsLL, ADisagreementTheSizesCannotShowEndsOnTheDeadline) {
  disagreementTheSizesCannotShow(Protocol::LL);
}

// LL's flags are 32 bits of the 64-bit step. At no step, 0 or around 2^32,
// does a receiver take lines nobody wrote (zero, as allocated) for a slot;
// and slots sent from there, across the wrap, arrive.
TEST(FifoPrimsLL, NoStepTakesLinesNobodyWroteForData) {
  const FifoShape shape{2, 64, 1 + 8};
  const size_t slots = 5;
  const RedOpArgs copy = builtinRedOp(ncclSum, ncclInt8, 1);
  const std::vector<char> data = slotPattern(slots, 64);
  for (uint64_t start : {uint64_t{0}, (uint64_t{1} << 32) - 2, (uint64_t{1} << 32) - 1,
                         uint64_t{1} << 32, (uint64_t{1} << 33) - 1}) {
    OneLink one(shape, start);
    const BlockScratch scratch(2, shape);
    std::vector<char> received(data.size(), 0);
    // No sender yet: the receiver waits, until its deadline.
    HostBlock alone = one.block(std::chrono::milliseconds(100));
    const ncclResult_t waited =
        withPrims(Protocol::LL, alone, nullptr, &one.link.fifo, nullptr, received.data(), copy, 1,
                  scratch.at(1), [&](auto& prims) { return prims.recv(0, received.size()); });
    EXPECT_EQ(waited, ncclSystemError) << "start " << start << ": a slot nobody sent was taken";
    EXPECT_EQ(one.link.head(), start) << "start " << start;

    ncclResult_t sent = ncclInternalError, got = ncclInternalError;
    std::thread sender([&] {
      HostBlock block = one.block();
      sent = withPrims(Protocol::LL, block, &one.link.fifo, nullptr, data.data(), nullptr, copy,
                       1, scratch.at(0), [&](auto& prims) {
                         const ncclResult_t s = prims.send(0, data.size());
                         prims.finish();
                         return s;
                       });
    });
    std::thread receiver([&] {
      HostBlock block = one.block();
      got = withPrims(Protocol::LL, block, nullptr, &one.link.fifo, nullptr, received.data(),
                      copy, 1, scratch.at(1),
                      [&](auto& prims) { return prims.recv(0, received.size()); });
    });
    sender.join();
    receiver.join();
    EXPECT_EQ(sent, ncclSuccess) << "start " << start;
    EXPECT_EQ(got, ncclSuccess) << "start " << start;
    EXPECT_TRUE(received == data) << "start " << start;
    EXPECT_EQ(one.link.tail(), start + slots) << "start " << start;
    EXPECT_EQ(one.link.head(), start + slots) << "start " << start;
  }
}

void abortEndsAWait(Protocol protocol) {
  for (bool receiving : {true, false}) {
    const std::string what =
        std::string(protocolName(protocol)) + (receiving ? ": recv" : ": send");
    const FifoShape shape{2, 64, 1 + 8};  // 64 bytes a slot in either protocol
    OneLink one(shape);
    const BlockScratch scratch(1, shape);
    std::vector<char> buffer(64 * 5, 1);
    const RedOpArgs copy = builtinRedOp(ncclSum, ncclInt8, 1);
    ncclResult_t result = ncclSuccess, status = ncclSuccess;
    std::atomic<bool> done{false};
    std::thread waiter([&] {
      HostBlock block = one.block();
      // A receiver with no sender, or a sender with no receiver and more
      // than the FIFO holds.
      withPrims(protocol, block, receiving ? nullptr : &one.link.fifo,
                receiving ? &one.link.fifo : nullptr, buffer.data(), buffer.data(), copy, 1,
                scratch.at(0), [&](auto& prims) {
                  result = receiving ? prims.recv(0, buffer.size()) : prims.send(0, buffer.size());
                  status = prims.status();
                  prims.finish();
                  return result;
                });
      done = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_FALSE(done.load()) << what << " returned without its peer";
    const Clock::time_point aborted = Clock::now();
    one.abortFlag = true;
    waiter.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - aborted).count();
    EXPECT_EQ(result, ncclSystemError) << what;
    EXPECT_EQ(status, ncclSystemError) << what;
    EXPECT_LT(seconds, 5.0) << what << " ended on the deadline, not on the abort";
    if (!receiving) {
      EXPECT_EQ(one.link.tail(), 2u) << what << ": the sender filled more slots than the FIFO has";
    }
  }
}
TEST(FifoPrims, AbortEndsABlockThatWaitsToReceiveOrToSend) { abortEndsAWait(Protocol::Simple); }
TEST(FifoPrimsLL, AbortEndsABlockThatWaitsToReceiveOrToSend) { abortEndsAWait(Protocol::LL); }

}  // namespace
