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
#include <string>
#include <vector>

#include "bootstrap/socket.h"
#include "bootstrap/unique_id.h"
#include "bootstrap/wire.h"
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
  // after each refused connection): a non-empty answer
  // says why the peer will never answer ("rank 3: its process ... has
  // exited"), and the wait ends with ncclRemoteError quoting it. Before a
  // recv gives up it still takes what the peer sent before it went.
  using PeerCheck = std::function<std::string()>;
  static constexpr int kPeerCheckMs = 100;

  // Point-to-point messages; the receiver must expect exactly `size` bytes.
  // One message of a peer and tag at a time: two in flight at once may be
  // taken in either order.
  ncclResult_t send(int peer, int tag, const void* data, size_t size, const PeerCheck& check = {});
  ncclResult_t recv(int peer, int tag, void* data, size_t size, const PeerCheck& check = {});

 private:
  struct Pending {
    int rank;
    int tag;
    std::vector<char> data;
  };

  // A connection accepted on the listener whose hello is still coming in.
  struct Arrival {
    Socket socket;
    Deadline deadline;  // for the rest of its hello
    size_t got = 0;
    char bytes[sizeof(WireHeader) + sizeof(PeerHello)] = {};
  };

  Bootstrap() = default;
  ncclResult_t registerWithRoots(const std::vector<BootstrapId>& roots, SocketAddress* next);
  ncclResult_t connectRing(const SocketAddress& next);
  // Waits up to `milliseconds` (and `until`) for connections: accepts them
  // and reads their hellos side by side, so a silent stranger holds no one
  // up. A ring hello fills `ringPrev` (when given and expected), a peer
  // message goes to pending_. `progressed`: whether anything came. Fails at
  // `until` or on abort.
  ncclResult_t acceptArrivals(Socket* ringPrev, Deadline until, int milliseconds, bool* progressed);
  // Reads what `a` has sent so far: false once it is to be dropped.
  bool readHello(Arrival& a) const;
  // Files one whole hello (and reads the message it announces; one that
  // breaks off is dropped).
  void file(Arrival& a, Socket* ringPrev, Deadline until);
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
  std::vector<Arrival> arrivals_;
  std::mutex mutex_;
};

}  // namespace chorus
