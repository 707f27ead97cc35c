// One shared-memory segment for all ranks of a communicator that live on one
// host: per rank a phase counter (the ranks' meeting point), a record of the
// operation it is running (with the addresses of its buffers, for ranks of
// one process that read each other's buffers in place), and two staging
// areas for data copied through the arena. Rounds of operations alternate
// between the two records and staging areas ("parity"), so a rank may start
// round k+1 while a slower peer still reads what it published for round k.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "nccl.h"
#include "transport/shm/shm_segment.h"

namespace chorus {

class Bootstrap;

constexpr int kArenaParities = 2;

// What a rank publishes about the operation it runs (addresses are in its
// own address space).
struct ArenaOpRecord {
  uint64_t input;
  uint64_t output;
  uint64_t count;
  int32_t kind;
  int32_t type;
  int32_t root;
  int32_t redop;
  uint64_t scalar;  // PreMulSum: this rank's own scalar (each rank scales its own input)
};

struct alignas(64) ArenaRankSlot {
  uint32_t phase;     // release-stored by the owner: barriers it has reached
  uint32_t sleepers;  // peers asleep on `phase`
  char pad0[56];
  ArenaOpRecord ops[kArenaParities];
};

class NodeArena {
 public:
  // Collective over the communicator's bootstrap: rank 0 creates the segment
  // (with `stageBytes` of staging per rank and parity) and every rank maps it.
  static ncclResult_t open(Bootstrap& bootstrap, int rank, int nranks, size_t stageBytes,
                           std::unique_ptr<NodeArena>* out);

  ArenaRankSlot& slot(int rank) const { return slots_[rank]; }
  char* staging(int rank, int parity) const {
    return staging_ + (static_cast<size_t>(rank) * kArenaParities + parity) * stageBytes_;
  }
  size_t stageBytes() const { return stageBytes_; }

 private:
  ShmMapping mapping_;
  ArenaRankSlot* slots_ = nullptr;
  char* staging_ = nullptr;
  size_t stageBytes_ = 0;
};

}  // namespace chorus
