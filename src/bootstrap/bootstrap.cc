#include "bootstrap/bootstrap.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "bootstrap/interfaces.h"
#include "bootstrap/root.h"
#include "bootstrap/wire.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"

namespace chorus {
namespace {

// Extra time a rank waits for its root's answer beyond the root's own
// deadline, so that it hears the root name the missing ranks.
constexpr double kRootReplyGrace = 10.0;
// How long a rank told of a failed init waits for its process's root to
// answer the others (the root allows each answer 5 s; answers are small and
// normally leave at once).
constexpr double kRootFinishSeconds = 10.0;
// How long a freshly accepted connection may take to say who it is, and
// how many may be saying it at once (then the oldest goes).
constexpr double kHelloSeconds = 5.0;
constexpr size_t kMaxArrivals = 256;

// Re-reports the last error with what this rank was doing.
ncclResult_t withContext(ncclResult_t result, int rank, const char* what) {
  if (result != ncclSuccess) {
    std::string cause = lastError();
    reportError(__FILE__, __LINE__, "rank %d: %s: %s", rank, what, cause.c_str());
  }
  return result;
}

}  // namespace

Bootstrap::~Bootstrap() = default;

Deadline Bootstrap::deadline() const { return Deadline::after(timeout_); }

ncclResult_t Bootstrap::create(const std::vector<BootstrapId>& roots, int rank, int nranks,
                               const std::atomic<bool>* abort, std::unique_ptr<Bootstrap>* out) {
  if (roots.empty() || static_cast<int>(roots.size()) > nranks)
    CHORUS_FAIL(ncclInvalidArgument, "%zu bootstrap roots for %d ranks: need 1..nranks",
                roots.size(), nranks);
  std::unique_ptr<Bootstrap> b(new Bootstrap());
  b->rank_ = rank;
  b->nranks_ = nranks;
  b->magic_ = roots[0].magic;
  b->abort_ = abort;
  b->timeout_ = static_cast<double>(settingInt("CHORUS_TIMEOUT"));

  NetInterface iface;
  CHORUS_CHECK(findInterfaceFor(roots[0].root, &iface));
  CHORUS_CHECK(Socket::listen(iface.addr, &b->listener_, &b->listenAddr_));

  SocketAddress next{};
  CHORUS_CHECK(b->registerWithRoots(roots, &next));
  CHORUS_CHECK(b->connectRing(next));

  b->peers_.assign(nranks, SocketAddress{});
  b->peers_[rank] = b->listenAddr_;
  CHORUS_CHECK(withContext(b->allGather(b->peers_.data(), sizeof(SocketAddress)), rank,
                           "exchanging bootstrap addresses"));
  TRACE(kLogBootstrap, "rank %d: bootstrap ring formed, listening on %s", rank,
        addressToString(b->listenAddr_).c_str());
  *out = std::move(b);
  return ncclSuccess;
}

ncclResult_t Bootstrap::registerWithRoots(const std::vector<BootstrapId>& roots,
                                          SocketAddress* next) {
  const int nroots = static_cast<int>(roots.size());
  const int mine = rootOfRank(nranks_, nroots, rank_);
  int first, last;
  rootRange(nranks_, nroots, mine, &first, &last);

  // Root `mine` as a member; the previous root too when this rank starts a
  // range, as the successor of that root's last rank.
  std::vector<int> rootsToJoin{mine};
  if (nroots > 1 && rank_ == first) rootsToJoin.push_back((mine - 1 + nroots) % nroots);

  // The ids' magics (not their addresses, which NCCL_COMM_ID lets ranks
  // spell differently).
  uint64_t idsHash = hashBytes(nullptr, 0);
  for (const BootstrapId& root : roots) idsHash = hashBytes(&root.magic, sizeof(root.magic), idsHash);
  std::vector<Socket> conns(rootsToJoin.size());
  for (size_t i = 0; i < rootsToJoin.size(); ++i) {
    const BootstrapId& root = roots[rootsToJoin[i]];
    RegisterPayload info{rank_, nranks_, nroots, rootsToJoin[i], listenAddr_, idsHash};
    ncclResult_t r = Socket::connect(root.root, &conns[i], deadline(), abort_);
    if (r == ncclSuccess)
      r = sendMessage(conns[i], root.magic, WireType::Register, &info, sizeof(info), deadline(), abort_);
    CHORUS_CHECK(withContext(r, rank_, "cannot reach the bootstrap root (is the id current and "
                                       "its root process alive?)"));
  }
  for (size_t i = 0; i < conns.size(); ++i) {
    Deadline replyDeadline = Deadline::after(timeout_ + kRootReplyGrace);
    WireHeader header{};
    RootReplyPayload reply{};
    ncclResult_t r = recvHeader(conns[i], roots[rootsToJoin[i]].magic, sizeof(reply), &header,
                                replyDeadline, abort_);
    if (r == ncclSuccess && header.length != sizeof(reply))
      CHORUS_FAIL(ncclSystemError, "rank %d: malformed answer from the bootstrap root", rank_);
    if (r == ncclSuccess) r = conns[i].recvAll(&reply, sizeof(reply), replyDeadline, abort_);
    CHORUS_CHECK(withContext(r, rank_, "waiting for the bootstrap root"));
    reply.message[sizeof(reply.message) - 1] = '\0';
    if (!reply.ok) {
      awaitLocalRoot(roots[rootsToJoin[i]].magic, kRootFinishSeconds);
      CHORUS_FAIL(ncclRemoteError, "rank %d: %s", rank_, reply.message);
    }
    if (rootsToJoin[i] == mine) *next = reply.next;
  }
  return ncclSuccess;
}

ncclResult_t Bootstrap::connectRing(const SocketAddress& next) {
  if (nranks_ == 1) return ncclSuccess;
  const int nextRank = (rank_ + 1) % nranks_;
  const int prevRank = (rank_ - 1 + nranks_) % nranks_;
  PeerHello hello{rank_, 0};
  ncclResult_t r = Socket::connect(next, &ringNext_, deadline(), abort_);
  if (r == ncclSuccess)
    r = sendMessage(ringNext_, magic_, WireType::Ring, &hello, sizeof(hello), deadline(), abort_);
  if (r != ncclSuccess) {
    std::string what = "connecting to rank " + std::to_string(nextRank);
    return withContext(r, rank_, what.c_str());
  }
  Deadline until = deadline();
  while (!ringPrev_.valid()) {
    r = acceptArrivals(&ringPrev_, until, kPeerCheckMs, nullptr);
    if (r != ncclSuccess) {
      std::string what = "waiting for rank " + std::to_string(prevRank) + " to connect";
      return withContext(r, rank_, what.c_str());
    }
  }
  return ncclSuccess;
}

ncclResult_t Bootstrap::acceptArrivals(Socket* ringPrev, Deadline until, int milliseconds,
                                       bool* progressed) {
  if (abort_ != nullptr && abort_->load(std::memory_order_relaxed))
    CHORUS_FAIL(ncclSystemError, "aborted");
  if (until.expired()) CHORUS_FAIL(ncclSystemError, "timed out (CHORUS_TIMEOUT)");
  std::vector<pollfd> polled(arrivals_.size() + 1);
  polled[0] = pollfd{listener_.fd(), POLLIN, 0};
  for (size_t i = 0; i < arrivals_.size(); ++i) polled[i + 1] = pollfd{arrivals_[i].socket.fd(), POLLIN, 0};
  const int wait = static_cast<int>(
      std::max<long long>(0, std::min<long long>(milliseconds, until.millisecondsLeft())));
  const int ready = poll(polled.data(), polled.size(), wait);
  if (ready < 0 && errno != EINTR)
    CHORUS_FAIL(ncclSystemError, "poll on the bootstrap listener failed: %s", strerror(errno));
  if (progressed != nullptr) *progressed = ready > 0;
  // Filed in the order their hellos completed (bootstrap.h: one message of
  // a peer and tag at a time).
  std::vector<Arrival> complete;
  size_t kept = 0;
  for (size_t i = 0; i < arrivals_.size(); ++i) {
    Arrival& a = arrivals_[i];
    const bool alive = polled[i + 1].revents != 0 ? readHello(a) : !a.deadline.expired();
    if (alive && a.got < sizeof(a.bytes)) {
      if (kept != i) arrivals_[kept] = std::move(a);
      ++kept;
    } else if (alive) {
      complete.push_back(std::move(a));
    }
  }
  arrivals_.erase(arrivals_.begin() + static_cast<std::ptrdiff_t>(kept), arrivals_.end());
  for (Arrival& a : complete) file(a, ringPrev, until);
  if ((polled[0].revents & POLLIN) != 0) {
    Socket conn;
    bool accepted = false;
    CHORUS_CHECK(listener_.acceptNow(&conn, &accepted));
    if (accepted) {
      if (arrivals_.size() == kMaxArrivals) arrivals_.erase(arrivals_.begin());  // the oldest goes
      arrivals_.push_back(Arrival{std::move(conn), Deadline::after(kHelloSeconds)});
    }
  }
  return ncclSuccess;
}

bool Bootstrap::readHello(Arrival& a) const {
  const ssize_t n = ::recv(a.socket.fd(), a.bytes + a.got, sizeof(a.bytes) - a.got, MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  if (n == 0) return false;  // closed before a whole hello
  a.got += static_cast<size_t>(n);
  if (a.got < sizeof(WireHeader)) return true;
  WireHeader header;
  memcpy(&header, a.bytes, sizeof(header));
  // A stranger (another magic, a message no rank sends here) is dropped.
  return header.magic == magic_ &&
         (header.type == static_cast<uint32_t>(WireType::Ring) ||
          header.type == static_cast<uint32_t>(WireType::PeerMessage)) &&
         header.length >= sizeof(PeerHello) && header.length <= kMaxPeerMessage + sizeof(PeerHello);
}

void Bootstrap::file(Arrival& a, Socket* ringPrev, Deadline until) {
  WireHeader header;
  PeerHello hello;
  memcpy(&header, a.bytes, sizeof(header));
  memcpy(&hello, a.bytes + sizeof(header), sizeof(hello));
  if (hello.rank < 0 || hello.rank >= nranks_) return;
  if (header.type == static_cast<uint32_t>(WireType::Ring)) {
    if (ringPrev != nullptr && !ringPrev->valid() && hello.rank == (rank_ - 1 + nranks_) % nranks_)
      *ringPrev = std::move(a.socket);
    else
      WARN("rank %d: unexpected ring connection from rank %d; dropped", rank_, hello.rank);
    return;
  }
  // A rank of this communicator (it knows the magic) sends its message at
  // once; one that went before the end of it is dropped, and the wait for
  // it ends as a wait for a lost peer does.
  Pending message{hello.rank, hello.tag, std::vector<char>(header.length - sizeof(hello))};
  if (a.socket.recvAll(message.data.data(), message.data.size(), until, abort_) != ncclSuccess) {
    WARN("rank %d: a bootstrap message from rank %d (tag %d) broke off: %s; dropped", rank_,
         hello.rank, hello.tag, lastError().c_str());
    return;
  }
  pending_.push_back(std::move(message));
}

ncclResult_t Bootstrap::allGather(void* data, size_t bytesPerRank) {
  std::lock_guard<std::mutex> lock(mutex_);
  char* blocks = static_cast<char*>(data);
  Deadline until = deadline();
  for (int step = 0; step < nranks_ - 1; ++step) {
    int sendIndex = (rank_ - step + nranks_) % nranks_;
    int recvIndex = (rank_ - step - 1 + nranks_) % nranks_;
    CHORUS_CHECK(sendRecvConcurrently(ringNext_, blocks + sendIndex * bytesPerRank, bytesPerRank,
                                      ringPrev_, blocks + recvIndex * bytesPerRank, bytesPerRank,
                                      until, abort_));
  }
  return ncclSuccess;
}

ncclResult_t Bootstrap::barrier() {
  std::vector<char> flags(nranks_, 1);
  return withContext(allGather(flags.data(), 1), rank_, "bootstrap barrier");
}

ncclResult_t Bootstrap::send(int peer, int tag, const void* data, size_t size,
                             const PeerCheck& check) {
  if (peer < 0 || peer >= nranks_)
    CHORUS_FAIL(ncclInvalidArgument, "bootstrap send to rank %d of %d", peer, nranks_);
  if (size > kMaxPeerMessage)
    CHORUS_FAIL(ncclInvalidArgument, "bootstrap message of %zu bytes exceeds %u", size,
                kMaxPeerMessage);
  std::lock_guard<std::mutex> lock(mutex_);
  if (peer == rank_) {
    const char* p = static_cast<const char*>(data);
    pending_.push_back(Pending{rank_, tag, std::vector<char>(p, p + size)});
    return ncclSuccess;
  }
  Socket conn;
  PeerHello hello{rank_, tag};
  WireHeader header{magic_, static_cast<uint32_t>(WireType::PeerMessage),
                    static_cast<uint32_t>(sizeof(hello) + size)};
  Deadline until = deadline();
  ncclResult_t r = Socket::connect(peers_[peer], &conn, until, abort_, check);
  if (r == ncclSuccess) r = conn.sendAll(&header, sizeof(header), until, abort_);
  if (r == ncclSuccess) r = conn.sendAll(&hello, sizeof(hello), until, abort_);
  if (r == ncclSuccess && size > 0) r = conn.sendAll(data, size, until, abort_);
  std::string what = "bootstrap send to rank " + std::to_string(peer);
  return withContext(r, rank_, what.c_str());
}

ncclResult_t Bootstrap::takePending(int peer, int tag, void* data, size_t size, bool* found) {
  *found = false;
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (pending_[i].rank != peer || pending_[i].tag != tag) continue;
    if (pending_[i].data.size() != size)
      CHORUS_FAIL(ncclInternalError, "rank %d: bootstrap message from rank %d tag %d has %zu "
                  "bytes, expected %zu", rank_, peer, tag, pending_[i].data.size(), size);
    if (size > 0) memcpy(data, pending_[i].data.data(), size);
    pending_.erase(pending_.begin() + i);
    *found = true;
    return ncclSuccess;
  }
  return ncclSuccess;
}

ncclResult_t Bootstrap::recv(int peer, int tag, void* data, size_t size, const PeerCheck& check) {
  std::lock_guard<std::mutex> lock(mutex_);
  Deadline until = deadline();
  const std::string what = "waiting for a bootstrap message from rank " + std::to_string(peer);
  Deadline nextCheck = Deadline::after(kPeerCheckMs / 1000.0);
  for (;;) {
    bool found = false;
    CHORUS_CHECK(takePending(peer, tag, data, size, &found));
    if (found) return ncclSuccess;
    ncclResult_t r = acceptArrivals(nullptr, until, kPeerCheckMs, nullptr);
    if (r != ncclSuccess) return withContext(r, rank_, what.c_str());
    if (!check || !nextCheck.expired()) continue;
    nextCheck = Deadline::after(kPeerCheckMs / 1000.0);
    // Is the peer still there? A lost peer sent what it did send before it
    // went: take that first.
    const std::string lost = check();
    if (lost.empty()) continue;
    for (bool more = true; more;) {
      CHORUS_CHECK(acceptArrivals(nullptr, until, 0, &more));
      CHORUS_CHECK(takePending(peer, tag, data, size, &found));
      if (found) return ncclSuccess;
    }
    CHORUS_FAIL(ncclRemoteError, "rank %d: %s: %s", rank_, what.c_str(), lost.c_str());
  }
}

}  // namespace chorus
