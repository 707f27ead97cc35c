// When a rank may free memory its peers reach directly: its device staging
// areas and ring FIFOs, which peers in other processes map through CUDA IPC.
// CUDA leaves freeing exported memory before every importer has closed it
// undefined. So at teardown each rank first closes its mappings of its
// peers' memory of a kind and says so in the node arena; an owner frees its
// own only once every peer in another process has said so (or its process
// is gone), and keeps it otherwise. Ranks of the owner's process opened no
// handle (they use the pointer) and are not waited for: one thread that
// destroys its communicators one by one would otherwise wait for each.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

struct ncclComm;

namespace chorus {

class NodeArena;

// The kinds of memory peers reach directly: one bit each in the arena.
enum class SharedAllocation : uint32_t { DirectStaging = 0, RingFifos = 1 };

class AllocationRelease {
 public:
  AllocationRelease() = default;  // no arena: nothing to say or wait for
  // `peerPids[r]`: rank r's process, 0 for ranks of this process (not
  // waited for), kUnprobeablePid for one in another pid namespace (waited
  // for, never taken as gone).
  AllocationRelease(NodeArena* arena, int rank, std::vector<pid_t> peerPids,
                    SharedAllocation kind);
  static AllocationRelease of(ncclComm* comm, SharedAllocation kind);

  // This rank maps or reads none of its peers' memory of this kind any more.
  void closedPeers() const;
  // Waits until every peer in another process has said closedPeers() or
  // is gone;
  // false if one has not within `seconds` (also on abort: peers that abort
  // close theirs too): the memory must then be kept, not freed.
  bool peersClosed(double seconds) const;

  int rank() const { return rank_; }

  static constexpr double kWaitSeconds = 2.0;
  static constexpr pid_t kUnprobeablePid = -1;

 private:
  NodeArena* arena_ = nullptr;
  int rank_ = 0;
  std::vector<pid_t> peerPids_;
  uint32_t bit_ = 0;
};

}  // namespace chorus
