#include "runtime/connect.h"

#include <string>

#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"
#include "runtime/agreed_settings.h"
#include "runtime/comm.h"
#include "runtime/direct_setup.h"
#include "transport/shm/shm_transport.h"
#include "transport/socket/socket_transport.h"

namespace chorus {
namespace {

// Bootstrap tags of the two halves of a connection setup.
int infoTag(int channel, bool fromReceiver) { return (fromReceiver ? 0x10000 : 0x20000) | channel; }

ConnectionPeer describe(ncclComm* comm, int peer, int channel) {
  const PeerInfo& self = comm->peers[comm->rank];
  const PeerInfo& other = comm->peers[peer];
  ConnectionPeer p{};
  p.selfRank = comm->rank;
  p.peerRank = peer;
  p.channel = channel;
  p.peerPid = probeablePid(other, self);
  p.sameHost = self.hostHash == other.hostHash;
  p.sameProcess = sameProcess(self, other);
  p.slotSize = comm->slotSize;
  p.abort = &comm->abortFlag;
  p.timeoutSeconds = comm->timeoutSeconds;
  p.bootstrap = comm->bootstrap.get();
  // A peer that fails in the middle of a connection setup has not
  // registered the ends it made, and cannot mark them: its slot says it.
  p.peerFailure = comm->arena ? &comm->arena->slot(peer).failure : nullptr;
  return p;
}

// Ends a connection setup's bootstrap waits for `peer` once it will never
// answer: its communicator failed or was aborted (on this host the node
// arena says so, when there is one), or its process has exited.
Bootstrap::PeerCheck watchFor(const ncclComm* comm, int peer) {
  WaitContext context;
  context.peerPid = probeablePid(comm->peers[peer], comm->peers[comm->rank]);
  context.peerFailure = comm->arena ? &comm->arena->slot(peer).failure : nullptr;
  return [context, peer]() -> std::string {
    const std::string reason = peerLossReason(context);
    return reason.empty() ? reason : "rank " + std::to_string(peer) + ": " + reason;
  };
}

Transport* choose(ncclComm* comm, const ConnectionPeer& peer) {
  if (peer.sameHost && !comm->shmDisabled) return comm->shmTransport.get();
  return comm->netTransport.get();
}

}  // namespace

ncclResult_t connectPeers(ncclComm* comm, int channel, const std::vector<int>& sendPeers,
                          const std::vector<int>& recvPeers,
                          std::vector<std::unique_ptr<SendConnection>>* sends,
                          std::vector<std::unique_ptr<RecvConnection>>* recvs) {
  Bootstrap& bootstrap = *comm->bootstrap;
  sends->clear();
  recvs->clear();
  sends->resize(sendPeers.size());
  recvs->resize(recvPeers.size());
  std::vector<ConnectInfo> recvInfos(recvPeers.size()), sendInfos(sendPeers.size());

  // Receivers first: they create the memory senders will reach, and nothing
  // in this half waits for a peer.
  for (size_t i = 0; i < recvPeers.size(); ++i) {
    ConnectionPeer peer = describe(comm, recvPeers[i], channel);
    CHORUS_CHECK(choose(comm, peer)->setupRecv(peer, &recvInfos[i], &(*recvs)[i]));
    CHORUS_CHECK(bootstrap.send(recvPeers[i], infoTag(channel, true), &recvInfos[i],
                                sizeof(ConnectInfo), watchFor(comm, recvPeers[i])));
  }
  for (size_t i = 0; i < sendPeers.size(); ++i) {
    ConnectionPeer peer = describe(comm, sendPeers[i], channel);
    CHORUS_CHECK(choose(comm, peer)->setupSend(peer, &sendInfos[i], &(*sends)[i]));
    CHORUS_CHECK(bootstrap.send(sendPeers[i], infoTag(channel, false), &sendInfos[i],
                                sizeof(ConnectInfo), watchFor(comm, sendPeers[i])));
  }
  for (size_t i = 0; i < sendPeers.size(); ++i) {
    ConnectionPeer peer = describe(comm, sendPeers[i], channel);
    ConnectInfo info;
    CHORUS_CHECK(bootstrap.recv(sendPeers[i], infoTag(channel, true), &info, sizeof(info),
                                watchFor(comm, sendPeers[i])));
    CHORUS_CHECK(choose(comm, peer)->connectSend(peer, info, (*sends)[i].get()));
    INFO(kLogInit, "channel %d: rank %d -> rank %d via %s", channel, comm->rank, sendPeers[i],
         choose(comm, peer)->name());
  }
  for (size_t i = 0; i < recvPeers.size(); ++i) {
    ConnectionPeer peer = describe(comm, recvPeers[i], channel);
    ConnectInfo info;
    CHORUS_CHECK(bootstrap.recv(recvPeers[i], infoTag(channel, false), &info, sizeof(info),
                                watchFor(comm, recvPeers[i])));
    CHORUS_CHECK(choose(comm, peer)->connectRecv(peer, info, (*recvs)[i].get()));
  }
  return ncclSuccess;
}

ncclResult_t setupDataPath(ncclComm* comm) {
  AgreedSettings settings;
  CHORUS_CHECK(agreeOnSettings(comm, &settings));
  comm->slotSize = settings.slotSize;
  comm->shmDisabled = settings.shmDisabled;
  comm->timeoutSeconds = static_cast<double>(settingInt("CHORUS_TIMEOUT"));
  comm->shmTransport = makeShmTransport();
  comm->netTransport = makeSocketTransport();
  comm->p2p.resize(comm->nranks);
  const int nChannels = settings.nChannels;
  comm->channels.resize(nChannels);
  if (comm->nranks == 1) return ncclSuccess;
  const int next = (comm->rank + 1) % comm->nranks;
  const int prev = (comm->rank + comm->nranks - 1) % comm->nranks;
  for (int c = 0; c < nChannels; ++c) {
    std::vector<std::unique_ptr<SendConnection>> sends;
    std::vector<std::unique_ptr<RecvConnection>> recvs;
    CHORUS_CHECK(connectPeers(comm, c, {next}, {prev}, &sends, &recvs));
    comm->channels[c].toNext = std::move(sends[0]);
    comm->channels[c].fromPrev = std::move(recvs[0]);
  }
  CHORUS_CHECK(setupDirect(comm, settings));
  // Every sender has mapped what its receiver made before any rank goes on
  // (a rank that finished first could otherwise destroy its end too early).
  return comm->bootstrap->barrier();
}

}  // namespace chorus
