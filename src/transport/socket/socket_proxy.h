// socket transport, progress: the proxy threads that move FIFO slots over
// TCP (setup and connect are in socket_transport.cc).
//
// A connection end (a SocketLink) has a local FIFO and `count` sockets to
// the peer. Slot `step` travels as one frame on EVERY socket:
//
//   FrameHeader {step, bytes}   the slot's byte count (the same on each socket)
//   this socket's stripe        pieces i, i+count, i+2*count, ... of the slot,
//                               pieces being kPieceBytes long (the last shorter)
//
// so each socket is self-describing and both sides agree on which bytes go
// on which socket without talking about it. A socket moves its frames in
// step order; a step is done when every socket has moved its stripe of it.
//
// Threads: NCCL_SOCKET_NTHREADS workers per transport (started at the first
// connection); socket i of every connection belongs to worker i % nthreads,
// which alone touches that socket and its progress. Each worker waits in
// poll() on its sockets and an eventfd; the FIFO ends on the rank write the
// transport's eventfd after every publish/release (WaitContext::notifyFd),
// worker 0 polls it and passes the wake-up on to the others. A worker blocks
// in poll() only after a pass over its sockets that moved nothing.
//
// Failure: a closed or reset socket, a send/recv error or a malformed frame
// raises the link's LinkFailure (fifo_remote.h) with the reason and shuts
// all its sockets down (so the peer hears of it too); the rank's FIFO waits
// check that flag and end in ncclRemoteError. Closing a connection end is
// logged at INFO only: the error surfaces when (and if) a rank waits on it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/socket.h"
#include "nccl.h"
#include "transport/fifo_remote.h"

namespace chorus {

constexpr int kMaxSocketsPerConnection = 64;
constexpr size_t kPieceBytes = 64 * 1024;

// What socket `index` of a `count`-socket connection carries of a
// `bytes`-byte slot (see above).
size_t stripeBytes(size_t bytes, int index, int count);
// Where byte `offset` of that stripe lies in the slot, and how many bytes
// from there are contiguous in both the stripe and the slot.
size_t stripeToSlot(size_t offset, size_t stripe, int index, int count, size_t* run);

// An eventfd, closed with the last owner: the proxy and every FIFO end that
// writes it (a connection end may outlive its transport).
class Notifier {
 public:
  Notifier();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  int fd() const { return fd_; }
  void notify() const;
  void drain() const;

 private:
  int fd_;
};

// One connection end: shared by the rank's connection object, which owns the
// FIFO it waits on, and by the proxy workers driving its sockets.
struct SocketLink {
  bool sending = false;
  int selfRank = -1;
  int peerRank = -1;
  std::string peerName;  // the peer's address, for messages
  std::unique_ptr<char, void (*)(void*)> memory{nullptr, nullptr};  // the local FIFO
  FifoView fifo;
  LinkFailure failure;
  std::vector<Socket> sockets;  // set before the link is added to the proxy
  // Per socket: steps whose stripe it has fully moved. Written (release) only
  // by the socket's worker, read (acquire) by any worker to find the step
  // that every socket has finished.
  std::unique_ptr<std::atomic<uint32_t>[]> moved;
  std::atomic<bool> dropped{false};  // the rank's connection end is gone
  std::shared_ptr<Notifier> notifier;

  // Allocates the FIFO (64-byte aligned) and touches every page of it now.
  ncclResult_t allocateFifo(size_t slotSize);
  uint32_t movedByAll() const;
  // Shuts every socket down so the peer sees the connection end.
  void shutdownSockets();
};

class SocketProxy {
 public:
  explicit SocketProxy(int threads);
  ~SocketProxy();  // stops and joins the workers, closes every link's sockets

  bool ok() const { return notifier_->fd() >= 0; }
  // The eventfd the FIFO ends write after each publish/release.
  const std::shared_ptr<Notifier>& notifier() const { return notifier_; }
  // Hands a connected link to the workers (starting them the first time).
  ncclResult_t add(const std::shared_ptr<SocketLink>& link);

 private:
  struct Stream;
  struct Worker;

  void run(Worker* worker);
  bool progressSend(Stream& s);
  bool progressRecv(Stream& s);
  void fail(Stream& s, const char* what, int err);

  int threads_;
  std::shared_ptr<Notifier> notifier_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;  // guards adding links and starting workers
  // Every link added, so that teardown can close the sockets of those whose
  // connection end outlives the transport.
  std::vector<std::weak_ptr<SocketLink>> links_;
};

}  // namespace chorus
