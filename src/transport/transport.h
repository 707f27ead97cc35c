// The transport interface. A transport makes connections: one sender end and
// one receiver end of a FIFO (fifo.h) between two ranks, so that primitives
// never know which transport is underneath.
//
// Setting up a connection takes two steps on each side:
//   1. setupRecv / setupSend create local resources and describe them in a
//      ConnectInfo; the runtime sends each side's info to the other
//      through bootstrap;
//   2. connectSend / connectRecv finish with the peer's info.
// Every transport folder (shm/, socket/) holds the same roles: setup,
// connect, and (for network transports) progress by the proxy thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <sys/types.h>

#include "nccl.h"
#include "transport/fifo_host.h"

namespace chorus {

class Bootstrap;

struct ConnectInfo {
  char bytes[256];
};

// What a transport may know about the two ranks of a connection.
struct ConnectionPeer {
  int selfRank;
  int peerRank;
  int channel;
  pid_t peerPid;        // the peer's process, where it can be probed; else 0
  bool sameHost;        // same host identity
  bool sameProcess;     // same process (PeerInfo's process token)
  size_t slotSize;      // NCCL_BUFFSIZE / kSteps
  const std::atomic<bool>* abort;
  double timeoutSeconds;
  Bootstrap* bootstrap;  // for transports that need more than one exchange
  const PeerFailure* peerFailure;  // the peer's published failure (same host), or null
};

// A connection end; transports derive to own their resources (mappings,
// sockets, proxy registrations) and free them in their destructor.
// shutDown: this rank's communicator has failed and will not use the
// connection again. A network end closes its sockets, so that the peer's
// waits on it end at once (peers on this host watch the node arena
// instead, runtime/comm.h: recordCommFailure); `reason` is what this rank's
// own waits on it say.
class SendConnection {
 public:
  virtual ~SendConnection() = default;
  virtual void shutDown(const char* /*reason*/) {}
  FifoSender fifo;
};

class RecvConnection {
 public:
  virtual ~RecvConnection() = default;
  virtual void shutDown(const char* /*reason*/) {}
  FifoReceiver fifo;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual const char* name() const = 0;

  virtual ncclResult_t setupRecv(const ConnectionPeer& peer, ConnectInfo* info,
                                 std::unique_ptr<RecvConnection>* out) = 0;
  virtual ncclResult_t setupSend(const ConnectionPeer& peer, ConnectInfo* info,
                                 std::unique_ptr<SendConnection>* out) = 0;
  virtual ncclResult_t connectSend(const ConnectionPeer& peer, const ConnectInfo& recvInfo,
                                   SendConnection* conn) = 0;
  virtual ncclResult_t connectRecv(const ConnectionPeer& peer, const ConnectInfo& sendInfo,
                                   RecvConnection* conn) = 0;
};

}  // namespace chorus
