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
  const PeerFailure* peerFailure;  // the peer's arena slot (same host), or null
};

// A connection end; transports derive to own their resources (mappings,
// sockets, proxy registrations) and free them in their destructor.
// shutDown: this rank's communicator has failed and will not use the
// connection again; the peer's waits on it must end at once. A
// shared-memory end publishes `result` and `reason` (what the peer's error
// says after the rank: "its communicator failed ...") in the FIFO; a
// network end closes its sockets (the peer reads "closed by the peer"), and
// `local` is what this rank's own waits on it say.
class SendConnection {
 public:
  virtual ~SendConnection() = default;
  virtual void shutDown(ncclResult_t /*result*/, const char* /*reason*/, const char* /*local*/) {}
  FifoSender fifo;
};

class RecvConnection {
 public:
  virtual ~RecvConnection() = default;
  virtual void shutDown(ncclResult_t /*result*/, const char* /*reason*/, const char* /*local*/) {}
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
