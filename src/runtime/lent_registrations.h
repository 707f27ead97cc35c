// Zero-copy for buffers registered with ncclCommRegister on device
// communicators whose ranks map each other's GPU memory, and on host
// communicators between processes (ncclMemAlloc blocks,
// runtime/host_blocks.h): the direct algorithms between processes, see
// collectives/direct_primitives.h.
//
// Registering a buffer writes an entry in this rank's table in the node
// arena: the base and size of the allocation that holds it and a handle
// other processes open (CUDA IPC), under a new generation of the table.
// Every rank has a mapping thread that wakes when any rank changes its
// table, maps new entries of its peers and closes cleared ones, then says
// up to which generation of each peer's table it has mapped (a thread of
// its own: the proxy must make no CUDA call that may wait for the device
// while a worker kernel waits for it, and the caller's thread may be
// blocked in one of those kernels' streams). An operation lends its input
// or output when it lies in a registered buffer that every peer has
// mapped: its line names the entry instead of staging a copy, and peers
// read it in place; an entry a peer cannot map is never lent. Deregistering
// clears the entry and waits (up to kReleaseSeconds) until every peer that
// maps registrations has closed it, so that the caller may free the memory
// (a peer whose process died is not waited for).
//
// NCCL_LOCAL_REGISTER=0 on any rank turns it off for all.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "collectives/direct_primitives.h"
#include "nccl.h"

struct ncclComm;

namespace chorus {

struct RegisteredBuffer;

// How registered memory is shown to other processes: CUDA IPC for device
// memory (cudaIpcMemory), shared memfd blocks for host memory
// (hostBlockMemory); tests also use stand-ins over host memory.
class ExportedMemory {
 public:
  virtual ~ExportedMemory() = default;
  // The allocation that holds `buffer` and a handle that other processes
  // open; false, with the reason in *why, when it cannot be exported.
  virtual bool exportAllocation(const void* buffer, uintptr_t* base, size_t* bytes,
                                unsigned char (&handle)[kArenaHandleBytes], const char** why) = 0;
  // Maps another process's allocation.
  virtual ncclResult_t open(const unsigned char (&handle)[kArenaHandleBytes], char** mapped) = 0;
  // Whether the allocation at `base` is still the one `handle` exported (a
  // block freed while registered and another allocated at its address is
  // not: lent, peers would reach the old one's memory).
  virtual bool stillExported(uintptr_t /*base*/,
                             const unsigned char (&/*handle*/)[kArenaHandleBytes]) {
    return true;
  }
  virtual void close(char* mapped) = 0;
};

// CUDA IPC on `device`; null in builds without CUDA.
std::unique_ptr<ExportedMemory> cudaIpcMemory(int device, int rank);

class LentRegistrations final : public RegisteredBuffers {
 public:
  LentRegistrations(ncclComm* comm, std::unique_ptr<ExportedMemory> memory);
  // Retires the entries of buffers still registered and waits until peers
  // have closed them (as ncclCommDeregister does), stops the mapping
  // thread, closes its mappings, then tells the owners that this rank maps
  // nothing any more.
  ~LentRegistrations() override;
  LentRegistrations(const LentRegistrations&) = delete;
  LentRegistrations& operator=(const LentRegistrations&) = delete;

  // What ncclCommRegister learns about a buffer before it takes the
  // registration lock (the CUDA calls happen here, not under the lock that
  // the proxy's find() takes).
  struct Export {
    bool ok = false;
    const char* why = nullptr;  // when not ok
    uintptr_t base = 0;
    size_t bytes = 0;
    unsigned char handle[kArenaHandleBytes] = {};
  };
  Export exportBuffer(const void* buffer);
  // ncclCommRegister, under comm->registrationMutex: gives `buffer` an entry
  // of this rank's table. A buffer that cannot be lent (a full table, memory
  // that cannot be exported, a range past its allocation) gets none and is
  // staged as before.
  void add(RegisteredBuffer* buffer, const Export& exported);
  // ncclCommDeregister, under comm->registrationMutex: clears its entry.
  // Returns the generation to pass to awaitRelease (0: nothing to wait for).
  uint32_t retire(RegisteredBuffer* buffer);
  // Without the mutex: waits up to kReleaseSeconds until every peer that
  // maps registrations has mapped `generation` of this rank's table (so
  // closed the retired entry); warns when one has not.
  void awaitRelease(uint32_t generation);

  ArenaBufferRef find(const void* buffer, size_t bytes) override;
  ncclResult_t resolve(int peer, const ArenaBufferRef& ref, const char** start) override;

  // Peers' lent buffers resolved so far (for tests and logs).
  uint64_t resolvedCount() const { return resolved_.load(std::memory_order_relaxed); }

  static constexpr double kReleaseSeconds = 2.0;

 private:
  // A peer's entry as this process reaches it.
  struct Mapping {
    uint32_t id = 0;  // the entry's id when mapped; 0: not mapped
    char* base = nullptr;
    uint64_t bytes = 0;
    bool opened = false;  // by ExportedMemory::open (closed when replaced)
  };
  // The mapping thread: syncPeers whenever a table changes.
  void mapLoop();
  // Maps entries peers added, closes those they cleared, and says so in
  // the arena, with the entries it could not map (mapping thread).
  void syncPeers();
  // Brings peer's entry `entry` up to date; false when it cannot be mapped
  // (mapping thread).
  bool syncEntry(int peer, int entry);
  // After a change of this rank's table: wakes the peers' mapping threads.
  void announceChange();
  // Whether every peer maps entry `entry` with id `id` of this rank's table.
  bool lendable(int entry, uint32_t id) const;
  // Whether every peer that maps registrations has mapped `generation`.
  bool released(uint32_t generation) const;

  ncclComm* comm_;
  std::unique_ptr<ExportedMemory> memory_;
  uint32_t generation_ = 0;          // of this rank's table (registrationMutex)
  // Mapping thread only: per peer, its generation mapped here; per peer
  // and entry, the id that could not be opened (not retried).
  std::vector<uint32_t> synced_;
  std::vector<uint32_t> failedIds_;
  std::mutex mappingsMutex_;         // mappings_: written by syncPeers, read by resolve
  std::vector<Mapping> mappings_;    // [peer * kArenaRegistrations + entry]
  std::atomic<uint64_t> resolved_{0};
  // Entries of this rank's table in use: find() takes no lock without any
  // (every operation of a host communicator between processes asks).
  std::atomic<int> entriesInUse_{0};
  std::atomic<bool> stop_{false};
  std::thread mapper_;
};

// Whether ncclCommRegister lends buffers to peers (NCCL_LOCAL_REGISTER).
bool localRegistrationEnabled();

}  // namespace chorus
