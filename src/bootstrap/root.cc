#include "bootstrap/root.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/socket.h"
#include "bootstrap/wire.h"
#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"

namespace chorus {
namespace {

class Root;

// A root this process serves, with the process that started it: a child
// forked after startRoot inherits the entry but not the thread.
struct ServedRoot {
  pid_t pid;
  std::shared_ptr<Root> root;
};

// The roots this process serves, by magic.
struct LocalRoots {
  std::mutex mutex;
  std::condition_variable finished;
  std::map<uint64_t, ServedRoot> serving;
};

LocalRoots& localRoots() {
  static LocalRoots* roots = new LocalRoots();  // never destroyed: detached threads use it
  return *roots;
}

// A registration held until every expected rank has arrived.
struct Arrival {
  Socket socket;
  RegisterPayload info;
};

class Root {
 public:
  Root(Socket listener, uint64_t magic, double timeout)
      : listener_(std::move(listener)), magic_(magic), timeout_(timeout) {
    pending_.reserve(kMaxPending);
    polled_.reserve(kMaxPending + 1);
  }

  // Until the first rank arrives the thread only waits in poll(): it takes no
  // lock (nor allocates), so a process may fork meanwhile (test harnesses and
  // launchers do).
  // The deadline starts with the first rank admitted, not with the first
  // connection: a stranger (a port scan) must not start it before the ranks
  // have been launched.
  // Connections wait in `pending_` until their whole registration is there
  // (each at most kRegistrationSeconds), read as it comes: one that sends
  // nothing, or half a message, holds up no other (read one after the
  // other, three silent connections made the ranks' inits fail).
  void run() {
    const double timeout = timeout_;
    Deadline deadline = Deadline::never();
    Deadline acceptPause = Deadline::after(0);
    while (!stopped_.load()) {
      const bool listening = acceptPause.expired();
      polled_.resize(pending_.size() + 1);
      polled_[0] = pollfd{listening ? listener_.fd() : -1, POLLIN, 0};  // -1: not polled
      for (size_t i = 0; i < pending_.size(); ++i)
        polled_[i + 1] = pollfd{pending_[i].socket.fd(), POLLIN, 0};
      if (poll(polled_.data(), polled_.size(), deadline.millisecondsLeft()) < 0 && errno != EINTR) {
        WARN("bootstrap root: poll failed: %s", strerror(errno));
        break;
      }
      for (size_t i = pending_.size(); i-- > 0;) {
        const Progress progress =
            polled_[i + 1].revents != 0 ? readMore(pending_[i]) : Progress::Waiting;
        if (progress == Progress::Waiting && !pending_[i].deadline.expired()) continue;
        Pending done = std::move(pending_[i]);
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        if (progress == Progress::Waiting)
          WARN("bootstrap root: %s sent no registration within %.0f s; dropped",
               addressToString(done.socket.peer()).c_str(), kRegistrationSeconds);
        if (progress != Progress::Complete) continue;
        const bool first = arrivals_.empty();
        admit(done);
        if (first && !arrivals_.empty()) deadline = Deadline::after(timeout);
      }
      if (complete()) {
        replyToAll();
        listener_.close();
        markFinished();
        return;
      }
      if (deadline.expired()) break;
      if (listening && (polled_[0].revents & POLLIN) != 0) {
        Socket conn;
        if (listener_.accept(&conn, Deadline::after(kAcceptSeconds), &stopped_) == ncclSuccess) {
          if (pending_.size() == kMaxPending) pending_.erase(pending_.begin());  // the oldest goes
          pending_.push_back(Pending{std::move(conn), Deadline::after(kRegistrationSeconds)});
        } else {
          // Out of descriptors, say: try again later rather than spin.
          acceptPause = Deadline::after(kAcceptPauseSeconds);
        }
      }
    }
    if (stopped_.load()) {
      for (auto& entry : arrivals_) reply(entry.second.socket, false, -1, SocketAddress{}, stopReason_);
    } else {
      failAll(timeout);
    }
    listener_.close();  // the port is free before anyone hears the root is done
    markFinished();
  }

  // Ends the wait for ranks: those admitted are told `reason`. Called
  // (under localRoots' mutex) before run() has returned.
  void stop(const std::string& reason) {
    stopReason_ = reason;
    stopped_.store(true);
  }

 private:
  // A connection whose registration is still coming in.
  struct Pending {
    Socket socket;
    Deadline deadline;  // for the rest of it
    size_t got = 0;
    char bytes[sizeof(WireHeader) + sizeof(RegisterPayload)] = {};
  };
  enum class Progress { Waiting, Complete, Dropped };

  void markFinished() {
    LocalRoots& roots = localRoots();
    std::lock_guard<std::mutex> lock(roots.mutex);
    // Another root may serve the same magic by now (NCCL_COMM_ID's, on a
    // port this one has freed): only this root's entry goes.
    auto it = roots.serving.find(magic_);
    if (it != roots.serving.end() && it->second.root.get() == this) roots.serving.erase(it);
    roots.finished.notify_all();
  }

  // Reads what `p`'s sender has sent so far (poll said something is there):
  // its whole registration, more of it, or enough to drop it (closed early,
  // or a header that is not a registration's).
  Progress readMore(Pending& p) const {
    const ssize_t n = recv(p.socket.fd(), p.bytes + p.got, sizeof(p.bytes) - p.got, MSG_DONTWAIT);
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Progress::Waiting
                                                                         : Progress::Dropped;
    if (n == 0) return Progress::Dropped;  // closed (a port scan) before a whole registration
    p.got += static_cast<size_t>(n);
    if (p.got >= sizeof(WireHeader)) {
      WireHeader header;
      memcpy(&header, p.bytes, sizeof(header));
      if (header.type != static_cast<uint32_t>(WireType::Register) ||
          header.length != sizeof(RegisterPayload)) {
        WARN("bootstrap root: a connection from %s sent no registration (%s); dropped",
             addressToString(p.socket.peer()).c_str(),
             header.magic != magic_ ? "another magic" : "another message type");
        return Progress::Dropped;
      }
    }
    return p.got == sizeof(p.bytes) ? Progress::Complete : Progress::Waiting;
  }

  // Takes in one whole registration; a rank with a wrong magic or that does
  // not fit is answered and dropped.
  void admit(Pending& p) {
    WireHeader header;
    RegisterPayload info;
    memcpy(&header, p.bytes, sizeof(header));
    memcpy(&info, p.bytes + sizeof(header), sizeof(info));
    std::string problem;
    if (header.magic != magic_) {
      // A rank whose id names this address with another magic: a stale id,
      // another job's, or a corrupted one. It is answered in its own magic,
      // so that it hears why instead of seeing its connection reset.
      char text[256];
      snprintf(text, sizeof(text), "rank %d came with an id that is not this root's (its magic "
               "differs: a stale id, another job's, or a corrupted one?)", info.rank);
      problem = text;
    } else {
      problem = check(info);
    }
    if (!problem.empty()) {
      WARN("bootstrap root: %s", problem.c_str());
      reply(p.socket, false, -1, SocketAddress{}, problem, header.magic);
      // The ranks that wait for it hear why it is missing (failAll).
      if (turnedAway_.size() < kTurnedAwayQuoted) turnedAway_.push_back(problem);
      return;
    }
    if (arrivals_.empty()) {
      nranks_ = info.nranks;
      nroots_ = info.nroots;
      rootIndex_ = info.rootIndex;
      idsHash_ = info.idsHash;
      rootRange(nranks_, nroots_, rootIndex_, &first_, &last_);
      successor_ = last_ % nranks_;
    }
    arrivals_[info.rank] = Arrival{std::move(p.socket), info};
  }

  std::string check(const RegisterPayload& info) const {
    char text[256];
    if (info.nranks < 1 || info.nroots < 1 || info.nroots > info.nranks || info.rootIndex < 0 ||
        info.rootIndex >= info.nroots || info.rank < 0 || info.rank >= info.nranks) {
      snprintf(text, sizeof(text), "rank %d registered with nranks %d, root %d of %d: inconsistent",
               info.rank, info.nranks, info.rootIndex, info.nroots);
      return text;
    }
    if (!arrivals_.empty() && (info.nranks != nranks_ || info.nroots != nroots_ ||
                               info.rootIndex != rootIndex_)) {
      snprintf(text, sizeof(text),
               "rank %d says nranks=%d (root %d of %d) but earlier ranks said nranks=%d (root %d "
               "of %d)",
               info.rank, info.nranks, info.rootIndex, info.nroots, nranks_, rootIndex_, nroots_);
      return text;
    }
    if (!arrivals_.empty() && info.idsHash != idsHash_) {
      snprintf(text, sizeof(text),
               "rank %d was given other ids than the ranks before it (ncclCommInitRankScalable: "
               "every rank must pass the same nId and the same ids, in the same order)",
               info.rank);
      return text;
    }
    if (arrivals_.count(info.rank)) {
      snprintf(text, sizeof(text), "rank %d registered twice with the same id", info.rank);
      return text;
    }
    if (!arrivals_.empty() && !expected(info.rank)) {
      snprintf(text, sizeof(text), "rank %d does not belong to root %d (ranks %d..%d)", info.rank,
               rootIndex_, first_, last_ - 1);
      return text;
    }
    return "";
  }

  bool expected(int rank) const { return (rank >= first_ && rank < last_) || rank == successor_; }

  int expectedCount() const {
    int members = last_ - first_;
    return (successor_ >= first_ && successor_ < last_) ? members : members + 1;
  }

  bool complete() const {
    return !arrivals_.empty() && static_cast<int>(arrivals_.size()) == expectedCount();
  }

  void replyToAll() {
    INFO(kLogBootstrap, "bootstrap root %d: all %d ranks arrived", rootIndex_, expectedCount());
    for (auto& [rank, arrival] : arrivals_) {
      if (rank < first_ || rank >= last_) {  // registered only as a successor
        reply(arrival.socket, true, -1, SocketAddress{}, "");
        continue;
      }
      int next = (rank + 1 == last_) ? successor_ : rank + 1;
      reply(arrival.socket, true, next, arrivals_[next].info.listen, "");
    }
  }

  void failAll(double timeout) {
    // The first few missing ranks by name. nranks comes from a rank and may
    // be huge: look at no more ranks than it takes to find them.
    constexpr int kNamed = 32;
    std::string missing;
    int named = 0;
    for (int r = first_; r < last_ && named < kNamed; ++r)
      if (!arrivals_.count(r)) missing += (named++ == 0 ? "" : ", ") + std::to_string(r);
    const bool successorOutside = successor_ < first_ || successor_ >= last_;
    if (successorOutside && named < kNamed && !arrivals_.count(successor_))
      missing += (named++ == 0 ? "" : ", ") + std::to_string(successor_);
    const int count = expectedCount() - static_cast<int>(arrivals_.size());
    if (count > named) missing += ", ...";
    std::string turnedAway;
    for (const std::string& problem : turnedAway_) turnedAway += "; turned away: " + problem;
    char text[480];
    snprintf(text, sizeof(text),
             "%d rank(s) of %d never reached the bootstrap root at %s within %.0f s "
             "(CHORUS_TIMEOUT): missing rank(s) %s%s",
             count, nranks_, addressToString(listener_.peer()).c_str(), timeout, missing.c_str(),
             turnedAway.c_str());
    WARN("%s", text);
    for (auto& entry : arrivals_) reply(entry.second.socket, false, -1, SocketAddress{}, text);
  }

  // `magic`: the one the rank presented (0: this root's).
  void reply(Socket& conn, bool ok, int nextRank, const SocketAddress& next,
             const std::string& message, uint64_t magic = 0) {
    RootReplyPayload payload{};
    payload.ok = ok ? 1 : 0;
    payload.nextRank = nextRank;
    payload.next = next;
    snprintf(payload.message, sizeof(payload.message), "%s", message.c_str());
    sendMessage(conn, magic != 0 ? magic : magic_, WireType::RootReply, &payload, sizeof(payload),
                Deadline::after(5.0), nullptr);
  }

  static constexpr double kRegistrationSeconds = 5.0;
  static constexpr size_t kMaxPending = 256;  // connections waiting at once; then the oldest goes
  static constexpr double kAcceptSeconds = 1.0;
  static constexpr double kAcceptPauseSeconds = 1.0;

  Socket listener_;
  uint64_t magic_;
  double timeout_;
  std::vector<Pending> pending_;
  std::vector<pollfd> polled_;
  std::atomic<bool> stopped_{false};  // release: stopReason_ is set
  std::string stopReason_;
  std::map<int, Arrival> arrivals_;
  // Why ranks were turned away (the first few), for the others' error.
  static constexpr size_t kTurnedAwayQuoted = 2;
  std::vector<std::string> turnedAway_;
  int nranks_ = 0, nroots_ = 0, rootIndex_ = 0;
  uint64_t idsHash_ = 0;
  int first_ = 0, last_ = 0, successor_ = 0;
};

}  // namespace

void rootRange(int nranks, int nroots, int rootIndex, int* first, int* last) {
  *first = static_cast<int>(static_cast<int64_t>(rootIndex) * nranks / nroots);
  *last = static_cast<int>(static_cast<int64_t>(rootIndex + 1) * nranks / nroots);
}

int rootOfRank(int nranks, int nroots, int rank) {
  // The largest k whose range starts at or before rank.
  int k = static_cast<int>((static_cast<int64_t>(rank + 1) * nroots - 1) / nranks);
  int first, last;
  rootRange(nranks, nroots, k, &first, &last);
  while (rank < first) rootRange(nranks, nroots, --k, &first, &last);
  while (rank >= last) rootRange(nranks, nroots, ++k, &first, &last);
  return k;
}

ncclResult_t startRoot(const SocketAddress& addr, uint64_t magic, SocketAddress* bound) {
  Socket listener;
  CHORUS_CHECK(Socket::listen(addr, &listener, bound));
  INFO(kLogBootstrap, "bootstrap root listening on %s", addressToString(*bound).c_str());
  const double timeout = static_cast<double>(settingInt("CHORUS_TIMEOUT"));
  auto root = std::make_shared<Root>(std::move(listener), magic, timeout);
  {
    LocalRoots& roots = localRoots();
    std::lock_guard<std::mutex> lock(roots.mutex);
    roots.serving[magic] = ServedRoot{getpid(), root};
  }
  std::thread([root] { root->run(); }).detach();
  return ncclSuccess;
}

void awaitLocalRoot(uint64_t magic, double seconds) {
  LocalRoots& roots = localRoots();
  std::unique_lock<std::mutex> lock(roots.mutex);
  roots.finished.wait_for(lock, std::chrono::duration<double>(seconds), [&] {
    auto it = roots.serving.find(magic);
    return it == roots.serving.end() || it->second.pid != getpid();
  });
}

void stopLocalRoot(uint64_t magic, const std::string& reason) {
  LocalRoots& roots = localRoots();
  std::unique_lock<std::mutex> lock(roots.mutex);
  auto it = roots.serving.find(magic);
  if (it == roots.serving.end() || it->second.pid != getpid()) return;
  it->second.root->stop(reason);
  // Its port is free once its thread has closed the listener.
  roots.finished.wait_for(lock, std::chrono::seconds(2), [&] {
    return roots.serving.find(magic) == roots.serving.end();
  });
}

}  // namespace chorus
