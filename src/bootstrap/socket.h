// A TCP socket with deadlines. Every call that can wait takes a Deadline and
// an optional abort flag, polls in short slices, and returns an error (with a
// last-error message naming the peer) instead of hanging:
//   timeout                 -> ncclSystemError
//   peer closed / reset     -> ncclRemoteError
//   abort flag raised       -> ncclSystemError ("aborted")
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>

#include "bootstrap/socket_address.h"
#include "common/deadline.h"
#include "nccl.h"

namespace chorus {

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { close(); }
  Socket(Socket&& other) noexcept : fd_(other.fd_), peer_(other.peer_) { other.fd_ = -1; }
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Binds and listens on `addr` (port 0 picks a free port); `bound` receives
  // the address with the port actually taken. A port in use is
  // ncclSystemError with a message that says so.
  static ncclResult_t listen(const SocketAddress& addr, Socket* out, SocketAddress* bound);
  // Connects, retrying refused connections (the listener may not be up yet)
  // until the deadline, or until `whyGone` (asked after each refusal) says
  // why the listener's owner will never listen again: ncclRemoteError
  // quoting it.
  static ncclResult_t connect(const SocketAddress& addr, Socket* out, Deadline deadline,
                              const std::atomic<bool>* abort,
                              const std::function<std::string()>& whyGone = {});

  ncclResult_t accept(Socket* out, Deadline deadline, const std::atomic<bool>* abort) const;
  // Accepts a connection that is there now (`*accepted` false if there is
  // none, or it went away); errors other than that fail.
  ncclResult_t acceptNow(Socket* out, bool* accepted) const;
  ncclResult_t sendAll(const void* data, size_t size, Deadline deadline,
                       const std::atomic<bool>* abort);
  ncclResult_t recvAll(void* data, size_t size, Deadline deadline, const std::atomic<bool>* abort);

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  const SocketAddress& peer() const { return peer_; }
  void close();

 private:
  int fd_ = -1;
  SocketAddress peer_{};
};

// Sends `sendSize` bytes on `to` while receiving `recvSize` bytes from `from`,
// progressing both at once so that a ring of ranks that all send before they
// receive cannot deadlock on full socket buffers.
ncclResult_t sendRecvConcurrently(Socket& to, const void* sendData, size_t sendSize, Socket& from,
                                  void* recvData, size_t recvSize, Deadline deadline,
                                  const std::atomic<bool>* abort);

}  // namespace chorus
