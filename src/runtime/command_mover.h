// The DataMover of device communicators' direct path: every copy and
// reduction becomes a command in a RingState (device/command_ring.h) that
// the worker kernel holding the caller's stream runs; settle() waits until
// every worker block has finished every command posted. The mover itself makes
// no CUDA call (the ring is mapped pinned memory, or host memory in the CPU
// emulation of the tests), so it builds and is tested without CUDA.
#pragma once

#include <atomic>
#include <cstdint>

#include "collectives/data_mover.h"
#include "device/command_ring.h"

namespace chorus {

class CommandMover final : public DataMover {
 public:
  // `ring` starts zeroed; `blocks`: how many blocks every worker runs.
  // Waits give up with an error on `abort` or after `timeoutSeconds`.
  CommandMover(RingState* ring, uint32_t blocks, const std::atomic<bool>* abort,
               double timeoutSeconds, int rank);
  ncclResult_t copy(void* dst, const void* src, size_t bytes) override;
  ncclResult_t reduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                          bool applyPre, void* dst, bool applyPost, size_t count) override;
  ncclResult_t settle() override;
  bool synchronous() const override { return false; }

  // The worker of the ticket in `slot` with gate value `target` takes the
  // commands posted from now on.
  void beginTicket(uint32_t slot, uint32_t target);
  // Posts the ticket's Exit and waits until every block has run it: the
  // worker then leaves the caller's stream.
  ncclResult_t endTicket();

 private:
  ncclResult_t post(const RingCommand& command);
  // Waits until every block has finished the first `commands` commands.
  ncclResult_t waitDone(uint64_t commands, const char* what);

  RingState* ring_;
  uint32_t blocks_;
  const std::atomic<bool>* abort_;
  double timeoutSeconds_;
  int rank_;
  uint64_t posted_ = 0;   // commands posted so far (ring_->posted holds the low 32 bits)
  uint64_t settled_ = 0;  // commands known to be done by every block
};

}  // namespace chorus
