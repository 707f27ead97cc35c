#include "bootstrap/socket.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "common/log.h"
#include "common/result.h"

namespace chorus {
namespace {

bool aborted(const std::atomic<bool>* abort) {
  return abort != nullptr && abort->load(std::memory_order_relaxed);
}

void setNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void setNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Waits until fd is ready for `events`. Returns ncclSuccess when ready.
ncclResult_t waitFor(int fd, short events, Deadline deadline, const std::atomic<bool>* abort,
                     const char* what, const SocketAddress& peer) {
  for (;;) {
    if (aborted(abort)) CHORUS_FAIL(ncclSystemError, "%s %s: aborted", what, addressToString(peer).c_str());
    pollfd pfd{fd, events, 0};
    int n = poll(&pfd, 1, deadline.millisecondsLeft());
    if (n > 0) return ncclSuccess;
    if (n < 0 && errno != EINTR)
      CHORUS_FAIL(ncclSystemError, "%s %s: poll failed: %s", what, addressToString(peer).c_str(),
                  strerror(errno));
    if (deadline.expired())
      CHORUS_FAIL(ncclSystemError, "%s %s: timed out (CHORUS_TIMEOUT)", what,
                  addressToString(peer).c_str());
  }
}

// One non-blocking transfer step; returns bytes moved, 0 when it would block.
ncclResult_t sendSome(int fd, const char* data, size_t size, size_t* moved,
                      const SocketAddress& peer) {
  ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
  if (n >= 0) {
    *moved = static_cast<size_t>(n);
    return ncclSuccess;
  }
  *moved = 0;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return ncclSuccess;
  CHORUS_FAIL(ncclRemoteError, "send to %s failed: %s (peer gone?)", addressToString(peer).c_str(),
              strerror(errno));
}

ncclResult_t recvSome(int fd, char* data, size_t size, size_t* moved, const SocketAddress& peer) {
  ssize_t n = ::recv(fd, data, size, 0);
  if (n > 0) {
    *moved = static_cast<size_t>(n);
    return ncclSuccess;
  }
  *moved = 0;
  if (n == 0)
    CHORUS_FAIL(ncclRemoteError, "connection closed by %s (peer exited?)",
                addressToString(peer).c_str());
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return ncclSuccess;
  CHORUS_FAIL(ncclRemoteError, "receive from %s failed: %s", addressToString(peer).c_str(),
              strerror(errno));
}

}  // namespace

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    peer_ = other.peer_;
    other.fd_ = -1;
  }
  return *this;
}

void Socket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

ncclResult_t Socket::listen(const SocketAddress& addr, Socket* out, SocketAddress* bound) {
  int fd = ::socket(addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) CHORUS_FAIL(ncclSystemError, "socket() failed: %s", strerror(errno));
  Socket sock(fd);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, &addr.sa, addressLength(addr)) != 0) {
    int err = errno;
    if (err == EADDRINUSE)
      CHORUS_FAIL(ncclSystemError, "cannot listen on %s: port %d is already in use",
                  addressToString(addr).c_str(), addressPort(addr));
    CHORUS_FAIL(ncclSystemError, "cannot bind %s: %s", addressToString(addr).c_str(), strerror(err));
  }
  if (::listen(fd, SOMAXCONN) != 0)
    CHORUS_FAIL(ncclSystemError, "listen on %s failed: %s", addressToString(addr).c_str(),
                strerror(errno));
  setNonBlocking(fd);
  SocketAddress actual{};
  socklen_t len = sizeof(actual);
  getsockname(fd, &actual.sa, &len);
  sock.peer_ = actual;
  if (bound) *bound = actual;
  *out = std::move(sock);
  return ncclSuccess;
}

ncclResult_t Socket::connect(const SocketAddress& addr, Socket* out, Deadline deadline,
                             const std::atomic<bool>* abort,
                             const std::function<std::string()>& whyGone) {
  int delayMs = 1;
  for (;;) {
    int fd = ::socket(addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) CHORUS_FAIL(ncclSystemError, "socket() failed: %s", strerror(errno));
    Socket sock(fd);
    sock.peer_ = addr;
    int rc = ::connect(fd, &addr.sa, addressLength(addr));
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      CHORUS_CHECK(waitFor(fd, POLLOUT, deadline, abort, "connect to", addr));
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
    if (err == 0) {
      setNoDelay(fd);
      *out = std::move(sock);
      return ncclSuccess;
    }
    bool retry = err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH ||
                 err == ENETUNREACH || err == ECONNRESET || err == EAGAIN;
    if (!retry)
      CHORUS_FAIL(ncclSystemError, "cannot connect to %s: %s", addressToString(addr).c_str(),
                  strerror(err));
    if (aborted(abort))
      CHORUS_FAIL(ncclSystemError, "connect to %s: aborted", addressToString(addr).c_str());
    if (whyGone) {
      const std::string why = whyGone();
      if (!why.empty())
        CHORUS_FAIL(ncclRemoteError, "connect to %s: %s", addressToString(addr).c_str(), why.c_str());
    }
    if (deadline.expired())
      CHORUS_FAIL(ncclSystemError, "cannot connect to %s: %s until the deadline (CHORUS_TIMEOUT)",
                  addressToString(addr).c_str(), strerror(err));
    std::this_thread::sleep_for(std::chrono::milliseconds(delayMs));
    if (delayMs < 100) delayMs *= 2;
  }
}

ncclResult_t Socket::acceptNow(Socket* out, bool* accepted) const {
  *accepted = false;
  SocketAddress from{};
  socklen_t len = sizeof(from);
  int fd = ::accept4(fd_, &from.sa, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
      return ncclSuccess;
    CHORUS_FAIL(ncclSystemError, "accept on %s failed: %s", addressToString(peer_).c_str(),
                strerror(errno));
  }
  setNoDelay(fd);
  Socket sock(fd);
  sock.peer_ = from;
  *out = std::move(sock);
  *accepted = true;
  return ncclSuccess;
}

ncclResult_t Socket::accept(Socket* out, Deadline deadline, const std::atomic<bool>* abort) const {
  for (;;) {
    CHORUS_CHECK(waitFor(fd_, POLLIN, deadline, abort, "accept on", peer_));
    bool accepted = false;
    CHORUS_CHECK(acceptNow(out, &accepted));
    if (accepted) return ncclSuccess;
  }
}

ncclResult_t Socket::sendAll(const void* data, size_t size, Deadline deadline,
                             const std::atomic<bool>* abort) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    size_t moved = 0;
    CHORUS_CHECK(sendSome(fd_, p, size, &moved, peer_));
    p += moved;
    size -= moved;
    if (size > 0 && moved == 0) CHORUS_CHECK(waitFor(fd_, POLLOUT, deadline, abort, "send to", peer_));
  }
  return ncclSuccess;
}

ncclResult_t Socket::recvAll(void* data, size_t size, Deadline deadline,
                             const std::atomic<bool>* abort) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    size_t moved = 0;
    CHORUS_CHECK(recvSome(fd_, p, size, &moved, peer_));
    p += moved;
    size -= moved;
    if (size > 0 && moved == 0)
      CHORUS_CHECK(waitFor(fd_, POLLIN, deadline, abort, "receive from", peer_));
  }
  return ncclSuccess;
}

ncclResult_t sendRecvConcurrently(Socket& to, const void* sendData, size_t sendSize, Socket& from,
                                  void* recvData, size_t recvSize, Deadline deadline,
                                  const std::atomic<bool>* abort) {
  const char* out = static_cast<const char*>(sendData);
  char* in = static_cast<char*>(recvData);
  while (sendSize > 0 || recvSize > 0) {
    size_t moved = 0;
    bool progressed = false;
    if (sendSize > 0) {
      CHORUS_CHECK(sendSome(to.fd(), out, sendSize, &moved, to.peer()));
      out += moved;
      sendSize -= moved;
      progressed |= moved > 0;
    }
    if (recvSize > 0) {
      CHORUS_CHECK(recvSome(from.fd(), in, recvSize, &moved, from.peer()));
      in += moved;
      recvSize -= moved;
      progressed |= moved > 0;
    }
    if (progressed || (sendSize == 0 && recvSize == 0)) continue;
    if (aborted(abort)) CHORUS_FAIL(ncclSystemError, "ring exchange: aborted");
    pollfd pfds[2];
    int n = 0;
    if (sendSize > 0) pfds[n++] = {to.fd(), POLLOUT, 0};
    if (recvSize > 0) pfds[n++] = {from.fd(), POLLIN, 0};
    int rc = poll(pfds, n, deadline.millisecondsLeft());
    if (rc < 0 && errno != EINTR) CHORUS_FAIL(ncclSystemError, "poll failed: %s", strerror(errno));
    if (rc == 0 && deadline.expired())
      CHORUS_FAIL(ncclSystemError, "ring exchange with %s / %s timed out (CHORUS_TIMEOUT)",
                  addressToString(to.peer()).c_str(), addressToString(from.peer()).c_str());
  }
  return ncclSuccess;
}

}  // namespace chorus
