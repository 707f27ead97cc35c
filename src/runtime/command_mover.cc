#include "runtime/command_mover.h"

#include <sched.h>

#include "collectives/datatypes.h"
#include "common/deadline.h"
#include "common/result.h"
#include "transport/fifo_host.h"

namespace chorus {
namespace {

// A worker answers within microseconds while it runs; poll, then yield.
constexpr int kSpins = 4096;

}  // namespace

CommandMover::CommandMover(RingState* ring, uint32_t blocks, const std::atomic<bool>* abort,
                           double timeoutSeconds, int rank)
    : ring_(ring), blocks_(blocks), abort_(abort), timeoutSeconds_(timeoutSeconds), rank_(rank) {}

ncclResult_t CommandMover::waitDone(uint64_t commands, const char* what) {
  const uint32_t target = static_cast<uint32_t>(commands);
  auto done = [&] {
    for (uint32_t b = 0; b < blocks_; ++b)
      if (!ringReached(__atomic_load_n(&ring_->finished[b], __ATOMIC_ACQUIRE), target)) return false;
    return true;
  };
  for (int i = 0; i < kSpins; ++i) {
    if (done()) return ncclSuccess;
    cpuRelax();
  }
  Deadline deadline = Deadline::after(timeoutSeconds_);
  while (!done()) {
    if (abort_ != nullptr && abort_->load(std::memory_order_relaxed))
      CHORUS_FAIL(ncclSystemError, "rank %d: aborted while %s", rank_, what);
    if (deadline.expired())
      CHORUS_FAIL(ncclSystemError, "rank %d: the worker kernel did not finish %s within %.0f s "
                  "(is the stream blocked, or the GPU busy with other work?)", rank_, what,
                  timeoutSeconds_);
    sched_yield();
  }
  return ncclSuccess;
}

ncclResult_t CommandMover::post(const RingCommand& command) {
  // The slot's previous command must be done by every block.
  if (posted_ >= kRingCommands) {
    const uint64_t free = posted_ - kRingCommands + 1;
    if (settled_ < free) {
      CHORUS_CHECK(waitDone(free, "a command (the ring is full)"));
      settled_ = free;
    }
  }
  ring_->commands[posted_ % kRingCommands] = command;
  ++posted_;
  // Pairs with the worker's acquire.
  __atomic_store_n(&ring_->posted, static_cast<uint32_t>(posted_), __ATOMIC_RELEASE);
  return ncclSuccess;
}

ncclResult_t CommandMover::copy(void* dst, const void* src, size_t bytes) {
  return reduceCopy(RedOpArgs{RedOpKind::Sum, ncclUint8, 0}, nullptr, src, false, dst, false,
                    bytes);
}

ncclResult_t CommandMover::reduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                                      bool applyPre, void* dst, bool applyPost, size_t count) {
  if (count == 0) return ncclSuccess;
  // Fold what needs no loop of its own, as the worker kernel expects (see
  // worker_kernel.cu): an operator without its step is a Sum, and a Sum
  // without a peer is a plain copy of bytes.
  RedOpArgs folded = op;
  if ((op.kind == RedOpKind::PreMulSum && !applyPre) ||
      (op.kind == RedOpKind::SumPostDiv && !applyPost))
    folded.kind = RedOpKind::Sum;
  if (folded.kind == RedOpKind::Sum && peer == nullptr) {
    if (dst == local) return ncclSuccess;
    const size_t bytes = count * elementSize(op.type);
    folded = RedOpArgs{RedOpKind::Sum, ncclUint8, 0};
    count = bytes;
  }
  RingCommand command{};
  command.kind = kRingReduceCopy;
  command.flags = (applyPre ? kRingApplyPre : 0u) | (applyPost ? kRingApplyPost : 0u);
  command.op = folded;
  command.peer = reinterpret_cast<uint64_t>(peer);
  command.local = reinterpret_cast<uint64_t>(local);
  command.dst = reinterpret_cast<uint64_t>(dst);
  command.count = count;
  return post(command);
}

ncclResult_t CommandMover::settle() {
  if (settled_ == posted_) return ncclSuccess;
  CHORUS_CHECK(waitDone(posted_, "the copies and reductions of a round"));
  settled_ = posted_;
  return ncclSuccess;
}

void CommandMover::beginTicket(uint32_t slot, uint32_t target) {
  __atomic_store_n(&ring_->start[slot], static_cast<uint32_t>(posted_), __ATOMIC_RELAXED);
  __atomic_store_n(&ring_->go[slot], target, __ATOMIC_RELEASE);  // after start
}

ncclResult_t CommandMover::endTicket() {
  RingCommand exit{};
  exit.kind = kRingExit;
  CHORUS_CHECK(post(exit));
  return settle();
}

}  // namespace chorus
