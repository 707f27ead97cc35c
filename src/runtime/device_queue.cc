#include "runtime/device_queue.h"

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "collectives/datatypes.h"
#include "collectives/reduce_ops.h"
#include "common/deadline.h"
#include "common/log.h"
#include "common/result.h"
#include "device/reduce_copy_kernel.h"
#include "device/stream_gate.h"
#include "device/worker_kernel.h"
#include "runtime/comm.h"
#include "runtime/cuda_capture_mode.h"
#include "runtime/cuda_check.h"
#include "runtime/device.h"
#include "runtime/device_host_staging.h"
#include "runtime/command_mover.h"
#include "runtime/device_mover.h"
#include "runtime/device_pools.h"
#include "runtime/device_direct.h"
#include "runtime/device_ring_launch.h"
#include "runtime/host_executor.h"

namespace chorus {
namespace {

// Gate counters per communicator: tickets in flight at once, plus graphs'.
constexpr uint32_t kSlots = kRingTickets;
// [0] abort word (worker kernels leave when it is set), [1] worker blocks
// exited, [2] the first ring kernel failure (an ncclResult_t), [3] the ring
// kernels' abort word (raised only by abort or a failed drain: the proxy's
// end raises [0] while ring kernels may still be running).
constexpr size_t kControlWords = 16;
constexpr size_t kRingStatusWord = 2;
constexpr size_t kRingAbortWord = 3;
// The proxy polls open gates this many times (yielding the core) before it
// sleeps between polls.
constexpr int kPollsBeforeSleep = 4096;
constexpr auto kPollSleep = std::chrono::microseconds(20);

template <typename T>
ncclResult_t deviceView(T* host, T** device) {
  return cudaCheck(cudaHostGetDevicePointer(reinterpret_cast<void**>(device), host, 0),
                   "cudaHostGetDevicePointer");
}

bool reached(uint32_t value, uint32_t target) { return static_cast<int32_t>(value - target) >= 0; }

// Set when the graph that captured a ticket is destroyed.
struct GraphLink {
  std::atomic<bool> released{false};
};

}  // namespace

struct DeviceTicket {
  std::vector<Op> ops;
  std::vector<cudaStream_t> streams;  // the first carries the gate
  uint32_t slot = 0;
  uint32_t target = 0;  // outside capture: the value its gate opens with
  std::shared_ptr<GraphLink> graph;  // captured in a graph: runs once per replay
  bool ringKernel = false;  // launched as the ring kernel: no slot, no proxy
  uint32_t base = 0;     // captured: the slot's count when it was captured
  uint32_t handled = 0;  // captured: base + replays run so far

  bool persistent() const { return graph != nullptr; }
  // What the gate-open and worker kernels are given: the target, or 0 ("count the replay").
  uint32_t gateValue() const { return persistent() ? 0 : target; }
};

namespace {

class CudaDeviceQueue final : public DeviceQueue {
 public:
  explicit CudaDeviceQueue(ncclComm* comm) : comm_(comm), slotUses_(kSlots, 0), slotBusy_(kSlots, 0) {}
  ~CudaDeviceQueue() override;
  ncclResult_t init();
  ncclResult_t open(const Op* ops, size_t n, std::shared_ptr<DeviceTicket>* ticket) override;
  ncclResult_t hold(const std::shared_ptr<DeviceTicket>& ticket) override;
  ncclResult_t shutdown() override;
  ncclResult_t kernelFailure() const override {
    return ringLauncher_ == nullptr ? ncclSuccess : ringLauncher_->failure();
  }

 private:
  ncclResult_t takeSlot(bool persistent, uint32_t* slot);
  ncclResult_t initRingKernel();
  ncclResult_t runTicket(const DeviceTicket& ticket);
  ncclResult_t runLocal(Op op, DataMover& mover);
  void proxyLoop();
  void finishTicket(const std::shared_ptr<DeviceTicket>& ticket);
  bool gateOpen(const DeviceTicket& ticket) const;
  void releaseHeldStreams();
  void dropReleasedGraphs();  // with mutex_ held

  ncclComm* comm_;
  GateCounters* counters_ = nullptr;        // pinned and mapped: the host's view
  GateCounters* countersDevice_ = nullptr;  // the device's view
  uint32_t* control_ = nullptr;             // kControlWords words
  uint32_t* controlDevice_ = nullptr;
  cudaStream_t stream_ = nullptr;           // the proxy's copies and reductions (shared)
  std::unique_ptr<CudaMover> mover_;          // the host-memory path's copies (proxy stream)
  std::unique_ptr<CommandMover> commands_;    // the direct path's, run by the worker kernels
  RingState* ring_ = nullptr;                 // pinned and mapped: the host's view
  RingState* ringDevice_ = nullptr;
  uint32_t* barrier_ = nullptr;               // the workers' grid barrier (device memory)
  HostBounceBuffer bounce_;  // host copies of buffers the direct path does not take
  std::unique_ptr<RingLauncher> ringLauncher_;  // CHORUS_DEVICE_RING: null when off

  std::mutex mutex_;
  std::condition_variable changed_;  // a ticket was posted or finished, or stop
  std::deque<std::shared_ptr<DeviceTicket>> eager_;
  std::vector<std::shared_ptr<DeviceTicket>> persistent_;
  std::vector<uint32_t> slotUses_;  // gates opened per slot outside capture
  std::vector<char> slotBusy_;
  uint32_t nextSlot_ = 0;
  uint64_t workersLaunched_ = 0;  // worker kernels enqueued outside capture
  uint64_t retiredReplays_ = 0;   // worker kernels run by replays of destroyed graphs
  bool stopping_ = false;
  bool abandoned_ = false;      // shutdown gave up on unfinished tickets
  std::thread proxy_;
};

ncclResult_t CudaDeviceQueue::init() {
  RelaxedCaptureMode relaxed;
  CHORUS_CHECK(takePinned(kSlots, &counters_));
  CHORUS_CHECK(takePinned(kControlWords, &control_));
  CHORUS_CHECK(takePinned(1, &ring_));
  CHORUS_CHECK(deviceView(counters_, &countersDevice_));
  CHORUS_CHECK(deviceView(control_, &controlDevice_));
  CHORUS_CHECK(deviceView(ring_, &ringDevice_));
  CHORUS_CHECK(proxyStreamFor(comm_->cudaDev, &stream_));
  CHORUS_CHECK(takeBarrier(comm_->cudaDev, stream_, &barrier_));
  mover_ = std::make_unique<CudaMover>(stream_);
  commands_ = std::make_unique<CommandMover>(ring_, kWorkerBlocks, &comm_->abortFlag,
                                             comm_->timeoutSeconds, comm_->rank);
  comm_->direct.mover = commands_.get();
  return initRingKernel();
}

ncclResult_t CudaDeviceQueue::initRingKernel() {
  const RingControlWords words{&control_[kRingStatusWord], &controlDevice_[kRingStatusWord],
                               &control_[kRingAbortWord], &controlDevice_[kRingAbortWord]};
  return RingLauncher::create(comm_, words, &ringLauncher_);
}

CudaDeviceQueue::~CudaDeviceQueue() {
  shutdown();
  // Worker blocks read the ring and counters until they exit; a stream that
  // never reaches its worker would keep one alive: then the memory is left
  // behind rather than reused.
  uint64_t workers = workersLaunched_ + retiredReplays_;
  for (const auto& ticket : persistent_) workers += ticket->handled - ticket->base;
  const uint32_t expected = static_cast<uint32_t>(workers * kWorkerBlocks);
  auto exited = [&] { return __atomic_load_n(&control_[1], __ATOMIC_ACQUIRE) >= expected; };
  Deadline deadline = Deadline::after(5);
  while (control_ != nullptr && !exited() && !deadline.expired())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // A ring kernel that never ran may still read the control words (and the
  // launcher leaves its FIFOs behind, saying so).
  const bool ringPending = ringLauncher_ != nullptr && !ringLauncher_->drained();
  if (!ringPending && (control_ == nullptr || exited())) {
    givePinned(kSlots, counters_);
    givePinned(kControlWords, control_);
    givePinned(1, ring_);
    giveBarrier(comm_->cudaDev, barrier_);
  } else if (!ringPending) {
    WARN("rank %d: worker kernels still pending at destroy; their memory is not reused",
         comm_->rank);
  }
  if (comm_->direct.mover == commands_.get()) comm_->direct.mover = &hostMover();
  ringLauncher_.reset();
}

ncclResult_t CudaDeviceQueue::takeSlot(bool persistent, uint32_t* slot) {
  std::unique_lock<std::mutex> lock(mutex_);
  Deadline deadline = Deadline::after(comm_->timeoutSeconds);
  for (;;) {
    for (uint32_t i = 0; i < kSlots; ++i) {
      const uint32_t candidate = (nextSlot_ + i) % kSlots;
      if (slotBusy_[candidate]) continue;
      slotBusy_[candidate] = 1;
      nextSlot_ = (candidate + 1) % kSlots;
      *slot = candidate;
      return ncclSuccess;
    }
    if (persistent)
      CHORUS_FAIL(ncclInvalidUsage, "rank %d: more than %u operations captured in CUDA graphs or "
                  "in flight on one communicator", comm_->rank, kSlots);
    // Every slot holds a ticket in flight: wait for the proxy to finish one.
    if (deadline.expired())
      CHORUS_FAIL(ncclSystemError, "rank %d: %u device operations in flight and none finished "
                  "within %.0f s", comm_->rank, kSlots, comm_->timeoutSeconds);
    changed_.wait_for(lock, std::chrono::milliseconds(10));
  }
}

// Other streams of the batch: the gate opens once they reach the batch.
ncclResult_t joinGroupStreams(const std::vector<cudaStream_t>& streams) {
  for (size_t i = 1; i < streams.size(); ++i) {
    cudaEvent_t joined;
    CHORUS_CHECK(cudaCheck(cudaEventCreateWithFlags(&joined, cudaEventDisableTiming),
                           "cudaEventCreateWithFlags"));
    cudaError_t err = cudaEventRecord(joined, streams[i]);
    if (err == cudaSuccess) err = cudaStreamWaitEvent(streams[0], joined, 0);
    cudaEventDestroy(joined);  // released once the wait no longer needs it
    CHORUS_CHECK(cudaCheck(err, "joining a group's streams"));
  }
  return ncclSuccess;
}

// ... and they go on once it is finished.
ncclResult_t releaseGroupStreams(const std::vector<cudaStream_t>& streams) {
  if (streams.size() < 2) return ncclSuccess;
  cudaEvent_t done;
  CHORUS_CHECK(cudaCheck(cudaEventCreateWithFlags(&done, cudaEventDisableTiming),
                         "cudaEventCreateWithFlags"));
  cudaError_t err = cudaEventRecord(done, streams[0]);
  for (size_t i = 1; i < streams.size() && err == cudaSuccess; ++i)
    err = cudaStreamWaitEvent(streams[i], done, 0);
  cudaEventDestroy(done);
  return cudaCheck(err, "releasing a group's streams");
}

// Called by CUDA when the graph holding a captured ticket is destroyed: the
// proxy may drop the ticket. Makes no CUDA call, touches only the link.
void CUDART_CB releaseGraphLink(void* heapLink) {
  auto* link = static_cast<std::shared_ptr<GraphLink>*>(heapLink);
  (*link)->released.store(true, std::memory_order_release);
  delete link;
}

// Ties a captured ticket's life to the graph being captured on `stream`.
ncclResult_t linkToGraph(cudaStream_t stream, const std::shared_ptr<GraphLink>& link) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  cudaGraph_t graph = nullptr;
  CHORUS_CHECK(cudaCheck(cudaStreamGetCaptureInfo(stream, &status, nullptr, &graph),
                         "cudaStreamGetCaptureInfo"));
  auto* heapLink = new std::shared_ptr<GraphLink>(link);
  cudaUserObject_t object;
  cudaError_t err = cudaUserObjectCreate(&object, heapLink, releaseGraphLink, 1,
                                         cudaUserObjectNoDestructorSync);
  if (err != cudaSuccess) {
    delete heapLink;
    return cudaCheck(err, "cudaUserObjectCreate");
  }
  // The graph takes our reference: the object dies with the graph.
  return cudaCheck(cudaGraphRetainUserObject(graph, object, 1, cudaGraphUserObjectMove),
                   "cudaGraphRetainUserObject");
}

ncclResult_t CudaDeviceQueue::open(const Op* ops, size_t n, std::shared_ptr<DeviceTicket>* out) {
  out->reset();
  auto ticket = std::make_shared<DeviceTicket>();
  for (size_t i = 0; i < n; ++i) {
    const Op& op = ops[i];
    if (op.count == 0) continue;  // moves nothing, waits for nobody
    ticket->ops.push_back(op);
    cudaStream_t stream = static_cast<cudaStream_t>(op.stream);
    bool known = false;
    for (cudaStream_t s : ticket->streams) known = known || s == stream;
    if (!known) ticket->streams.push_back(stream);
  }
  if (ticket->ops.empty()) return ncclSuccess;

  RelaxedCaptureMode relaxed;
  DeviceGuard onDevice(comm_->cudaDev);  // the kernels launch on the streams' device
  CHORUS_CHECK(onDevice.result());
  if (ringLauncher_ != nullptr && RingLauncher::takes(ticket->ops)) {
    CHORUS_CHECK(ringLauncher_->ready());  // before any stream waits for another
    ticket->ringKernel = true;
    CHORUS_CHECK(joinGroupStreams(ticket->streams));
    CHORUS_CHECK(ringLauncher_->launch(ticket->ops, ticket->streams[0]));
    *out = std::move(ticket);
    return ncclSuccess;
  }
  cudaStream_t first = ticket->streams[0];
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CHORUS_CHECK(cudaCheck(cudaStreamIsCapturing(first, &capture), "cudaStreamIsCapturing"));
  if (capture == cudaStreamCaptureStatusInvalidated)
    CHORUS_FAIL(ncclInvalidUsage, "rank %d: the stream's graph capture was invalidated",
                comm_->rank);
  if (capture == cudaStreamCaptureStatusActive) {
    ticket->graph = std::make_shared<GraphLink>();
    CHORUS_CHECK(linkToGraph(first, ticket->graph));
  }
  CHORUS_CHECK(takeSlot(ticket->persistent(), &ticket->slot));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    uint32_t& uses = slotUses_[ticket->slot];
    if (++uses == 0) ++uses;  // 0 means "count the replay" to the kernels
    ticket->target = uses;
  }
  if (ticket->persistent()) {
    // Replays count on from what the slot holds (the last gate value of a
    // free slot); the counters are never reset, so the first replay's worker
    // waits for a go value the slot has not had yet.
    ticket->base = __atomic_load_n(&counters_[ticket->slot].started, __ATOMIC_ACQUIRE);
    ticket->handled = ticket->base;
  }
  ncclResult_t result = joinGroupStreams(ticket->streams);
  if (result == ncclSuccess)
    result = launchGateOpen(&countersDevice_[ticket->slot], ticket->gateValue(), first);
  std::lock_guard<std::mutex> lock(mutex_);
  if (result != ncclSuccess) {
    // Whether a gate-open reached the stream is not known: the slot is not
    // reused, so a late one cannot disturb another ticket.
    return result;
  }
  if (ticket->persistent()) persistent_.push_back(ticket);
  else eager_.push_back(ticket);
  if (!proxy_.joinable()) proxy_ = std::thread([this] { proxyLoop(); });
  changed_.notify_all();
  *out = std::move(ticket);
  return ncclSuccess;
}

ncclResult_t CudaDeviceQueue::hold(const std::shared_ptr<DeviceTicket>& ticket) {
  if (ticket == nullptr) return ncclSuccess;  // nothing was opened
  RelaxedCaptureMode relaxed;
  DeviceGuard onDevice(comm_->cudaDev);
  CHORUS_CHECK(onDevice.result());
  if (ticket->ringKernel) {
    CHORUS_CHECK(ringLauncher_->join(ticket->streams[0]));
    return releaseGroupStreams(ticket->streams);
  }
  CHORUS_CHECK(launchWorker(ringDevice_, ticket->slot, ticket->gateValue(),
                            &countersDevice_[ticket->slot], &controlDevice_[0],
                            &controlDevice_[1], barrier_, ticket->streams[0]));
  if (!ticket->persistent()) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++workersLaunched_;
  }
  return releaseGroupStreams(ticket->streams);
}

bool CudaDeviceQueue::gateOpen(const DeviceTicket& ticket) const {
  const uint32_t started = __atomic_load_n(&counters_[ticket.slot].started, __ATOMIC_ACQUIRE);
  return ticket.persistent() ? started != ticket.handled : reached(started, ticket.target);
}

// One operation of a single-rank communicator: its output is its input
// (reduced with itself: avg and PreMulSum scale it).
ncclResult_t CudaDeviceQueue::runLocal(Op op, DataMover& mover) {
  const bool reduces = op.kind == OpKind::AllReduce || op.kind == OpKind::Reduce ||
                       op.kind == OpKind::ReduceScatter;
  if (!reduces) op.redop = RedOpArgs{RedOpKind::Sum, op.type, 0};
  CHORUS_CHECK(mover.reduceCopy(op.redop, nullptr, op.sendbuff, true, op.recvbuff, true, op.count));
  return mover.settle();
}

// Collectives in posted order, then the point-to-point operations together
// (as on host communicators). Collectives of ranks of one host take the
// direct algorithms on device memory; the rest goes through host memory.
ncclResult_t CudaDeviceQueue::runTicket(const DeviceTicket& ticket) {
  std::vector<Op> pointToPoint;
  for (Op op : ticket.ops) {
    if (isPointToPoint(op)) {
      pointToPoint.push_back(op);
      continue;
    }
    if (op.scalarSource != nullptr) {
      // The scalar's value when the operation runs, as NCCL reads it.
      // On the proxy's stream: a plain cudaMemcpy would wait for the legacy
      // stream, and through it for a caller's stream held by its gate.
      uint64_t bits = 0;
      CHORUS_CHECK(cudaCheck(cudaMemcpyAsync(&bits, op.scalarSource, elementSize(op.type),
                                             cudaMemcpyDefault, stream_),
                             "reading a PreMulSum scalar from device memory"));
      CHORUS_CHECK(cudaCheck(cudaStreamSynchronize(stream_), "reading a PreMulSum scalar"));
      op.redop = preMulSumOp(op.type, &bits);
    }
    if (comm_->nranks == 1) {
      CHORUS_CHECK(runLocal(op, *commands_));
    } else if (comm_->arena != nullptr) {
      CHORUS_CHECK(executeHostOps(comm_, &op, 1));
    } else {
      CHORUS_CHECK(runThroughHostMemory(comm_, &op, 1, *mover_, bounce_));
    }
  }
  if (pointToPoint.empty()) return ncclSuccess;
  return runThroughHostMemory(comm_, pointToPoint.data(), pointToPoint.size(), *mover_, bounce_);
}

void CudaDeviceQueue::finishTicket(const std::shared_ptr<DeviceTicket>& ticket) {
  std::lock_guard<std::mutex> lock(mutex_);
  GateCounters& counters = counters_[ticket->slot];
  if (ticket->persistent()) {
    ++ticket->handled;
    __atomic_store_n(&counters.finished, ticket->handled, __ATOMIC_RELEASE);
  } else {
    __atomic_store_n(&counters.finished, ticket->target, __ATOMIC_RELEASE);
    eager_.pop_front();
    slotBusy_[ticket->slot] = 0;
  }
  changed_.notify_all();
}

// Forgets the tickets of destroyed graphs (their replays are all run: CUDA
// releases a graph's objects after its launches end) and frees their slots.
void CudaDeviceQueue::dropReleasedGraphs() {
  for (size_t i = 0; i < persistent_.size();) {
    const DeviceTicket& ticket = *persistent_[i];
    if (!ticket.graph->released.load(std::memory_order_acquire) || gateOpen(ticket)) {
      ++i;
      continue;
    }
    retiredReplays_ += ticket.handled - ticket.base;
    slotBusy_[ticket.slot] = 0;
    persistent_.erase(persistent_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

// Lets every worker kernel go: unfinished operations are abandoned.
void CudaDeviceQueue::releaseHeldStreams() {
  __atomic_store_n(&control_[0], 1u, __ATOMIC_RELEASE);
}

void CudaDeviceQueue::proxyLoop() {
  setLogRank(comm_->rank);
  useDevice(comm_->cudaDev);
  RelaxedCaptureMode relaxed;
  int polls = 0;
  for (;;) {
    std::shared_ptr<DeviceTicket> next;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (abandoned_ || comm_->abortFlag.load(std::memory_order_relaxed)) break;
      if (stopping_ && eager_.empty()) break;
      dropReleasedGraphs();
      if (eager_.empty() && persistent_.empty()) {
        changed_.wait(lock);
        continue;
      }
      // Posted order first; a graph's ticket runs when its replay opens it.
      if (!eager_.empty() && gateOpen(*eager_.front())) next = eager_.front();
      for (size_t i = 0; next == nullptr && i < persistent_.size(); ++i)
        if (gateOpen(*persistent_[i])) next = persistent_[i];
    }
    if (next == nullptr) {
      if (++polls < kPollsBeforeSleep) sched_yield();
      else std::this_thread::sleep_for(kPollSleep);
      continue;
    }
    polls = 0;
    // The ticket's worker takes the commands posted from here; its Exit
    // lets the stream go. After a failure the communicator is broken
    // (reported through ncclCommGetAsyncError): later tickets release their
    // streams unrun.
    commands_->beginTicket(next->slot, next->persistent() ? next->handled + 1 : next->target);
    ncclResult_t result = ncclSuccess;
    if (comm_->asyncResult.load(std::memory_order_acquire) == ncclSuccess) result = runTicket(*next);
    // A worker that cannot be told to go (the wait for it failed) is let go
    // with every other one: the communicator is broken from here on anyway.
    const ncclResult_t ended = commands_->endTicket();
    if (ended != ncclSuccess) releaseHeldStreams();
    if (result == ncclSuccess) result = ended;
    recordCommFailure(comm_, result);
    finishTicket(next);
  }
  releaseHeldStreams();
}

ncclResult_t CudaDeviceQueue::shutdown() {
  std::unique_lock<std::mutex> lock(mutex_);
  stopping_ = true;
  changed_.notify_all();
  // The proxy finishes what the streams will still reach, within the timeout.
  Deadline deadline = Deadline::after(comm_->timeoutSeconds);
  while (!eager_.empty() && proxy_.joinable() && !deadline.expired() &&
         !comm_->abortFlag.load(std::memory_order_relaxed))
    changed_.wait_for(lock, std::chrono::milliseconds(10));
  const bool unfinished = !eager_.empty();
  if (unfinished) abandoned_ = true;
  lock.unlock();
  if (proxy_.joinable()) proxy_.join();
  const ncclResult_t ringResult = ringLauncher_ == nullptr ? ncclSuccess : ringLauncher_->drain();
  if (control_ != nullptr) releaseHeldStreams();
  if (ringResult != ncclSuccess) return ringResult;
  if (unfinished && !comm_->abortFlag.load())
    CHORUS_FAIL(ncclSystemError, "rank %d: device operations still unfinished after %.0f s at "
                "destroy (were their streams blocked?)", comm_->rank, comm_->timeoutSeconds);
  return ncclSuccess;
}

}  // namespace

ncclResult_t DeviceQueue::create(ncclComm* comm, std::unique_ptr<DeviceQueue>* out) {
  auto queue = std::make_unique<CudaDeviceQueue>(comm);
  CHORUS_CHECK(queue->init());
  *out = std::move(queue);
  return ncclSuccess;
}

}  // namespace chorus

#else  // !CHORUS_HAVE_CUDA

#include "common/result.h"

namespace chorus {

ncclResult_t DeviceQueue::create(ncclComm*, std::unique_ptr<DeviceQueue>*) {
  CHORUS_FAIL(ncclInvalidUsage, "device communicators need Chorus built with CUDA");
}

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
