// The shape of every connection: a FIFO of kSteps slots of slotSize bytes
// between one sender and one receiver, in memory both can see.
//
//   tail  written by the sender: slots published so far
//   head  written by the receiver: slots consumed so far
//   sizes[s % kSteps]  bytes held by slot s (written before tail)
//
// The sender may fill slot s when s - head < kSteps; the receiver may read
// it when s < tail. Counters are 32-bit and compared with wrap-around, so a
// futex can sleep on them directly. This header is plain data: host code
// reaches it through fifo_host.h; device code will use its own accessors.
#pragma once

#include <cstddef>
#include <cstdint>

namespace chorus {

constexpr int kSteps = 8;  // NCCL_STEPS

// Published by a rank whose communicator has failed or been aborted, in
// memory its peers on this host map: its arena slot
// (transport/shm/node_arena.h) and its end of each shared-memory FIFO
// (below). It will not take part in anything again, so a peer waiting for
// it ends at once with the reason instead of at the deadline. Plain words,
// for memory shared between processes.
struct PeerFailure {
  uint32_t claimed;  // 0 -> 1 by the one writer (compare-and-swap)
  uint32_t result;   // the failure's ncclResult_t, release-stored after `reason`; 0: none
  // What a peer's error says after the rank ("its communicator ..."); read
  // only after a non-zero `result` is seen (acquire).
  char reason[248];
};

struct alignas(64) FifoControl {
  uint32_t tail;       // release-stored by the sender, acquire-loaded by the receiver
  uint32_t tailSleepers;  // receivers asleep on tail
  char pad0[56];
  uint32_t head;       // release-stored by the receiver, acquire-loaded by the sender
  uint32_t headSleepers;  // senders asleep on head
  char pad1[56];
  uint32_t sizes[kSteps];  // bytes in each slot; published by the tail store
  char pad2[64 - (kSteps * 4) % 64];
  // Each end's failure, published when its communicator fails (shutDown),
  // so that the other end's waits end without an arena: ring links between
  // ranks of one host in a communicator that spans hosts, and
  // CHORUS_HOST_ALGO=ring.
  PeerFailure senderFailure;
  PeerFailure receiverFailure;
};

// Where a FIFO lives: its control block and kSteps slots of slotSize bytes.
struct FifoView {
  FifoControl* control = nullptr;
  char* slots = nullptr;
  size_t slotSize = 0;

  char* slot(uint32_t step) const { return slots + (step % kSteps) * slotSize; }
};

// Bytes of shared memory a FIFO with this slot size needs.
inline size_t fifoBytes(size_t slotSize) { return sizeof(FifoControl) + kSteps * slotSize; }

// Lays a FIFO over `memory` (at least fifoBytes(slotSize), 64-byte aligned).
inline FifoView fifoAt(void* memory, size_t slotSize) {
  FifoView v;
  v.control = static_cast<FifoControl*>(memory);
  v.slots = static_cast<char*>(memory) + sizeof(FifoControl);
  v.slotSize = slotSize;
  return v;
}

}  // namespace chorus
