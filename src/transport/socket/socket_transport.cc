#include "transport/socket/socket_transport.h"

#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "bootstrap/interfaces.h"
#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"
#include "transport/socket/socket_proxy.h"

namespace chorus {
namespace {

// A receive end, as its ConnectInfo.
struct SocketInfo {
  SocketAddress listen;
  uint32_t sockets;
  uint32_t reserved;
  uint64_t connectionId;
  uint64_t slotSize;
};
static_assert(sizeof(SocketInfo) <= sizeof(ConnectInfo), "SocketInfo must fit a ConnectInfo");

// The first bytes on every socket of a connection.
struct Hello {
  uint64_t magic;  // the communicator's bootstrap magic
  uint64_t connectionId;
  uint32_t socketIndex;
  int32_t senderRank;
};

constexpr size_t kMaxPending = 256;  // accepted sockets still to say hello

// Tells the proxy to let the link go; the last reference closes its sockets.
void dropLink(const std::shared_ptr<SocketLink>& link) {
  if (!link) return;
  link->dropped.store(true, std::memory_order_relaxed);
  link->notifier->notify();
}

// Fails the link and shuts its sockets down (the proxy worker that owns
// them sees the end, the peer's at once); they are closed with the link.
void shutDownLink(const std::shared_ptr<SocketLink>& link, const char* reason) {
  if (!link) return;
  raiseLinkFailure(link->fifo, &link->failure, "%s", reason);
  for (const Socket& s : link->sockets)
    if (s.valid()) ::shutdown(s.fd(), SHUT_RDWR);
}

class SocketSend : public SendConnection {
 public:
  std::shared_ptr<SocketLink> link;
  ~SocketSend() override { dropLink(link); }
  void shutDown(ncclResult_t, const char*, const char* local) override { shutDownLink(link, local); }
};

class SocketRecv : public RecvConnection {
 public:
  std::shared_ptr<SocketLink> link;
  size_t listener = 0;
  uint64_t connectionId = 0;
  ~SocketRecv() override { dropLink(link); }
  void shutDown(ncclResult_t, const char*, const char* local) override { shutDownLink(link, local); }
};

// A socket accepted on a listener whose hello is still being read.
struct Arrival {
  Socket socket;
  SocketAddress from{};
  char hello[sizeof(Hello)];
  size_t got = 0;
};

struct Listener {
  SocketAddress iface{};  // the interface address (port 0) it listens on
  Socket socket;
  SocketAddress bound{};
  std::vector<Arrival> pending;
};

// A receive end set up but not yet connected, and the sockets that have
// announced themselves for it so far (in any order, before or during its
// connectRecv).
struct Expected {
  int peerRank = -1;
  uint32_t sockets = 0;
  struct Arrived {
    uint32_t index;
    Socket socket;
    SocketAddress from;
  };
  std::vector<Arrived> arrived;
};

bool wouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

class SocketTransport : public Transport {
 public:
  SocketTransport(int threads, int sockets) : sockets_(sockets), proxy_(threads) {}
  const char* name() const override { return "socket"; }

  ncclResult_t setupRecv(const ConnectionPeer& peer, ConnectInfo* info,
                         std::unique_ptr<RecvConnection>* out) override {
    auto conn = std::make_unique<SocketRecv>();
    CHORUS_CHECK(makeLink(peer, false, &conn->link));
    std::lock_guard<std::mutex> lock(mutex_);
    CHORUS_CHECK(listenerFor(peer, &conn->listener));
    conn->connectionId = nextId_++;
    Expected& e = expected_[conn->connectionId];
    e.peerRank = peer.peerRank;
    e.sockets = static_cast<uint32_t>(sockets_);
    SocketInfo s{};
    s.listen = listeners_[conn->listener]->bound;
    s.sockets = e.sockets;
    s.connectionId = conn->connectionId;
    s.slotSize = peer.slotSize;
    memset(info, 0, sizeof(*info));
    memcpy(info->bytes, &s, sizeof(s));
    *out = std::move(conn);
    return ncclSuccess;
  }

  ncclResult_t setupSend(const ConnectionPeer& peer, ConnectInfo* info,
                         std::unique_ptr<SendConnection>* out) override {
    auto conn = std::make_unique<SocketSend>();
    CHORUS_CHECK(makeLink(peer, true, &conn->link));
    memset(info, 0, sizeof(*info));
    *out = std::move(conn);
    return ncclSuccess;
  }

  ncclResult_t connectSend(const ConnectionPeer& peer, const ConnectInfo& recvInfo,
                           SendConnection* conn) override {
    SocketInfo info;
    memcpy(&info, recvInfo.bytes, sizeof(info));
    if (info.sockets < 1 || info.sockets > kMaxSocketsPerConnection || info.slotSize != peer.slotSize ||
        addressLength(info.listen) == 0)
      CHORUS_FAIL(ncclInternalError,
                  "rank %d: socket connection info from rank %d is inconsistent (%u sockets, "
                  "slot size %llu, ours %zu: do both ranks set the same NCCL_BUFFSIZE?)",
                  peer.selfRank, peer.peerRank, info.sockets,
                  static_cast<unsigned long long>(info.slotSize), peer.slotSize);
    SocketLink& link = *static_cast<SocketSend*>(conn)->link;
    Deadline deadline = Deadline::after(peer.timeoutSeconds);
    link.sockets.resize(info.sockets);
    link.peerName = addressToString(info.listen);
    for (uint32_t i = 0; i < info.sockets; ++i) {
      CHORUS_CHECK(Socket::connect(info.listen, &link.sockets[i], deadline, peer.abort));
      Hello hello{peer.bootstrap->magic(), info.connectionId, i, peer.selfRank};
      CHORUS_CHECK(link.sockets[i].sendAll(&hello, sizeof(hello), deadline, peer.abort));
    }
    CHORUS_CHECK(start(peer, static_cast<SocketSend*>(conn)->link));
    conn->fifo = FifoSender(link.fifo, waitContext(peer, link));
    return ncclSuccess;
  }

  ncclResult_t connectRecv(const ConnectionPeer& peer, const ConnectInfo&,
                           RecvConnection* conn) override {
    auto* recv = static_cast<SocketRecv*>(conn);
    Deadline deadline = Deadline::after(peer.timeoutSeconds);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = expected_.find(recv->connectionId);
    if (it == expected_.end())
      CHORUS_FAIL(ncclInternalError, "rank %d: socket connection from rank %d connected twice",
                  peer.selfRank, peer.peerRank);
    Expected& e = it->second;
    Listener& listener = *listeners_[recv->listener];
    while (e.arrived.size() < e.sockets) {
      if (peer.abort && peer.abort->load(std::memory_order_relaxed))
        CHORUS_FAIL(ncclSystemError, "rank %d: waiting for socket connections from rank %d: aborted",
                    peer.selfRank, peer.peerRank);
      if (deadline.expired())
        CHORUS_FAIL(ncclSystemError,
                    "rank %d: waiting for socket connections from rank %d on %s: %zu of %u arrived "
                    "in %.0f s (CHORUS_TIMEOUT)",
                    peer.selfRank, peer.peerRank, addressToString(listener.bound).c_str(),
                    e.arrived.size(), e.sockets, peer.timeoutSeconds);
      CHORUS_CHECK(acceptSome(listener, peer, deadline));
    }
    SocketLink& link = *recv->link;
    std::sort(e.arrived.begin(), e.arrived.end(),
              [](const auto& a, const auto& b) { return a.index < b.index; });
    link.sockets.clear();
    for (auto& a : e.arrived) link.sockets.push_back(std::move(a.socket));
    link.peerName = addressToString(e.arrived[0].from);
    expected_.erase(it);
    CHORUS_CHECK(start(peer, recv->link));
    conn->fifo = FifoReceiver(link.fifo, waitContext(peer, link));
    return ncclSuccess;
  }

 private:
  ncclResult_t makeLink(const ConnectionPeer& peer, bool sending, std::shared_ptr<SocketLink>* out) {
    if (!proxy_.ok())
      CHORUS_FAIL(ncclSystemError, "rank %d: socket transport has no eventfd: %s", peer.selfRank,
                  strerror(errno));
    if (peer.bootstrap == nullptr)
      CHORUS_FAIL(ncclInternalError, "rank %d: socket transport needs the bootstrap", peer.selfRank);
    if (peer.slotSize == 0 || peer.slotSize > UINT32_MAX)
      CHORUS_FAIL(ncclInvalidArgument, "rank %d: socket FIFO slot size %zu is out of range",
                  peer.selfRank, peer.slotSize);
    auto link = std::make_shared<SocketLink>();
    link->sending = sending;
    link->selfRank = peer.selfRank;
    link->peerRank = peer.peerRank;
    link->notifier = proxy_.notifier();
    CHORUS_CHECK(link->allocateFifo(peer.slotSize));
    *out = std::move(link);
    return ncclSuccess;
  }

  ncclResult_t start(const ConnectionPeer& peer, const std::shared_ptr<SocketLink>& link) {
    size_t n = link->sockets.size();
    link->moved = std::make_unique<std::atomic<uint32_t>[]>(n);
    for (size_t i = 0; i < n; ++i) link->moved[i].store(0, std::memory_order_relaxed);
    CHORUS_CHECK(proxy_.add(link));
    INFO(kLogNet, "rank %d %s rank %d channel %d: socket connection, %zu socket(s), peer %s",
         peer.selfRank, link->sending ? "->" : "<-", peer.peerRank, peer.channel, n,
         link->peerName.c_str());
    return ncclSuccess;
  }

  static WaitContext waitContext(const ConnectionPeer& peer, const SocketLink& link) {
    WaitContext context;
    context.abort = peer.abort;
    context.timeoutSeconds = peer.timeoutSeconds;
    context.selfRank = peer.selfRank;
    context.peerRank = peer.peerRank;
    context.peerPid = peer.sameHost && !peer.sameProcess ? peer.peerPid : 0;
    context.notifyFd = link.notifier->fd();
    context.link = &link.failure;
    context.peerFailure = peer.peerFailure;
    return context;
  }

  // The listener on the interface that reaches the peer; made on first use.
  ncclResult_t listenerFor(const ConnectionPeer& peer, size_t* index) {
    NetInterface iface;
    CHORUS_CHECK(findInterfaceFor(peer.bootstrap->peerAddress(peer.peerRank), &iface));
    for (size_t i = 0; i < listeners_.size(); ++i)
      if (sameAddress(listeners_[i]->iface, iface.addr)) {
        *index = i;
        return ncclSuccess;
      }
    auto listener = std::make_unique<Listener>();
    listener->iface = iface.addr;
    CHORUS_CHECK(Socket::listen(iface.addr, &listener->socket, &listener->bound));
    INFO(kLogNet | kLogInit, "rank %d: socket transport listens on %s (%s)", peer.selfRank,
         addressToString(listener->bound).c_str(), iface.name.c_str());
    listeners_.push_back(std::move(listener));
    *index = listeners_.size() - 1;
    return ncclSuccess;
  }

  // Waits (at most 100 ms) for new sockets or hello bytes on `listener`,
  // and files every complete hello under its connection id.
  ncclResult_t acceptSome(Listener& listener, const ConnectionPeer& peer, Deadline deadline) {
    std::vector<pollfd> fds{pollfd{listener.socket.fd(), POLLIN, 0}};
    for (Arrival& a : listener.pending) fds.push_back(pollfd{a.socket.fd(), POLLIN, 0});
    int n = poll(fds.data(), fds.size(), deadline.millisecondsLeft(100));
    if (n < 0 && errno != EINTR)
      CHORUS_FAIL(ncclSystemError, "rank %d: poll on the socket transport listener failed: %s",
                  peer.selfRank, strerror(errno));
    if (n <= 0) return ncclSuccess;
    // Backwards, so that dropping an arrival does not move the ones still to visit.
    for (size_t i = listener.pending.size(); i-- > 0;)
      if (fds[i + 1].revents != 0) readHello(listener, i, peer);
    if (fds[0].revents & POLLIN) {
      for (;;) {
        Arrival a;
        socklen_t len = sizeof(a.from);
        int fd = accept4(listener.socket.fd(), &a.from.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        a.socket = Socket(fd);
        if (listener.pending.size() >= kMaxPending) listener.pending.erase(listener.pending.begin());
        listener.pending.push_back(std::move(a));
      }
    }
    return ncclSuccess;
  }

  void readHello(Listener& listener, size_t i, const ConnectionPeer& peer) {
    Arrival& a = listener.pending[i];
    ssize_t n = recv(a.socket.fd(), a.hello + a.got, sizeof(a.hello) - a.got, 0);
    if (n < 0 && wouldBlock(errno)) return;
    const char* why = nullptr;
    Hello hello{};
    if (n <= 0) {
      why = "it closed before its hello";
    } else if ((a.got += static_cast<size_t>(n)) < sizeof(Hello)) {
      return;
    } else {
      memcpy(&hello, a.hello, sizeof(hello));
      auto it = expected_.find(hello.connectionId);
      if (hello.magic != peer.bootstrap->magic()) why = "wrong magic";
      else if (it == expected_.end()) why = "unknown connection id";
      else if (hello.socketIndex >= it->second.sockets) why = "socket index out of range";
      else if (hello.senderRank != it->second.peerRank) why = "hello from an unexpected rank";
      else if (std::any_of(it->second.arrived.begin(), it->second.arrived.end(),
                           [&](const auto& s) { return s.index == hello.socketIndex; }))
        why = "duplicate socket index";
      else
        it->second.arrived.push_back(Expected::Arrived{hello.socketIndex, std::move(a.socket), a.from});
    }
    if (why && n <= 0)
      INFO(kLogNet, "rank %d: socket transport dropped a connection from %s: %s", peer.selfRank,
           addressToString(a.from).c_str(), why);
    else if (why)
      WARN("rank %d: socket transport dropped a connection from %s: %s", peer.selfRank,
           addressToString(a.from).c_str(), why);
    listener.pending.erase(listener.pending.begin() + static_cast<std::ptrdiff_t>(i));
  }

  int sockets_;
  std::mutex mutex_;  // guards everything below but the proxy
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::map<uint64_t, Expected> expected_;
  uint64_t nextId_ = 1;
  SocketProxy proxy_;  // last: destroyed first, so no worker outlives the rest
};

}  // namespace

std::unique_ptr<Transport> makeSocketTransport() {
  int64_t threads = std::clamp<int64_t>(settingInt("NCCL_SOCKET_NTHREADS"), 1, 16);
  int64_t perThread = std::clamp<int64_t>(settingInt("NCCL_NSOCKS_PERTHREAD"), 1,
                                          kMaxSocketsPerConnection);
  int64_t sockets = std::min<int64_t>(threads * perThread, kMaxSocketsPerConnection);
  return std::make_unique<SocketTransport>(static_cast<int>(threads), static_cast<int>(sockets));
}

SocketAddress socketListenAddress(const ConnectInfo& recvInfo) {
  SocketInfo info;
  memcpy(&info, recvInfo.bytes, sizeof(info));
  return info.listen;
}

}  // namespace chorus
