#include "transport/shm/shm_transport.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/log.h"
#include "common/result.h"
#include "topology/host_identity.h"
#include "transport/shm/shm_segment.h"

namespace chorus {
namespace {

struct ShmInfo {
  char name[64];
  uint64_t bytes;
  uint64_t slotSize;
};
static_assert(sizeof(ShmInfo) <= sizeof(ConnectInfo), "ShmInfo must fit a ConnectInfo");

class ShmSend : public SendConnection {
 public:
  ShmMapping mapping;
  void shutDown(ncclResult_t result, const char* reason, const char*) override {
    fifo.markFailed(result, reason);
  }
};

class ShmRecv : public RecvConnection {
 public:
  ShmMapping mapping;
  std::string name;  // unlinked by the sender once mapped; again here in case it never was
  ~ShmRecv() override {
    if (!name.empty()) shm_unlink(name.c_str());
  }
  void shutDown(ncclResult_t result, const char* reason, const char*) override {
    fifo.markFailed(result, reason);
  }
};

class ShmTransport : public Transport {
 public:
  const char* name() const override { return "shm"; }

  ncclResult_t setupRecv(const ConnectionPeer& peer, ConnectInfo* info,
                         std::unique_ptr<RecvConnection>* out) override {
    static std::atomic<uint64_t> counter{0};
    auto conn = std::make_unique<ShmRecv>();
    ShmInfo shm{};
    // The process token, not the pid: processes in other pid namespaces
    // that share /dev/shm may have the same pid.
    snprintf(shm.name, sizeof(shm.name), "/chorus-%016llx-%llu-r%d-c%d",
             static_cast<unsigned long long>(processToken()),
             static_cast<unsigned long long>(counter++), peer.selfRank, peer.channel);
    shm.slotSize = peer.slotSize;
    shm.bytes = fifoBytes(peer.slotSize);
    CHORUS_CHECK(mapShmSegment(shm.name, shm.bytes, true, &conn->mapping));
    conn->name = shm.name;
    // Fault every page in now, not on the first transfer.
    memset(conn->mapping.base, 0, shm.bytes);
    FifoView view = fifoAt(conn->mapping.base, shm.slotSize);
    conn->fifo = FifoReceiver(view, waitContext(peer, &view.control->senderFailure));
    memset(info, 0, sizeof(*info));
    memcpy(info->bytes, &shm, sizeof(shm));
    *out = std::move(conn);
    return ncclSuccess;
  }

  ncclResult_t setupSend(const ConnectionPeer&, ConnectInfo* info,
                         std::unique_ptr<SendConnection>* out) override {
    memset(info, 0, sizeof(*info));
    *out = std::make_unique<ShmSend>();
    return ncclSuccess;
  }

  ncclResult_t connectSend(const ConnectionPeer& peer, const ConnectInfo& recvInfo,
                           SendConnection* conn) override {
    ShmInfo shm;
    memcpy(&shm, recvInfo.bytes, sizeof(shm));
    shm.name[sizeof(shm.name) - 1] = '\0';
    if (shm.bytes != fifoBytes(shm.slotSize))
      CHORUS_FAIL(ncclInternalError, "shm connection info from rank %d is inconsistent",
                  peer.peerRank);
    auto* send = static_cast<ShmSend*>(conn);
    CHORUS_CHECK(mapShmSegment(shm.name, shm.bytes, false, &send->mapping));
    shm_unlink(shm.name);  // both ends hold it now
    FifoView view = fifoAt(send->mapping.base, shm.slotSize);
    send->fifo = FifoSender(view, waitContext(peer, &view.control->receiverFailure));
    TRACE(kLogShm, "rank %d -> rank %d channel %d: shm %s", peer.selfRank, peer.peerRank,
          peer.channel, shm.name);
    return ncclSuccess;
  }

  ncclResult_t connectRecv(const ConnectionPeer&, const ConnectInfo&, RecvConnection*) override {
    return ncclSuccess;
  }

 private:
  // `otherEnd`: where the other end publishes its failure (shutDown).
  static WaitContext waitContext(const ConnectionPeer& peer, const PeerFailure* otherEnd) {
    WaitContext context;
    context.abort = peer.abort;
    context.timeoutSeconds = peer.timeoutSeconds;
    context.selfRank = peer.selfRank;
    context.peerRank = peer.peerRank;
    context.peerPid = peer.sameProcess ? 0 : peer.peerPid;
    context.peerFailure = peer.peerFailure;
    context.endFailure = otherEnd;
    return context;
  }
};

}  // namespace

std::unique_ptr<Transport> makeShmTransport() { return std::make_unique<ShmTransport>(); }

}  // namespace chorus
