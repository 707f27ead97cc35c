#include "runtime/device_queue.h"

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime.h>
#include <sched.h>

#include <chrono>
#include <cstring>
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
#include "runtime/comm.h"
#include "runtime/device.h"
#include "runtime/device_host_staging.h"
#include "runtime/device_mover.h"
#include "runtime/host_executor.h"

namespace chorus {
namespace {

// Gate counters per communicator: tickets in flight at once, plus graphs'.
constexpr uint32_t kSlots = 1024;
// The proxy polls open gates this many times (yielding the core) before it
// sleeps between polls.
constexpr int kPollsBeforeSleep = 4096;
constexpr auto kPollSleep = std::chrono::microseconds(20);

ncclResult_t cudaCheck(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return ncclSuccess;
  CHORUS_FAIL(ncclUnhandledCudaError, "%s failed: %s", what, cudaGetErrorString(err));
}

// The calling thread may call CUDA while another thread captures a graph in
// cudaStreamCaptureModeGlobal (which forbids "unsafe" calls process-wide).
class RelaxedCaptureMode {
 public:
  RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  ~RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&mode_); }

 private:
  cudaStreamCaptureMode mode_ = cudaStreamCaptureModeRelaxed;
};

bool reached(uint32_t value, uint32_t target) { return static_cast<int32_t>(value - target) >= 0; }

struct Ticket {
  std::vector<Op> ops;
  uint32_t slot = 0;
  uint32_t target = 0;     // outside capture: the value its gate opens with
  bool persistent = false; // captured in a graph: runs once per replay
  uint32_t base = 0;       // persistent: the slot's count when it was captured
  uint32_t handled = 0;    // persistent: base + replays run so far
};

class CudaDeviceQueue final : public DeviceQueue {
 public:
  explicit CudaDeviceQueue(ncclComm* comm) : comm_(comm), slotUses_(kSlots, 0), slotBusy_(kSlots, 0) {}
  ~CudaDeviceQueue() override;
  ncclResult_t init();
  ncclResult_t post(const Op* ops, size_t n) override;
  ncclResult_t shutdown() override;

 private:
  ncclResult_t enqueueGate(const Ticket& ticket, const std::vector<cudaStream_t>& streams);
  ncclResult_t takeSlot(bool persistent, uint32_t* slot);
  ncclResult_t runTicket(const Ticket& ticket);
  ncclResult_t runLocal(Op op, DataMover& mover);
  void proxyLoop();
  void finishTicket(const std::shared_ptr<Ticket>& ticket);
  bool gateOpen(const Ticket& ticket) const;
  void releaseStreams();

  ncclComm* comm_;
  GateCounters* counters_ = nullptr;        // pinned and mapped: the host's view
  GateCounters* countersDevice_ = nullptr;  // the device's view
  uint32_t* control_ = nullptr;             // [0] abort word, [1] gate-wait exits
  uint32_t* controlDevice_ = nullptr;
  cudaStream_t stream_ = nullptr;           // the proxy's copies and reductions
  std::unique_ptr<CudaMover> mover_;
  HostBounceBuffer bounce_;  // host copies of buffers the direct path does not take

  std::mutex mutex_;
  std::condition_variable changed_;  // a ticket was posted or finished, or stop
  std::deque<std::shared_ptr<Ticket>> eager_;
  std::vector<std::shared_ptr<Ticket>> persistent_;
  std::vector<uint32_t> slotUses_;  // gates opened per slot outside capture
  std::vector<char> slotBusy_;
  uint32_t nextSlot_ = 0;
  uint64_t waitsLaunched_ = 0;  // gate-wait kernels enqueued outside capture
  bool stopping_ = false;
  bool abandoned_ = false;      // shutdown gave up on unfinished tickets
  std::thread proxy_;
};

ncclResult_t CudaDeviceQueue::init() {
  RelaxedCaptureMode relaxed;
  const unsigned flags = cudaHostAllocMapped | cudaHostAllocPortable;
  CHORUS_CHECK(cudaCheck(cudaHostAlloc(reinterpret_cast<void**>(&counters_),
                                       sizeof(GateCounters) * kSlots, flags),
                         "cudaHostAlloc of the gate counters"));
  memset(counters_, 0, sizeof(GateCounters) * kSlots);
  CHORUS_CHECK(cudaCheck(cudaHostAlloc(reinterpret_cast<void**>(&control_), 64, flags),
                         "cudaHostAlloc of the gate control words"));
  memset(control_, 0, 64);
  CHORUS_CHECK(cudaCheck(cudaHostGetDevicePointer(reinterpret_cast<void**>(&countersDevice_),
                                                  counters_, 0),
                         "cudaHostGetDevicePointer"));
  CHORUS_CHECK(cudaCheck(cudaHostGetDevicePointer(reinterpret_cast<void**>(&controlDevice_),
                                                  control_, 0),
                         "cudaHostGetDevicePointer"));
  // Non-blocking: the proxy's work never waits for the legacy default stream,
  // on which a caller's gate may be holding.
  CHORUS_CHECK(cudaCheck(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                         "cudaStreamCreateWithFlags"));
  mover_ = std::make_unique<CudaMover>(stream_);
  comm_->direct.mover = mover_.get();
  return ncclSuccess;
}

CudaDeviceQueue::~CudaDeviceQueue() {
  shutdown();
  DeviceGuard onDevice(comm_->cudaDev);
  // Gate-wait kernels read the counters until they exit; a stream that never
  // reaches its gate would keep them alive: then the memory is left behind.
  uint64_t expected = waitsLaunched_;
  for (const auto& ticket : persistent_) expected += ticket->handled - ticket->base;
  Deadline deadline = Deadline::after(5);
  while (control_ != nullptr && __atomic_load_n(&control_[1], __ATOMIC_ACQUIRE) <
                                    static_cast<uint32_t>(expected) &&
         !deadline.expired())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const bool quiet = control_ == nullptr ||
                     __atomic_load_n(&control_[1], __ATOMIC_ACQUIRE) >= static_cast<uint32_t>(expected);
  if (quiet) {
    if (counters_ != nullptr) cudaFreeHost(counters_);
    if (control_ != nullptr) cudaFreeHost(control_);
  } else {
    WARN("rank %d: gate kernels still pending at destroy; their counters are not freed",
         comm_->rank);
  }
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
  cudaGetLastError();
  if (comm_->direct.mover == mover_.get()) comm_->direct.mover = &hostMover();
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

ncclResult_t CudaDeviceQueue::enqueueGate(const Ticket& ticket,
                                          const std::vector<cudaStream_t>& streams) {
  cudaStream_t first = streams[0];
  // Other streams of the batch: the gate opens once they reach the batch,
  // and they go on once it is finished.
  for (size_t i = 1; i < streams.size(); ++i) {
    cudaEvent_t joined;
    CHORUS_CHECK(cudaCheck(cudaEventCreateWithFlags(&joined, cudaEventDisableTiming),
                           "cudaEventCreateWithFlags"));
    cudaError_t err = cudaEventRecord(joined, streams[i]);
    if (err == cudaSuccess) err = cudaStreamWaitEvent(first, joined, 0);
    cudaEventDestroy(joined);  // released once the wait no longer needs it
    CHORUS_CHECK(cudaCheck(err, "joining a group's streams"));
  }
  const uint32_t value = ticket.persistent ? 0 : ticket.target;
  CHORUS_CHECK(launchGateOpen(&countersDevice_[ticket.slot], value, first));
  CHORUS_CHECK(launchGateWait(&countersDevice_[ticket.slot], value, &controlDevice_[0],
                              &controlDevice_[1], first));
  if (streams.size() > 1) {
    cudaEvent_t done;
    CHORUS_CHECK(cudaCheck(cudaEventCreateWithFlags(&done, cudaEventDisableTiming),
                           "cudaEventCreateWithFlags"));
    cudaError_t err = cudaEventRecord(done, first);
    for (size_t i = 1; i < streams.size() && err == cudaSuccess; ++i)
      err = cudaStreamWaitEvent(streams[i], done, 0);
    cudaEventDestroy(done);
    CHORUS_CHECK(cudaCheck(err, "releasing a group's streams"));
  }
  return ncclSuccess;
}

ncclResult_t CudaDeviceQueue::post(const Op* ops, size_t n) {
  auto ticket = std::make_shared<Ticket>();
  std::vector<cudaStream_t> streams;
  for (size_t i = 0; i < n; ++i) {
    const Op& op = ops[i];
    if (op.count == 0) continue;  // moves nothing, waits for nobody
    ticket->ops.push_back(op);
    cudaStream_t stream = static_cast<cudaStream_t>(op.stream);
    bool known = false;
    for (cudaStream_t s : streams) known = known || s == stream;
    if (!known) streams.push_back(stream);
  }
  if (ticket->ops.empty()) return ncclSuccess;

  RelaxedCaptureMode relaxed;
  DeviceGuard onDevice(comm_->cudaDev);  // the gate kernels launch on the streams' device
  CHORUS_CHECK(onDevice.result());
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CHORUS_CHECK(cudaCheck(cudaStreamIsCapturing(streams[0], &capture), "cudaStreamIsCapturing"));
  if (capture == cudaStreamCaptureStatusInvalidated)
    CHORUS_FAIL(ncclInvalidUsage, "rank %d: the stream's graph capture was invalidated",
                comm_->rank);
  ticket->persistent = capture == cudaStreamCaptureStatusActive;
  CHORUS_CHECK(takeSlot(ticket->persistent, &ticket->slot));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    uint32_t& uses = slotUses_[ticket->slot];
    if (++uses == 0) ++uses;  // 0 means "count the replay" to the gate kernels
    ticket->target = uses;
  }
  if (ticket->persistent) {
    // Replays count on from what the slot holds (started == finished for a
    // free slot); the counters are never reset, so a gate-wait kernel of the
    // slot's last ticket that has not run yet still finds its target reached.
    ticket->base = __atomic_load_n(&counters_[ticket->slot].started, __ATOMIC_ACQUIRE);
    ticket->handled = ticket->base;
  }
  ncclResult_t result = enqueueGate(*ticket, streams);
  std::lock_guard<std::mutex> lock(mutex_);
  if (result != ncclSuccess) {
    slotBusy_[ticket->slot] = 0;
    return result;
  }
  if (ticket->persistent) {
    persistent_.push_back(ticket);
  } else {
    eager_.push_back(ticket);
    ++waitsLaunched_;
  }
  if (!proxy_.joinable()) proxy_ = std::thread([this] { proxyLoop(); });
  changed_.notify_all();
  return ncclSuccess;
}

bool CudaDeviceQueue::gateOpen(const Ticket& ticket) const {
  const uint32_t started = __atomic_load_n(&counters_[ticket.slot].started, __ATOMIC_ACQUIRE);
  return ticket.persistent ? started != ticket.handled : reached(started, ticket.target);
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
ncclResult_t CudaDeviceQueue::runTicket(const Ticket& ticket) {
  std::vector<Op> pointToPoint;
  for (Op op : ticket.ops) {
    if (isPointToPoint(op)) {
      pointToPoint.push_back(op);
      continue;
    }
    if (op.scalarSource != nullptr) {
      // The scalar's value when the operation runs, as NCCL reads it.
      uint64_t bits = 0;
      CHORUS_CHECK(cudaCheck(cudaMemcpy(&bits, op.scalarSource, elementSize(op.type),
                                        cudaMemcpyDefault),
                             "reading a PreMulSum scalar from device memory"));
      op.redop = preMulSumOp(op.type, &bits);
    }
    if (comm_->nranks == 1) {
      CHORUS_CHECK(runLocal(op, *mover_));
    } else if (comm_->arena != nullptr) {
      CHORUS_CHECK(executeHostOps(comm_, &op, 1));
    } else {
      CHORUS_CHECK(runThroughHostMemory(comm_, &op, 1, *mover_, bounce_));
    }
  }
  if (pointToPoint.empty()) return ncclSuccess;
  return runThroughHostMemory(comm_, pointToPoint.data(), pointToPoint.size(), *mover_, bounce_);
}

void CudaDeviceQueue::finishTicket(const std::shared_ptr<Ticket>& ticket) {
  std::lock_guard<std::mutex> lock(mutex_);
  GateCounters& counters = counters_[ticket->slot];
  if (ticket->persistent) {
    ++ticket->handled;
    __atomic_store_n(&counters.finished, ticket->handled, __ATOMIC_RELEASE);
  } else {
    __atomic_store_n(&counters.finished, ticket->target, __ATOMIC_RELEASE);
    eager_.pop_front();
    slotBusy_[ticket->slot] = 0;
  }
  changed_.notify_all();
}

// Lets every gate-wait kernel go: unfinished operations are abandoned.
void CudaDeviceQueue::releaseStreams() {
  __atomic_store_n(&control_[0], 1u, __ATOMIC_RELEASE);
}

void CudaDeviceQueue::proxyLoop() {
  setLogRank(comm_->rank);
  useDevice(comm_->cudaDev);
  RelaxedCaptureMode relaxed;
  int polls = 0;
  for (;;) {
    std::shared_ptr<Ticket> next;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (abandoned_ || comm_->abortFlag.load(std::memory_order_relaxed)) break;
      if (stopping_ && eager_.empty()) break;
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
    // After a failure the communicator is broken (reported through
    // ncclCommGetAsyncError); later tickets release their streams unrun.
    if (comm_->asyncResult.load(std::memory_order_acquire) == ncclSuccess) {
      const ncclResult_t result = runTicket(*next);
      if (result != ncclSuccess) {
        comm_->asyncErrorText = lastError();
        ncclResult_t none = ncclSuccess;
        comm_->asyncResult.compare_exchange_strong(none, result);
      }
    }
    finishTicket(next);
  }
  releaseStreams();
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
  if (control_ != nullptr) releaseStreams();
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
