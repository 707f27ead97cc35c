// The work a device communicator's proxy hands to the worker kernel that
// holds the caller's stream during an operation (runtime/device_queue.h).
//
// The proxy runs the algorithm (meetings, rounds) on the host; every copy
// and reduction it needs becomes a command in this ring, which lives in
// mapped pinned memory. The worker kernel, launched on the caller's stream
// right after the operation's gate-open, waits for its ticket's turn, runs
// the commands with all its blocks (one grid-wide reduce-copy each), counts
// each finished (command, block) pair, and exits at the ticket's Exit
// command. So all of an operation's GPU work runs on the caller's stream,
// inside one kernel: nothing the proxy needs can queue behind a held stream.
//
// Written once for both sides of the protocol: runWorker is the kernel's
// loop on the GPU and, with host threads as blocks, the emulation that tests
// the protocol on the CPU (tests/multirank/command_ring_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "collectives/host_device.h"
#include "collectives/reduce_ops.h"

namespace chorus {

constexpr uint32_t kRingCommands = 256;
// The most blocks a worker may have.
constexpr uint32_t kRingMaxBlocks = 64;
// Tickets a ring tells apart (the gate slots of runtime/device_queue.cc).
constexpr uint32_t kRingTickets = 1024;

enum RingCommandKind : uint32_t { kRingReduceCopy = 1, kRingExit = 2 };
enum RingCommandFlags : uint32_t { kRingApplyPre = 1, kRingApplyPost = 2 };

// reduceCopy(op, peer, local, applyPre, dst, applyPost, count), or Exit.
struct alignas(64) RingCommand {
  uint32_t kind;
  uint32_t flags;
  RedOpArgs op;
  uint64_t peer;  // 0: none
  uint64_t local;
  uint64_t dst;
  uint64_t count;
};

struct alignas(64) RingState {
  uint32_t posted;  // written by the proxy: commands posted so far (stored after each command)
  uint32_t pad0[15];
  // Written by worker block b: the commands it has finished (an absolute
  // count, like `posted`). A ring slot is free again, and a round settled,
  // only when every block is past it: blocks run at their own pace.
  uint32_t finished[kRingMaxBlocks];
  // Per ticket slot, written by the proxy when the ticket's turn comes:
  // where its commands start, then (stored last) the gate value they are for.
  uint32_t start[kRingTickets];
  uint32_t go[kRingTickets];
  RingCommand commands[kRingCommands];
};

// Wrap-around comparison of 32-bit counters.
CHORUS_HOST_DEVICE CHORUS_INLINE bool ringReached(uint32_t value, uint32_t target) {
  return static_cast<int32_t>(value - target) >= 0;
}

// The loop of one worker block. `Block` supplies what differs between the
// GPU and the CPU emulation:
//   bool leader()                       the thread that waits and signals
//   uint32_t load(const uint32_t*)      a load that sees other agents' stores
//   void acquire() / release()          system-scope fences
//   void sync()                         block barrier
//   void share(T* value)                leader's *value to every thread (ends in sync)
//   bool aborted()                      the communicator's abort word is set
//   void pause()                        a short back-off between polls
//   void run(const RingCommand&)        this block's part of a reduce-copy
//   uint32_t index(), count()           this block's index, the worker's blocks
//   void store(uint32_t*, uint32_t)     a store other agents see (leader only)
//   void gridArrive()                   +1 on the worker's barrier counter (leader only)
//   void gridWait(uint32_t target)      until the counter reaches target (leader only)
// `target` is the ticket's gate value (what go[slot] must equal).
CHORUS_HD_TEMPLATE
template <typename Block>
CHORUS_HOST_DEVICE void runWorker(Block& block, RingState* ring, uint32_t slot, uint32_t target) {
  uint32_t next = 0;
  bool stop = false;
  if (block.leader()) {
    while (block.load(&ring->go[slot]) != target && !block.aborted()) block.pause();
    block.acquire();  // start[slot] was stored before go[slot]
    next = block.load(&ring->start[slot]);
    stop = block.aborted();
  }
  block.share(&next);
  block.share(&stop);
  while (!stop) {
    RingCommand command{};
    if (block.leader()) {
      while (!ringReached(block.load(&ring->posted), next + 1) && !block.aborted()) block.pause();
      block.acquire();  // the command was stored before `posted`
      command = ring->commands[next % kRingCommands];
      if (block.aborted()) command.kind = kRingExit;
    }
    block.share(&command);
    if (command.kind == kRingReduceCopy) block.run(command);
    stop = command.kind != kRingReduceCopy;
    // Every thread's writes are out before the leader reports the block done.
    block.release();
    block.sync();
    ++next;
    // A barrier of all blocks after every command: the next one may read
    // what another block wrote (commands split their elements differently:
    // a byte copy, then a reduction of floats over the same memory). The
    // counter counts (command, block) pairs since the worker's memory was
    // made, so every worker's commands give the same targets.
    if (block.leader()) {
      block.gridArrive();
      block.gridWait(next * block.count());
      block.store(&ring->finished[block.index()], next);
    }
    block.sync();
  }
}

}  // namespace chorus
