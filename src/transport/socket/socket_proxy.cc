#include "transport/socket/socket_proxy.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "common/log.h"
#include "common/result.h"

namespace chorus {
namespace {

struct FrameHeader {
  uint32_t step;   // low 32 bits of the step, checked against the receiver's
  uint32_t bytes;  // the slot's byte count, at most the slot size
};

bool wouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

}  // namespace

size_t stripeBytes(size_t bytes, int index, int count) {
  size_t pieces = (bytes + kPieceBytes - 1) / kPieceBytes;  // the last one may be short
  size_t n = static_cast<size_t>(count), i = static_cast<size_t>(index);
  size_t mine = pieces / n + (i < pieces % n ? 1 : 0);
  if (mine == 0) return 0;
  size_t total = mine * kPieceBytes;
  if ((pieces - 1) % n == i) total -= pieces * kPieceBytes - bytes;  // we hold the short one
  return total;
}

size_t stripeToSlot(size_t offset, size_t stripe, int index, int count, size_t* run) {
  if (count == 1) {  // one socket: the stripe is the slot
    *run = stripe - offset;
    return offset;
  }
  size_t within = offset % kPieceBytes;
  size_t piece = static_cast<size_t>(index) + (offset / kPieceBytes) * static_cast<size_t>(count);
  *run = std::min(kPieceBytes - within, stripe - offset);
  return piece * kPieceBytes + within;
}

Notifier::Notifier() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
Notifier::~Notifier() {
  if (fd_ >= 0) close(fd_);
}
void Notifier::notify() const {
  if (fd_ >= 0) eventfd_write(fd_, 1);
}
void Notifier::drain() const {
  eventfd_t value;
  if (fd_ >= 0) eventfd_read(fd_, &value);
}

ncclResult_t SocketLink::allocateFifo(size_t slotSize) {
  size_t bytes = (fifoBytes(slotSize) + 63) / 64 * 64;
  void* p = aligned_alloc(64, bytes);
  if (p == nullptr)
    CHORUS_FAIL(ncclSystemError, "cannot allocate a %zu-byte socket FIFO", bytes);
  memset(p, 0, bytes);  // fault every page in now, not on the first transfer
  memory = std::unique_ptr<char, void (*)(void*)>(static_cast<char*>(p), free);
  fifo = fifoAt(p, slotSize);
  return ncclSuccess;
}

uint32_t SocketLink::movedByAll() const {
  // Acquire: pairs with the release store of moved[i] by socket i's worker,
  // so its send()/recv() on those slots is ordered before the head or tail
  // store that follows (fifo_remote.cc).
  uint32_t least = moved[0].load(std::memory_order_acquire);
  for (size_t i = 1; i < sockets.size(); ++i) {
    uint32_t v = moved[i].load(std::memory_order_acquire);
    if (static_cast<int32_t>(v - least) < 0) least = v;
  }
  return least;
}

void SocketLink::shutdownSockets() {
  // shutdown(), not close(): another worker may be polling the descriptor.
  for (Socket& s : sockets)
    if (s.valid()) shutdown(s.fd(), SHUT_RDWR);
}

struct SocketProxy::Stream {
  std::shared_ptr<SocketLink> link;
  int index = 0;
  int count = 1;
  int fd = -1;
  FifoRemoteReceiver out;  // sending links
  FifoRemoteSender in;     // receiving links
  uint32_t step = 0;
  enum Stage { kIdle, kHeader, kPayload } stage = kIdle;
  FrameHeader header{};
  size_t done = 0;    // bytes of the header, then of the stripe, moved so far
  size_t stripe = 0;  // this socket's share of the current step
};

struct SocketProxy::Worker {
  int id = 0;
  std::shared_ptr<Notifier> wake;  // worker 0: the transport's notifier
  std::thread thread;
  std::mutex mutex;
  std::vector<Stream> incoming;  // guarded by mutex
  std::atomic<bool> hasIncoming{false};
  std::vector<Stream> streams;   // this worker's only
};

SocketProxy::SocketProxy(int threads)
    : threads_(std::max(1, threads)), notifier_(std::make_shared<Notifier>()) {}

SocketProxy::~SocketProxy() {
  stop_.store(true, std::memory_order_release);
  for (auto& w : workers_) w->wake->notify();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  workers_.clear();
  // A connection end may outlive its transport: close its sockets so that the
  // peer sees it, and fail the rank's waits on it instead of letting them hang.
  for (auto& weak : links_) {
    std::shared_ptr<SocketLink> link = weak.lock();
    if (!link) continue;
    raiseLinkFailure(link->fifo, &link->failure,
                     "connection to rank %d over socket closed: this rank's socket transport was "
                     "destroyed", link->peerRank);
    for (Socket& s : link->sockets) s.close();
  }
}

ncclResult_t SocketProxy::add(const std::shared_ptr<SocketLink>& link) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (workers_.empty()) {
    for (int t = 0; t < threads_; ++t) {
      auto w = std::make_unique<Worker>();
      w->id = t;
      w->wake = t == 0 ? notifier_ : std::make_shared<Notifier>();
      if (w->wake->fd() < 0)
        CHORUS_FAIL(ncclSystemError, "cannot create an eventfd for the socket proxy: %s",
                    strerror(errno));
      workers_.push_back(std::move(w));
    }
    // Worker 0 wakes the others, so all exist before any thread starts.
    try {
      for (auto& w : workers_) w->thread = std::thread(&SocketProxy::run, this, w.get());
    } catch (const std::system_error& e) {
      stop_.store(true);
      for (auto& w : workers_) w->wake->notify();
      for (auto& w : workers_)
        if (w->thread.joinable()) w->thread.join();
      workers_.clear();
      stop_.store(false);
      CHORUS_FAIL(ncclSystemError, "cannot start a socket proxy thread: %s", e.what());
    }
  }
  links_.erase(std::remove_if(links_.begin(), links_.end(),
                              [](const std::weak_ptr<SocketLink>& l) { return l.expired(); }),
               links_.end());
  links_.push_back(link);
  int count = static_cast<int>(link->sockets.size());
  for (int i = 0; i < count; ++i) {
    Stream s;
    s.link = link;
    s.index = i;
    s.count = count;
    s.fd = link->sockets[i].fd();
    if (link->sending) s.out = FifoRemoteReceiver(link->fifo);
    else s.in = FifoRemoteSender(link->fifo);
    Worker& w = *workers_[i % threads_];
    std::lock_guard<std::mutex> wl(w.mutex);
    w.incoming.push_back(std::move(s));
    w.hasIncoming.store(true, std::memory_order_release);
  }
  for (auto& w : workers_) w->wake->notify();
  return ncclSuccess;
}

void SocketProxy::fail(Stream& s, const char* what, int err) {
  SocketLink& l = *s.link;
  // INFO only: a peer that finished and left is no error until a rank waits.
  if (raiseLinkFailure(l.fifo, &l.failure,
                       "connection to rank %d over socket closed: %s%s%s (socket %d of %d, %s)",
                       l.peerRank, what, err ? ": " : "", err ? strerror(err) : "", s.index + 1,
                       s.count, l.peerName.c_str()))
    INFO(kLogNet, "rank %d: %s", l.selfRank, l.failure.reason);
  l.shutdownSockets();
}

bool SocketProxy::progressSend(Stream& s) {
  bool moved = false;
  for (int steps = 0; steps < kSteps;) {
    if (s.stage == Stream::kIdle) {
      if (s.out.published() == s.step) return moved;
      s.header = FrameHeader{s.step, s.out.bytes(s.step)};
      s.stripe = stripeBytes(s.header.bytes, s.index, s.count);
      s.stage = Stream::kHeader;
      s.done = 0;
    }
    if (s.stage == Stream::kHeader) {
      // MSG_MORE: let the header share a segment with the payload behind it.
      int flags = MSG_NOSIGNAL | (s.stripe > 0 ? MSG_MORE : 0);
      ssize_t n = send(s.fd, reinterpret_cast<char*>(&s.header) + s.done,
                       sizeof(s.header) - s.done, flags);
      if (n < 0) {
        if (wouldBlock(errno)) return moved;
        fail(s, "send failed", errno);
        return true;
      }
      moved = true;
      s.done += static_cast<size_t>(n);
      if (s.done < sizeof(s.header)) continue;
      s.stage = Stream::kPayload;
      s.done = 0;
    }
    while (s.done < s.stripe) {
      size_t run;
      size_t at = stripeToSlot(s.done, s.stripe, s.index, s.count, &run);
      ssize_t n = send(s.fd, s.out.slot(s.step) + at, run, MSG_NOSIGNAL);
      if (n < 0) {
        if (wouldBlock(errno)) return moved;
        fail(s, "send failed", errno);
        return true;
      }
      moved = true;
      s.done += static_cast<size_t>(n);
    }
    // Our stripe of this step is on the wire. Release: pairs with the acquire
    // in movedByAll, run by whichever worker finishes the step last.
    s.link->moved[s.index].store(s.step + 1, std::memory_order_release);
    ++s.step;
    ++steps;
    s.stage = Stream::kIdle;
    s.out.releaseUpTo(s.link->movedByAll());
    moved = true;
  }
  return moved;
}

bool SocketProxy::progressRecv(Stream& s) {
  bool moved = false;
  for (int steps = 0; steps < kSteps;) {
    if (s.stage == Stream::kIdle) {
      if (!s.in.slotFree(s.step)) return moved;  // the rank's release writes our eventfd
      s.stage = Stream::kHeader;
      s.done = 0;
    }
    if (s.stage == Stream::kHeader) {
      ssize_t n = recv(s.fd, reinterpret_cast<char*>(&s.header) + s.done,
                       sizeof(s.header) - s.done, 0);
      if (n <= 0) {
        if (n < 0 && wouldBlock(errno)) return moved;
        fail(s, n == 0 ? "closed by the peer" : "receive failed", n == 0 ? 0 : errno);
        return true;
      }
      moved = true;
      s.done += static_cast<size_t>(n);
      if (s.done < sizeof(s.header)) continue;
      // Bound what the network says before acting on it.
      if (s.header.step != s.step || s.header.bytes > s.in.slotSize()) {
        char what[128];
        snprintf(what, sizeof(what), "malformed frame (step %u, %u bytes; expected step %u, at most %zu)",
                 s.header.step, s.header.bytes, s.step, s.in.slotSize());
        fail(s, what, 0);
        return true;
      }
      // Socket 0 records the size; it is published with the tail store below.
      if (s.index == 0) s.in.setBytes(s.step, s.header.bytes);
      s.stripe = stripeBytes(s.header.bytes, s.index, s.count);
      s.stage = Stream::kPayload;
      s.done = 0;
    }
    while (s.done < s.stripe) {
      size_t run;
      size_t at = stripeToSlot(s.done, s.stripe, s.index, s.count, &run);
      ssize_t n = recv(s.fd, s.in.slot(s.step) + at, run, 0);
      if (n <= 0) {
        if (n < 0 && wouldBlock(errno)) return moved;
        fail(s, n == 0 ? "closed by the peer" : "receive failed", n == 0 ? 0 : errno);
        return true;
      }
      moved = true;
      s.done += static_cast<size_t>(n);
    }
    // Our stripe of this step is in the slot. Release: pairs with the acquire
    // in movedByAll (and carries socket 0's setBytes with it).
    s.link->moved[s.index].store(s.step + 1, std::memory_order_release);
    ++s.step;
    ++steps;
    s.stage = Stream::kIdle;
    s.in.publishUpTo(s.link->movedByAll());
    moved = true;
  }
  return moved;
}

void SocketProxy::run(Worker* w) {
  std::vector<pollfd> fds;
  while (!stop_.load(std::memory_order_acquire)) {
    if (w->hasIncoming.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(w->mutex);
      for (Stream& s : w->incoming) w->streams.push_back(std::move(s));
      w->incoming.clear();
      w->hasIncoming.store(false, std::memory_order_relaxed);
    }
    // Forget connection ends that failed or that the rank has destroyed;
    // the last reference closes their sockets.
    w->streams.erase(std::remove_if(w->streams.begin(), w->streams.end(),
                                    [](const Stream& s) {
                                      return s.link->dropped.load(std::memory_order_relaxed) ||
                                             s.link->failure.raised.load(std::memory_order_relaxed);
                                    }),
                     w->streams.end());

    bool moved = false;
    for (Stream& s : w->streams) moved |= s.link->sending ? progressSend(s) : progressRecv(s);

    // What each socket waits for. A sending socket always watches POLLIN:
    // the receiver never writes, so readable means closed (or garbage). A
    // receiving socket reads only when its next slot is free; until then the
    // rank's release will write our eventfd.
    fds.clear();
    fds.push_back(pollfd{w->wake->fd(), POLLIN, 0});
    for (Stream& s : w->streams) {
      short events = POLLIN;
      if (s.link->sending && s.stage != Stream::kIdle) events |= POLLOUT;
      if (!s.link->sending && s.stage == Stream::kIdle && !s.in.slotFree(s.step)) events = 0;
      fds.push_back(pollfd{s.fd, events, 0});
    }
    // Active: just look (the next pass goes on at once). Idle: sleep until a
    // socket or the eventfd wakes us; the cap is only a safety net.
    int n = poll(fds.data(), fds.size(), moved ? 0 : 1000);
    if (n <= 0) continue;
    if (fds[0].revents != 0) {
      w->wake->drain();
      if (w->id == 0)
        for (size_t t = 1; t < workers_.size(); ++t) workers_[t]->wake->notify();
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      Stream& s = w->streams[i - 1];
      short revents = fds[i].revents;
      if (revents == 0 || s.link->failure.raised.load(std::memory_order_relaxed)) continue;
      if (s.link->sending && (revents & POLLIN)) {
        char byte;
        ssize_t got = recv(s.fd, &byte, 1, MSG_DONTWAIT);
        if (got == 0) fail(s, "closed by the peer", 0);
        else if (got > 0) fail(s, "unexpected data from the receiver", 0);
        else if (!wouldBlock(errno)) fail(s, "connection error", errno);
      } else if ((revents & (POLLERR | POLLHUP | POLLNVAL)) && !(revents & POLLIN)) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        fail(s, err ? "connection error" : "hung up", err);
      }
    }
  }
}

}  // namespace chorus
