// The communicator object behind ncclComm_t.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "collectives/direct_primitives.h"
#include "nccl.h"
#include "runtime/background_queue.h"
#include "runtime/config.h"
#include "runtime/device_direct.h"
#include "runtime/device_queue.h"
#include "runtime/lent_registrations.h"
#include "runtime/op.h"
#include "transport/shm/node_arena.h"
#include "transport/transport.h"

namespace chorus {

// What every rank learns about every other rank at init.
struct PeerInfo {
  int32_t rank;
  int32_t cudaDev;  // -1 for a host communicator
  uint64_t hostHash;      // ranks that can share memory (topology/host_identity.h)
  int64_t pid;
  uint64_t pidNamespace;  // where `pid` means this process
  uint64_t processToken;  // tells processes apart (pids may repeat across namespaces)
  uint64_t crossMemoryProbe;  // where peers read to learn whether they can read this process
                              // (transport/shm/cross_memory.h)
};

inline bool sameProcess(const PeerInfo& a, const PeerInfo& b) {
  return a.hostHash == b.hostHash && a.processToken == b.processToken;
}

// `peer`'s pid as `self` may probe it (is its process gone?); 0 where it
// cannot or need not: the same process, another host, or another pid
// namespace, where the number names some other process or none.
inline pid_t probeablePid(const PeerInfo& peer, const PeerInfo& self) {
  if (sameProcess(peer, self) || peer.hostHash != self.hostHash ||
      peer.pidNamespace != self.pidNamespace || self.pidNamespace == 0)
    return 0;
  return static_cast<pid_t>(peer.pid);
}

// How a communicator is brought up; kept so that deferred (group) and
// background (non-blocking) inits run the same code.
struct InitRequest {
  std::vector<BootstrapId> roots;
  bool startRootFromEnv = false;  // NCCL_COMM_ID: rank 0 runs the root
};

// One ring: this rank's send end to the next rank and receive end from the
// previous one.
struct Channel {
  std::unique_ptr<SendConnection> toNext;
  std::unique_ptr<RecvConnection> fromPrev;
};

// Point-to-point connections with one peer, opened on first use.
struct PeerConnections {
  std::unique_ptr<SendConnection> send;
  std::unique_ptr<RecvConnection> recv;
};

// A buffer registered with ncclCommRegister; the handle is its address.
struct RegisteredBuffer {
  void* buffer;
  size_t bytes;
  // Lent to peers (runtime/lent_registrations.h): its entry in this rank's
  // table in the node arena (-1: not lent), that entry's id, and the start
  // of the allocation that holds it.
  int entry = -1;
  uint32_t id = 0;
  uintptr_t allocationBase = 0;
};

// An operator made by ncclRedOpCreatePreMulSum; its handle is
// ncclNumOps + its index in ncclComm::userOps.
struct UserRedOp {
  bool live = false;
  ncclDataType_t type = ncclFloat32;
  ncclScalarResidence_t residence = ncclScalarHostImmediate;
  RedOpArgs args;                  // host-immediate: the scalar read at creation
  const void* scalar = nullptr;    // device residence: read when an operation is posted
};

}  // namespace chorus

struct ncclComm {
  static constexpr uint64_t kAlive = 0x63686f7275732121ull;  // "chorus!!"
  uint64_t alive = kAlive;  // cleared on destroy, to catch stale handles

  int rank = 0;
  int nranks = 0;
  int cudaDev = -1;  // -1: bound to the host
  chorus::CommConfig config;
  uint64_t commHash = 0;  // same on every rank of this communicator

  std::unique_ptr<chorus::Bootstrap> bootstrap;
  std::vector<chorus::PeerInfo> peers;

  // Data path (host communicators): transports, rings, point-to-point.
  std::unique_ptr<chorus::Transport> shmTransport;
  std::unique_ptr<chorus::Transport> netTransport;
  size_t slotSize = 0;  // NCCL_BUFFSIZE / kSteps
  bool shmDisabled = false;
  double timeoutSeconds = 60;
  std::vector<chorus::Channel> channels;
  std::vector<chorus::PeerConnections> p2p;  // indexed by peer rank
  std::vector<chorus::UserRedOp> userOps;
  std::mutex registrationMutex;
  std::list<chorus::RegisteredBuffer> registrations;  // stable addresses: they are the handles
  // Direct algorithms (every rank on this host, see runtime/direct_setup.h):
  // the arena the ranks meet in, the state the primitives carry between
  // operations, its scratch memory, and the one-shot AllReduce size limit.
  std::unique_ptr<chorus::NodeArena> arena;
  // Device communicators: staging and scratch in CUDA memory (released
  // before the arena, whose staging it may have registered).
  std::unique_ptr<chorus::DeviceStaging> deviceStaging;
  // Registered buffers lent to peers: device communicators with p2p, host
  // communicators between processes (runtime/host_blocks.h).
  std::unique_ptr<chorus::LentRegistrations> lentRegistrations;
  chorus::DirectState direct;
  std::vector<char> directScratch;
  size_t oneShotBytes = 0;
  // Device communicators: the proxy thread that runs operations posted on
  // CUDA streams (declared last of the data path: it goes first).
  std::unique_ptr<chorus::DeviceQueue> deviceQueue;

  // The first error of any init or operation job (sticky; ncclSuccess until
  // one fails), and how many jobs are queued or running. commState() turns
  // the two into what ncclCommGetAsyncError reports.
  std::atomic<ncclResult_t> asyncResult{ncclSuccess};
  std::atomic<int> pendingJobs{0};
  std::string asyncErrorText;  // the message that goes with a failed asyncResult
  std::mutex failureMutex;     // one writer of the two (recordCommFailure)
  std::atomic<bool> abortFlag{false};
  // Runs a non-blocking communicator's init and operations in turn.
  chorus::BackgroundQueue background;
  bool finalized = false;

  bool onHost() const { return cudaDev < 0; }
};

namespace chorus {

// Null, destroyed or foreign handles are ncclInvalidArgument naming `caller`.
ncclResult_t checkComm(const ncclComm* comm, const char* caller);
// The first error, else ncclInProgress while jobs are queued or running,
// else ncclSuccess.
ncclResult_t commState(const ncclComm* comm);
// Waits for a background init (if any) and frees everything.
void freeComm(ncclComm* comm);
// Makes `result` the communicator's failure, with this thread's last error
// as its text, unless it has one already (ncclSuccess and ncclInProgress
// are not failures), and publishes it to its peers: in the node arena and
// its shared-memory FIFOs (transport/fifo.h, PeerFailure) on this host, by
// closing its sockets across hosts; their waits for this rank end at once.
// Returns `result`. The message is that of this (maybe worker) thread.
ncclResult_t recordCommFailure(ncclComm* comm, ncclResult_t result);
// Tells the peers on this host that this rank's communicator is aborted
// (unless a failure was published already). Call once no other thread
// works on the communicator.
void announceAbort(ncclComm* comm);

// Whether every rank lives on this rank's host (with `process`, in its
// process too). The same answer on every rank of a host: all see all peers.
bool everyRankWithUs(const ncclComm* comm, bool process);

}  // namespace chorus
