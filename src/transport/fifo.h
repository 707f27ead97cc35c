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

struct alignas(64) FifoControl {
  uint32_t tail;       // release-stored by the sender, acquire-loaded by the receiver
  uint32_t tailSleepers;  // receivers asleep on tail
  char pad0[56];
  uint32_t head;       // release-stored by the receiver, acquire-loaded by the sender
  uint32_t headSleepers;  // senders asleep on head
  char pad1[56];
  uint32_t sizes[kSteps];  // bytes in each slot; published by the tail store
  char pad2[64 - (kSteps * 4) % 64];
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
