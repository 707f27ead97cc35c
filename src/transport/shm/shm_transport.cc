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

namespace chorus {
namespace {

struct ShmInfo {
  char name[64];
  uint64_t bytes;
  uint64_t slotSize;
};
static_assert(sizeof(ShmInfo) <= sizeof(ConnectInfo), "ShmInfo must fit a ConnectInfo");

// A mapping that is unmapped with its owner.
struct Mapping {
  void* base = nullptr;
  size_t bytes = 0;
  ~Mapping() {
    if (base) munmap(base, bytes);
  }
};

class ShmSend : public SendConnection {
 public:
  Mapping mapping;
};

class ShmRecv : public RecvConnection {
 public:
  Mapping mapping;
  std::string name;  // unlinked by the sender once mapped; again here in case it never was
  ~ShmRecv() override {
    if (!name.empty()) shm_unlink(name.c_str());
  }
};

ncclResult_t mapSegment(const char* name, size_t bytes, bool create, Mapping* out) {
  int fd = shm_open(name, create ? (O_CREAT | O_EXCL | O_RDWR) : O_RDWR, 0600);
  if (fd < 0)
    CHORUS_FAIL(ncclSystemError, "shm_open(%s) failed: %s", name, strerror(errno));
  if (create && ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int err = errno;
    close(fd);
    shm_unlink(name);
    CHORUS_FAIL(ncclSystemError, "cannot size shared memory %s to %zu bytes: %s (is /dev/shm full?)",
                name, bytes, strerror(err));
  }
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) CHORUS_FAIL(ncclSystemError, "mmap of %s failed: %s", name, strerror(errno));
  out->base = base;
  out->bytes = bytes;
  return ncclSuccess;
}

class ShmTransport : public Transport {
 public:
  const char* name() const override { return "shm"; }

  ncclResult_t setupRecv(const ConnectionPeer& peer, ConnectInfo* info,
                         std::unique_ptr<RecvConnection>* out) override {
    static std::atomic<uint64_t> counter{0};
    auto conn = std::make_unique<ShmRecv>();
    ShmInfo shm{};
    snprintf(shm.name, sizeof(shm.name), "/chorus-%d-%llu-r%d-c%d", static_cast<int>(getpid()),
             static_cast<unsigned long long>(counter++), peer.selfRank, peer.channel);
    shm.slotSize = peer.slotSize;
    shm.bytes = fifoBytes(peer.slotSize);
    CHORUS_CHECK(mapSegment(shm.name, shm.bytes, true, &conn->mapping));
    conn->name = shm.name;
    // Fault every page in now, not on the first transfer.
    memset(conn->mapping.base, 0, shm.bytes);
    conn->fifo = FifoReceiver(fifoAt(conn->mapping.base, shm.slotSize), waitContext(peer));
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
    CHORUS_CHECK(mapSegment(shm.name, shm.bytes, false, &send->mapping));
    shm_unlink(shm.name);  // both ends hold it now
    send->fifo = FifoSender(fifoAt(send->mapping.base, shm.slotSize), waitContext(peer));
    TRACE(kLogShm, "rank %d -> rank %d channel %d: shm %s", peer.selfRank, peer.peerRank,
          peer.channel, shm.name);
    return ncclSuccess;
  }

  ncclResult_t connectRecv(const ConnectionPeer&, const ConnectInfo&, RecvConnection*) override {
    return ncclSuccess;
  }

 private:
  static WaitContext waitContext(const ConnectionPeer& peer) {
    WaitContext context;
    context.abort = peer.abort;
    context.timeoutSeconds = peer.timeoutSeconds;
    context.selfRank = peer.selfRank;
    context.peerRank = peer.peerRank;
    context.peerPid = peer.sameProcess ? 0 : peer.peerPid;
    return context;
  }
};

}  // namespace

std::unique_ptr<Transport> makeShmTransport() { return std::make_unique<ShmTransport>(); }

}  // namespace chorus
