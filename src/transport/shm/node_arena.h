// One shared-memory segment for all ranks of a communicator that live on one
// host: per rank a phase counter (the ranks' meeting point), a ring of
// operation lines with a data slot beside each (where small rounds of host
// data travel between processes), and two staging areas for data copied
// through the arena.
//
// An operation line is one cache line: the record of the round a rank runs
// (with the addresses of its buffers, for ranks of one process that read
// each other's buffers in place), up to kArenaInlineBytes of its data, and
// a sequence word stored last. A peer that waits on the sequence word finds
// the record and a small message in the same line, so a small operation
// costs one cache-line transfer per peer. Rounds take lines in turn, so a
// rank that only publishes may run up to kArenaLines - 1 rounds ahead of its
// readers (many: with more ranks than cores a Broadcast root then runs
// through its time slice instead of waiting for readers to be scheduled
// every few operations). Rounds that stage more than fits inline but at most
// kArenaSlotBytes (the direct primitives use less where every rank
// publishes) put it in the slot that goes with their line (one per line and
// rank), and may run as far ahead; larger rounds alternate between the two
// staging areas ("parity") and run at most one round ahead.
//
// A rank may also let peers in other processes read its buffers in place
// (registered device memory, registered host blocks): its slot holds a table of those buffers (an
// opaque handle a peer maps, e.g. a CUDA IPC handle) and the table's
// generation; each rank says, per peer, up to which generation it has
// mapped that peer's table (`synced`); and a round's line names an entry
// of the owner's table instead of a staged copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "nccl.h"
#include "transport/fifo_host.h"
#include "transport/shm/shm_segment.h"

namespace chorus {

class Bootstrap;

constexpr int kArenaParities = 2;
constexpr int kArenaLines = 256;
constexpr size_t kArenaInlineBytes = 32;
// A line's slot: what one-way rounds (one side publishes, the others read)
// may put there, and what rounds in which every rank publishes may.
constexpr size_t kArenaSlotBytes = 8192;
constexpr size_t kArenaMeetingSlotBytes = 1024;
constexpr int kArenaRegistrations = 32;
constexpr size_t kArenaHandleBytes = 64;

// Names part of a buffer its owner lets peers read in place: entry `entry`
// of the owner's registration table, valid while that entry's id is `id`
// (0: none, the data is staged), `offset` bytes into the registered memory.
// An entry's id is the table generation that added it.
struct ArenaBufferRef {
  uint32_t entry;
  uint32_t id;
  uint64_t offset;
};

// One entry of a rank's registration table: memory of `bytes` at `base` in
// the owner's address space, reached from other processes through `handle`.
// The owner writes the rest before it release-stores a new `id`, and clears
// the id before the entry changes again.
struct ArenaRegistration {
  uint32_t id;
  uint32_t pad;
  uint64_t base;
  uint64_t bytes;
  unsigned char handle[kArenaHandleBytes];
};

// What a rank publishes about the round it runs, and (Staged mode) up to
// kArenaInlineBytes of that round's data.
struct alignas(64) ArenaOpLine {
  uint32_t seq;  // release-stored last: the owner's phase once the round is published
  int8_t kind;
  int8_t type;
  int8_t redop;
  uint8_t sharing;  // Shared and CrossMemory modes: kLine* bits
  int32_t root;
  uint32_t pad2;
  uint64_t count;
  uint64_t scalar;  // PreMulSum: this rank's own scalar (each rank scales its own input)
  union {
    struct {  // Shared and CrossMemory modes: the owner's buffers (in its own address space)
      uint64_t input;
      uint64_t output;
    } buffers;
    char inlineData[kArenaInlineBytes];  // Staged mode, small rounds
    // Staged mode, other rounds: buffers peers read in place (id 0: staged);
    // CrossMemory mode with kLineLent: both buffers, which peers map.
    struct {
      ArenaBufferRef input;
      ArenaBufferRef output;
    } inPlace;
  };
};
// ArenaOpLine::sharing: the owner's input is its output; the line names its
// buffers as lent registrations (inPlace) instead of addresses (buffers).
constexpr uint8_t kLineInPlace = 1;
constexpr uint8_t kLineLent = 2;
static_assert(sizeof(ArenaOpLine) == 64, "an operation line is one cache line");

struct alignas(64) ArenaRankSlot {
  uint32_t phase;     // release-stored by the owner: barriers it has reached
  uint32_t sleepers;  // peers asleep on `phase`
  char pad0[56];
  ArenaOpLine lines[kArenaLines];
  ArenaRegistration registrations[kArenaRegistrations];  // written by the owner only
  // Release-stored by the owner after each change of its table.
  alignas(64) uint32_t registrationGeneration;
  // The pid of this rank's process while it has a thread that maps its
  // peers' tables; 0 before and after (lending needs every peer's; releasing
  // waits for none gone, whether its thread stopped or its process died).
  uint32_t registrationMapperPid;
  // Bit k set (by the owner, at teardown) once this rank no longer maps or
  // reads any peer's memory of kind k (runtime/allocation_release.h).
  uint32_t closedAllocations;
  // Published once the owner's communicator has failed or been aborted
  // (the owner then wakes the sleepers on `phase`).
  alignas(64) PeerFailure failure;
};

class NodeArena {
 public:
  // Collective over the communicator's bootstrap: rank 0 creates the segment
  // (with `stageBytes` of staging per rank and parity, and a slot of
  // `slotBytes` beside each line: 0 for none) and every rank maps it.
  static ncclResult_t open(Bootstrap& bootstrap, int rank, int nranks, size_t stageBytes,
                           size_t slotBytes, std::unique_ptr<NodeArena>* out);

  ArenaRankSlot& slot(int rank) const { return slots_[rank]; }
  char* staging(int rank, int parity) const {
    return staging_ + (static_cast<size_t>(rank) * kArenaParities + parity) * stageBytes_;
  }
  size_t stageBytes() const { return stageBytes_; }
  // Bytes of each line's slot (0: none).
  size_t roundSlotBytes() const { return slotBytes_; }
  // The data slot of `rank`'s operation line `line` (roundSlotBytes() > 0).
  char* roundSlot(int rank, int line) const {
    return roundSlots_ + (static_cast<size_t>(rank) * kArenaLines + line) * slotBytes_;
  }
  // synced(reader)[owner]: the generation of owner's registration table
  // that `reader` has mapped (written by `reader` only).
  uint32_t* synced(int reader) const { return synced_ + static_cast<size_t>(reader) * nranks_; }
  // refused(reader)[owner]: bit e set when `reader` could not map entry e
  // of owner's table as it is now (stored before the synced generation).
  uint32_t* refused(int reader) const {
    return synced_ + (static_cast<size_t>(nranks_) + reader) * nranks_;
  }
  // Bumped (and futex-woken) by any rank after it changes its table, so
  // that the others' mapping threads need not poll.
  uint32_t* registrationChanges() const { return synced_ + 2 * static_cast<size_t>(nranks_) * nranks_; }

 private:
  ShmMapping mapping_;
  ArenaRankSlot* slots_ = nullptr;
  char* staging_ = nullptr;
  char* roundSlots_ = nullptr;
  size_t stageBytes_ = 0;
  size_t slotBytes_ = 0;
  uint32_t* synced_ = nullptr;
  int nranks_ = 0;
};

}  // namespace chorus
