// One rank's bootstrap network: how ranks meet and exchange small messages
// before (and besides) the data transports.
//
// create() registers with the root(s), connects a ring (each rank to its
// successor) and allgathers every rank's listening address. After that the
// layers above use allGather (over the ring), send/recv (one short-lived
// connection per message, matched by peer and tag) and barrier.
//
// Every wait ends by the CHORUS_TIMEOUT deadline or when the abort flag is
// raised, with an error that names the rank involved. Not thread-safe: one
// thread uses a communicator's bootstrap at a time (a mutex enforces it).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "bootstrap/socket.h"
#include "bootstrap/unique_id.h"
#include "nccl.h"

namespace chorus {

class Bootstrap {
 public:
  // `roots` holds one id per root (ncclCommInitRankScalable passes several).
  // `abort` may be null; when raised, waits end with an error.
  static ncclResult_t create(const std::vector<BootstrapId>& roots, int rank, int nranks,
                             const std::atomic<bool>* abort, std::unique_ptr<Bootstrap>* out);
  ~Bootstrap();

  int rank() const { return rank_; }
  int nranks() const { return nranks_; }
  uint64_t magic() const { return magic_; }
  const SocketAddress& listenAddress() const { return listenAddr_; }
  const SocketAddress& peerAddress(int rank) const { return peers_[rank]; }

  // `data` holds nranks blocks of `bytesPerRank`; block rank() is this rank's
  // contribution, the others are filled in.
  ncclResult_t allGather(void* data, size_t bytesPerRank);
  ncclResult_t barrier();
  // Asked while a send or recv waits for its peer (every kPeerCheckMs, and
  // after each refused connection): an error (with its message recorded)
  // ends the wait, since the peer will never answer. Before a recv gives up
  // it still takes what the peer sent before it went.
  using PeerCheck = std::function<ncclResult_t()>;
  static constexpr int kPeerCheckMs = 100;

  // Point-to-point messages; the receiver must expect exactly `size` bytes.
  ncclResult_t send(int peer, int tag, const void* data, size_t size, const PeerCheck& check = {});
  ncclResult_t recv(int peer, int tag, void* data, size_t size, const PeerCheck& check = {});

 private:
  struct Pending {
    int rank;
    int tag;
    std::vector<char> data;
  };

  Bootstrap() = default;
  ncclResult_t registerWithRoots(const std::vector<BootstrapId>& roots, SocketAddress* next);
  ncclResult_t connectRing(const SocketAddress& next);
  // Accepts one connection and reads its hello; ring hellos are returned,
  // peer messages are stored in pending_.
  ncclResult_t acceptOne(Socket* ringPrev, Deadline until);
  // Moves the pending message from `peer` with `tag` into `data`, if there is one.
  ncclResult_t takePending(int peer, int tag, void* data, size_t size, bool* found);
  Deadline deadline() const;

  int rank_ = 0;
  int nranks_ = 0;
  uint64_t magic_ = 0;
  double timeout_ = 60;
  const std::atomic<bool>* abort_ = nullptr;
  Socket listener_;
  SocketAddress listenAddr_{};
  Socket ringNext_, ringPrev_;
  std::vector<SocketAddress> peers_;
  std::vector<Pending> pending_;
  std::mutex mutex_;
};

}  // namespace chorus
