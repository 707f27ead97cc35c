// The socket transport without a communicator: two ranks as threads, each
// with its own bootstrap and transport, set up and connect send and receive
// ends both ways, then move messages through the FIFOs and check every byte.
#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "bootstrap/unique_id.h"
#include "common/result.h"
#include "harness/ranks.h"
#include "transport/socket/socket_proxy.h"
#include "transport/socket/socket_transport.h"

namespace {

using namespace chorus;
using chorus::test::joinFailures;
using chorus::test::RankContext;
using chorus::test::runRankThreads;
using chorus::test::ScopedEnv;
using Clock = std::chrono::steady_clock;

constexpr int kInfoTag = 7000;
constexpr size_t kMiB = 1024 * 1024;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Rank {
  RankContext* ctx = nullptr;
  int peer = -1;
  std::atomic<bool> abort{false};
  std::unique_ptr<Bootstrap> bootstrap;
  std::unique_ptr<Transport> transport;
  std::vector<std::unique_ptr<SendConnection>> sends;  // one per channel
  std::vector<std::unique_ptr<RecvConnection>> recvs;
};

struct Options {
  int channels = 1;
  size_t slotSize = 512 * 1024;
  double timeout = 30;
  // Runs on each rank after setup, before the ConnectInfos are exchanged.
  std::function<void(Rank&, const std::vector<ConnectInfo>& recvInfos)> beforeExchange;
};

ConnectionPeer peerOf(Rank& r, int channel, const Options& o) {
  ConnectionPeer p{};
  p.selfRank = r.ctx->rank;
  p.peerRank = r.peer;
  p.channel = channel;
  p.peerPid = getpid();
  p.sameHost = true;
  p.sameProcess = true;
  p.slotSize = o.slotSize;
  p.abort = &r.abort;
  p.timeoutSeconds = o.timeout;
  p.bootstrap = r.bootstrap.get();
  return p;
}

// Forms the 2-rank bootstrap, then a send end to and a receive end from the
// other rank on every channel. Receive ends connect in reverse channel order,
// so the sockets of the other channels arrive first and must be parked.
bool openRank(RankContext& ctx, Rank& r, const Options& o) {
  r.ctx = &ctx;
  r.peer = 1 - ctx.rank;
  BootstrapId id;
  if (!ctx.checkNccl(decodeId(ctx.id, &id), "decodeId")) return false;
  if (!ctx.checkNccl(Bootstrap::create({id}, ctx.rank, 2, nullptr, &r.bootstrap), "bootstrap"))
    return false;
  r.transport = makeSocketTransport();
  int n = o.channels;
  std::vector<ConnectInfo> myRecv(n), mySend(n), theirRecv(n), theirSend(n);
  r.sends.resize(n);
  r.recvs.resize(n);
  bool ok = true;
  for (int c = 0; c < n && ok; ++c) {
    ok = ctx.checkNccl(r.transport->setupRecv(peerOf(r, c, o), &myRecv[c], &r.recvs[c]), "setupRecv") &&
         ctx.checkNccl(r.transport->setupSend(peerOf(r, c, o), &mySend[c], &r.sends[c]), "setupSend");
  }
  if (!ok) return false;
  if (o.beforeExchange) o.beforeExchange(r, myRecv);
  for (int c = 0; c < n && ok; ++c)
    ok = ctx.checkNccl(r.bootstrap->send(r.peer, kInfoTag + 2 * c, &myRecv[c], sizeof(ConnectInfo)), "send info") &&
         ctx.checkNccl(r.bootstrap->send(r.peer, kInfoTag + 2 * c + 1, &mySend[c], sizeof(ConnectInfo)), "send info");
  for (int c = 0; c < n && ok; ++c)
    ok = ctx.checkNccl(r.bootstrap->recv(r.peer, kInfoTag + 2 * c, &theirRecv[c], sizeof(ConnectInfo)), "recv info") &&
         ctx.checkNccl(r.bootstrap->recv(r.peer, kInfoTag + 2 * c + 1, &theirSend[c], sizeof(ConnectInfo)), "recv info");
  for (int c = 0; c < n && ok; ++c)
    ok = ctx.checkNccl(r.transport->connectSend(peerOf(r, c, o), theirRecv[c], r.sends[c].get()), "connectSend");
  for (int c = n - 1; c >= 0 && ok; --c)
    ok = ctx.checkNccl(r.transport->connectRecv(peerOf(r, c, o), theirSend[c], r.recvs[c].get()), "connectRecv");
  return ok;
}

// A message that depends on who sends it, on which channel, and its number.
std::vector<char> pattern(size_t size, uint64_t seed) {
  std::vector<char> out(size);
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < size; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    memcpy(out.data() + i, &x, std::min<size_t>(8, size - i));
  }
  return out;
}
uint64_t seedOf(int rank, int channel, size_t message) { return rank * 1000003 + channel * 1009 + message; }

// A message takes ceil(size / slotSize) slots (one for size 0).
ncclResult_t sendMessage(FifoSender& fifo, const char* data, size_t size) {
  size_t off = 0;
  do {
    char* slot;
    CHORUS_CHECK(fifo.acquire(&slot));
    size_t n = std::min(fifo.slotSize(), size - off);
    if (n > 0) memcpy(slot, data + off, n);  // data may be null for size 0
    fifo.publish(static_cast<uint32_t>(n));
    off += n;
  } while (off < size);
  return ncclSuccess;
}

ncclResult_t recvMessage(FifoReceiver& fifo, char* out, size_t size, std::string* problem) {
  size_t off = 0;
  do {
    const char* data;
    uint32_t bytes;
    CHORUS_CHECK(fifo.wait(&data, &bytes));
    if (bytes != std::min(fifo.slotSize(), size - off)) {
      *problem = "a slot at offset " + std::to_string(off) + " holds " + std::to_string(bytes) + " bytes";
      return ncclInternalError;
    }
    if (bytes > 0) memcpy(out + off, data, bytes);
    fifo.release();
    off += bytes;
  } while (off < size);
  return ncclSuccess;
}

// Both directions at once: a thread sends every message on every channel
// while the rank thread receives the peer's and checks each byte.
void exchange(RankContext& ctx, Rank& r, const std::vector<size_t>& sizes) {
  std::string sendProblem;
  std::thread sender([&] {
    for (size_t m = 0; m < sizes.size() && sendProblem.empty(); ++m)
      for (size_t c = 0; c < r.sends.size() && sendProblem.empty(); ++c) {
        std::vector<char> msg = pattern(sizes[m], seedOf(ctx.rank, c, m));
        if (sendMessage(r.sends[c]->fifo, msg.data(), msg.size()) != ncclSuccess)
          sendProblem = "sending message " + std::to_string(m) + ": " + lastError();
      }
  });
  bool ok = true;
  for (size_t m = 0; m < sizes.size() && ok; ++m)
    for (size_t c = 0; c < r.recvs.size() && ok; ++c) {
      std::vector<char> want = pattern(sizes[m], seedOf(r.peer, c, m)), got(sizes[m]);
      std::string problem;
      std::string what = "message " + std::to_string(m) + " (" + std::to_string(sizes[m]) +
                         " bytes) on channel " + std::to_string(c);
      ok = ctx.checkNccl(recvMessage(r.recvs[c]->fifo, got.data(), got.size(), &problem), what + " " + problem) &&
           ctx.check(got == want, what + " arrived with different bytes");
    }
  sender.join();
  ctx.check(sendProblem.empty(), sendProblem);
}

TEST(SocketStripes, CoverEverySlotByteExactlyOnce) {
  for (int count : {1, 2, 3, 4, 7, 64})
    for (size_t bytes : {size_t{0}, size_t{1}, kPieceBytes - 1, kPieceBytes, kPieceBytes + 1,
                         3 * kPieceBytes + 5, size_t{100000}, 4 * kMiB, 4 * kMiB + 3}) {
      std::vector<int> hits(bytes, 0);
      size_t total = 0;
      for (int i = 0; i < count; ++i) {
        size_t stripe = stripeBytes(bytes, i, count), off = 0;
        total += stripe;
        while (off < stripe) {
          size_t run;
          size_t at = stripeToSlot(off, stripe, i, count, &run);
          ASSERT_GT(run, 0u);
          ASSERT_LE(at + run, bytes) << "count " << count << " bytes " << bytes;
          for (size_t b = at; b < at + run; ++b) ++hits[b];
          off += run;
        }
      }
      EXPECT_EQ(total, bytes);
      EXPECT_TRUE(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }))
          << "count " << count << " bytes " << bytes;
    }
}

struct TrafficCase {
  const char* threads;
  const char* perThread;
  size_t slotSize;
  const char* name;
};

class SocketTraffic : public ::testing::TestWithParam<TrafficCase> {};

TEST_P(SocketTraffic, EveryMessageSizeArrivesExactlyInBothDirectionsOnTwoChannels) {
  ScopedEnv threads("NCCL_SOCKET_NTHREADS", GetParam().threads);
  ScopedEnv perThread("NCCL_NSOCKS_PERTHREAD", GetParam().perThread);
  size_t slot = GetParam().slotSize;
  std::vector<size_t> sizes;
  for (int rep = 0; rep < 8; ++rep) {
    for (size_t s : {size_t{0}, size_t{1}, size_t{7}, slot, 3 * slot + 5}) sizes.push_back(s);
    if (rep == 3) sizes.push_back(64 * kMiB);
  }
  auto failures = runRankThreads(2, [&](RankContext& ctx) {
    Rank r;
    Options o;
    o.channels = 2;
    o.slotSize = slot;
    if (!openRank(ctx, r, o)) return;
    exchange(ctx, r, sizes);
    // Both have received everything: nothing is still in flight.
    ctx.checkNccl(r.bootstrap->barrier(), "barrier");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(
    Sockets, SocketTraffic,
    ::testing::Values(TrafficCase{"1", "1", 512 * 1024, "OneSocket"},
                      TrafficCase{"2", "2", 512 * 1024, "TwoThreadsTwoSocketsEach"},
                      TrafficCase{"2", "2", 100000, "FourSocketsOddSlot"},
                      TrafficCase{"1", "3", 4096, "ThreeSocketsSmallSlot"}),
    [](const ::testing::TestParamInfo<TrafficCase>& info) { return std::string(info.param.name); });

TEST(SocketTransport, PeerDestroyedMidTransferEndsWaitsWithAnErrorQuickly) {
  auto failures = runRankThreads(2, [](RankContext& ctx) {
    Rank r;
    Options o;
    o.timeout = 20;  // a backstop: the error must come from the closed sockets, well before
    if (!openRank(ctx, r, o)) return;
    const char* data;
    uint32_t bytes;
    if (ctx.rank == 1) {
      // Take a little of rank 0's big message, then go away mid-transfer.
      for (int i = 0; i < 2; ++i) {
        if (!ctx.checkNccl(r.recvs[0]->fifo.wait(&data, &bytes), "first slots")) return;
        r.recvs[0]->fifo.release();
      }
      r.transport.reset();
      // Our own connection ends outlive the transport: their waits fail too
      // (after the slots the proxy had already filled).
      auto start = Clock::now();
      ncclResult_t res;
      while ((res = r.recvs[0]->fifo.wait(&data, &bytes)) == ncclSuccess) r.recvs[0]->fifo.release();
      ctx.check(res == ncclRemoteError, "wait after destroy returned " + std::to_string(res));
      ctx.check(lastError().find("transport was destroyed") != std::string::npos, lastError());
      ctx.check(secondsSince(start) < 5, "wait after destroy took " + std::to_string(secondsSince(start)));
      return;
    }
    auto start = Clock::now();
    ncclResult_t sendResult = ncclSuccess;
    std::string sendError;
    double sendSeconds = 0;
    std::thread sender([&] {
      std::vector<char> big = pattern(64 * kMiB, 1);
      sendResult = sendMessage(r.sends[0]->fifo, big.data(), big.size());
      sendError = lastError();
      sendSeconds = secondsSince(start);
    });
    ncclResult_t recvResult = r.recvs[0]->fifo.wait(&data, &bytes);  // rank 1 never sends
    std::string recvError = lastError();
    double recvSeconds = secondsSince(start);
    sender.join();
    for (auto [what, res, error, seconds] :
         {std::make_tuple("send", sendResult, sendError, sendSeconds),
          std::make_tuple("receive", recvResult, recvError, recvSeconds)}) {
      ctx.check(res == ncclRemoteError, std::string(what) + " returned " + std::to_string(res));
      ctx.check(error.find("over socket closed") != std::string::npos, std::string(what) + ": " + error);
      ctx.check(seconds < 5, std::string(what) + " failed only after " + std::to_string(seconds) + " s");
    }
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(SocketTransport, StrangersAtTheListenerAreDroppedAndTheRealConnectionWorks) {
  auto failures = runRankThreads(2, [](RankContext& ctx) {
    Socket wrongMagic, silent, truncated;
    Options o;
    o.slotSize = 64 * 1024;
    o.beforeExchange = [&](Rank& r, const std::vector<ConnectInfo>& infos) {
      if (r.ctx->rank != 1) return;
      SocketAddress at = socketListenAddress(infos[0]);
      Deadline d = Deadline::after(5);
      // A hello for the real connection id and socket, with the wrong magic.
      struct {
        uint64_t magic, id;
        uint32_t index;
        int32_t rank;
      } hello{r.bootstrap->magic() ^ 1, 1, 0, 0};
      ctx.checkNccl(Socket::connect(at, &wrongMagic, d, nullptr), "stranger connect") &&
          ctx.checkNccl(wrongMagic.sendAll(&hello, sizeof(hello), d, nullptr), "stranger hello");
      ctx.checkNccl(Socket::connect(at, &silent, d, nullptr), "silent connect");
      ctx.checkNccl(Socket::connect(at, &truncated, d, nullptr), "truncated connect") &&
          ctx.checkNccl(truncated.sendAll("abc", 3, d, nullptr), "truncated hello");
      truncated.close();
    };
    Rank r;
    if (!openRank(ctx, r, o)) return;
    exchange(ctx, r, {0, 1, 7, 64 * 1024, 3 * 64 * 1024 + 5, 8 * kMiB});
    if (ctx.rank == 1) {
      char byte;
      ncclResult_t res = wrongMagic.recvAll(&byte, 1, Deadline::after(5), nullptr);
      ctx.check(res == ncclRemoteError, "the wrong-magic stranger was not hung up on: " + lastError());
    }
    ctx.checkNccl(r.bootstrap->barrier(), "barrier");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

double processCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

TEST(SocketTransport, ProxyThreadsSleepWhileConnectionsAreIdle) {
  ScopedEnv threads("NCCL_SOCKET_NTHREADS", "2");
  ScopedEnv perThread("NCCL_NSOCKS_PERTHREAD", "2");
  double used = -1;
  auto failures = runRankThreads(2, [&](RankContext& ctx) {
    Rank r;
    Options o;
    o.channels = 2;
    if (!openRank(ctx, r, o)) return;
    exchange(ctx, r, {1, 3 * o.slotSize});  // the proxies have run
    ctx.checkNccl(r.bootstrap->barrier(), "barrier");
    // Four proxy threads and eight connection ends, all idle for a second.
    double before = processCpuSeconds();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (ctx.rank == 0) used = processCpuSeconds() - before;
    ctx.checkNccl(r.bootstrap->barrier(), "barrier");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
  EXPECT_LT(used, 0.1) << "CPU seconds used by idle proxies in one second";
}

// Not a speed assertion (perf/ measures speed): prints what loopback gives.
// The parameter is (NCCL_SOCKET_NTHREADS, NCCL_NSOCKS_PERTHREAD).
class SocketThroughput : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(SocketThroughput, Moves64MiBMessagesOverLoopback) {
  auto [nthreads, nsocks] = GetParam();
  ScopedEnv threads("NCCL_SOCKET_NTHREADS", std::to_string(nthreads).c_str());
  ScopedEnv perThread("NCCL_NSOCKS_PERTHREAD", std::to_string(nsocks).c_str());
  constexpr int kMessages = 8;
  double seconds = 0;
  auto failures = runRankThreads(2, [&](RankContext& ctx) {
    Rank r;
    Options o;
    if (!openRank(ctx, r, o)) return;
    std::vector<char> msg = pattern(64 * kMiB, 42), got(msg.size());
    if (!ctx.checkNccl(r.bootstrap->barrier(), "barrier")) return;
    auto start = Clock::now();
    for (int m = 0; m < kMessages; ++m) {
      std::string problem;
      if (ctx.rank == 0) {
        if (!ctx.checkNccl(sendMessage(r.sends[0]->fifo, msg.data(), msg.size()), "send")) return;
      } else if (!ctx.checkNccl(recvMessage(r.recvs[0]->fifo, got.data(), got.size(), &problem), problem) ||
                 // Checked on the first and last only, to time the transport, not memcmp.
                 ((m == 0 || m == kMessages - 1) &&
                  !ctx.check(got == msg, "message " + std::to_string(m) + " differs"))) {
        return;
      }
    }
    if (ctx.rank == 1) seconds = secondsSince(start);
    ctx.checkNccl(r.bootstrap->barrier(), "barrier");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
  if (seconds > 0)
    printf("[ socket ] %d thread(s) x %d socket(s): %d x 64 MiB in %.3f s = %.0f MB/s\n", nthreads,
           nsocks, kMessages, seconds, kMessages * 64.0 * kMiB / seconds / 1e6);
}

INSTANTIATE_TEST_SUITE_P(Sockets, SocketThroughput,
                         ::testing::Values(std::make_pair(1, 1), std::make_pair(1, 4),
                                           std::make_pair(4, 1)));

}  // namespace
