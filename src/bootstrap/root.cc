#include "bootstrap/root.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
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

// The roots this process serves, by magic, with the process that started
// each: a child forked after startRoot inherits the entry but not the thread.
struct LocalRoots {
  std::mutex mutex;
  std::condition_variable finished;
  std::map<uint64_t, pid_t> serving;
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
      : listener_(std::move(listener)), magic_(magic), timeout_(timeout) {}

  // Until the first rank arrives the thread only waits in poll(): it takes no
  // lock, so a process may fork meanwhile (test harnesses and launchers do).
  void run() {
    const double timeout = timeout_;
    Deadline deadline = Deadline::never();
    for (;;) {
      Socket conn;
      if (listener_.accept(&conn, deadline, nullptr) != ncclSuccess) break;  // deadline passed
      if (arrivals_.empty()) deadline = Deadline::after(timeout);
      admit(std::move(conn));
      if (complete()) {
        replyToAll();
        markFinished();
        return;
      }
    }
    failAll(timeout);
    markFinished();
  }

 private:
  void markFinished() {
    LocalRoots& roots = localRoots();
    std::lock_guard<std::mutex> lock(roots.mutex);
    roots.serving.erase(magic_);
    roots.finished.notify_all();
  }

  // Reads one registration; a connection with a wrong magic or a rank that
  // does not fit is answered (when it can be) and dropped.
  void admit(Socket conn) {
    WireHeader header{};
    RegisterPayload info{};
    Deadline readDeadline = Deadline::after(5.0);
    if (recvHeader(conn, magic_, sizeof(info), &header, readDeadline, nullptr) != ncclSuccess) return;
    if (header.type != static_cast<uint32_t>(WireType::Register) || header.length != sizeof(info)) {
      WARN("bootstrap root: unexpected message type %u from %s; dropped", header.type,
           addressToString(conn.peer()).c_str());
      return;
    }
    if (conn.recvAll(&info, sizeof(info), readDeadline, nullptr) != ncclSuccess) return;
    std::string problem = check(info);
    if (!problem.empty()) {
      WARN("bootstrap root: %s", problem.c_str());
      reply(conn, false, -1, SocketAddress{}, problem);
      return;
    }
    if (arrivals_.empty()) {
      nranks_ = info.nranks;
      nroots_ = info.nroots;
      rootIndex_ = info.rootIndex;
      rootRange(nranks_, nroots_, rootIndex_, &first_, &last_);
      successor_ = last_ % nranks_;
    }
    arrivals_[info.rank] = Arrival{std::move(conn), info};
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
    std::string missing;
    int count = 0;
    std::vector<int> expectedRanks;
    for (int r = first_; r < last_; ++r) expectedRanks.push_back(r);
    if (successor_ < first_ || successor_ >= last_) expectedRanks.push_back(successor_);
    for (int rank : expectedRanks) {
      if (arrivals_.count(rank)) continue;
      if (count++ < 32) missing += (missing.empty() ? "" : ", ") + std::to_string(rank);
    }
    if (count > 32) missing += ", ...";
    char text[400];
    snprintf(text, sizeof(text),
             "%d rank(s) of %d never reached the bootstrap root at %s within %.0f s "
             "(CHORUS_TIMEOUT): missing rank(s) %s",
             count, nranks_, addressToString(listener_.peer()).c_str(), timeout, missing.c_str());
    WARN("%s", text);
    for (auto& entry : arrivals_) reply(entry.second.socket, false, -1, SocketAddress{}, text);
  }

  void reply(Socket& conn, bool ok, int nextRank, const SocketAddress& next,
             const std::string& message) {
    RootReplyPayload payload{};
    payload.ok = ok ? 1 : 0;
    payload.nextRank = nextRank;
    payload.next = next;
    snprintf(payload.message, sizeof(payload.message), "%s", message.c_str());
    sendMessage(conn, magic_, WireType::RootReply, &payload, sizeof(payload), Deadline::after(5.0),
                nullptr);
  }

  Socket listener_;
  uint64_t magic_;
  double timeout_;
  std::map<int, Arrival> arrivals_;
  int nranks_ = 0, nroots_ = 0, rootIndex_ = 0;
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
    roots.serving[magic] = getpid();
  }
  std::thread([root] { root->run(); }).detach();
  return ncclSuccess;
}

void awaitLocalRoot(uint64_t magic, double seconds) {
  LocalRoots& roots = localRoots();
  std::unique_lock<std::mutex> lock(roots.mutex);
  roots.finished.wait_for(lock, std::chrono::duration<double>(seconds), [&] {
    auto it = roots.serving.find(magic);
    return it == roots.serving.end() || it->second != getpid();
  });
}

}  // namespace chorus
