// Init failures: every bad input gets the right code and a message naming
// the cause, and a rank that never arrives ends in an error, not a hang.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "bootstrap/unique_id.h"
#include "harness/ranks.h"

using chorus::test::joinFailures;
using chorus::test::lastErrorHas;
using chorus::test::RankContext;
using chorus::test::RankOptions;
using chorus::test::runRankProcesses;
using chorus::test::runRankThreads;
using chorus::test::ScopedEnv;

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A loopback port with a listening socket on it, closed with the object.
struct HeldPort {
  int fd = -1;
  int port = 0;
  HeldPort() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd, 4);
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ~HeldPort() { close(fd); }
};

// The ranks named after "missing rank(s) " in the last error.
std::vector<std::string> missingRanks() {
  std::string text = ncclGetLastError(nullptr);
  const std::string marker = "missing rank(s) ";
  size_t at = text.find(marker);
  std::vector<std::string> ranks;
  if (at == std::string::npos) return ranks;
  std::string list = text.substr(at + marker.size());
  for (size_t start = 0; start < list.size();) {
    size_t end = list.find(", ", start);
    if (end == std::string::npos) end = list.size();
    ranks.push_back(list.substr(start, end - start));
    start = end + 2;
  }
  return ranks;
}

TEST(MissingRank, OtherRanksFailWithinTheDeadlineNamingTheMissingRank) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  // Long enough that the ranks which do come all arrive, even on a loaded
  // machine; short enough for a unit test.
  ScopedEnv timeout("CHORUS_TIMEOUT", "4");
  RankOptions options;
  options.timeoutSeconds = 60;
  auto start = std::chrono::steady_clock::now();
  auto failures = runRankProcesses(
      4,
      [](RankContext& ctx) {
        if (ctx.rank == 2) return;  // never arrives
        ncclComm_t comm = nullptr;
        ncclResult_t r = ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank);
        ctx.check(r == ncclRemoteError, std::string("init returned ") + ncclGetErrorString(r));
        ctx.check(missingRanks() == std::vector<std::string>{"2"},
                  std::string("message does not name exactly rank 2: ") + ncclGetLastError(nullptr));
        ctx.check(comm == nullptr, "a failed blocking init must leave *comm NULL");
      },
      options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
  EXPECT_LT(secondsSince(start), 30.0) << "the deadline was 4 s";
}

TEST(MissingRank, NonBlockingInitReportsTheErrorThroughGetAsyncError) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "1");
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  ASSERT_EQ(ncclCommInitRankConfig(&comm, 2, id, 0, &config), ncclInProgress);
  ncclResult_t state = ncclInProgress;
  auto start = std::chrono::steady_clock::now();
  while (state == ncclInProgress && secondsSince(start) < 30) {
    ASSERT_EQ(ncclCommGetAsyncError(comm, &state), ncclSuccess);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(state, ncclRemoteError);
  EXPECT_TRUE(lastErrorHas("missing rank(s) 1")) << ncclGetLastError(nullptr);
  EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

TEST(Abort, EndsANonBlockingInitThatWaitsForMissingRanks) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "60");
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  ASSERT_EQ(ncclCommInitRankConfig(&comm, 3, id, 1, &config), ncclInProgress);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ncclCommAbort(comm), ncclSuccess);
  EXPECT_LT(secondsSince(start), 10.0) << "abort must not wait for the 60 s deadline";
}

TEST(BadInput, InitRankArgumentsAreCheckedWithMessages) {
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclComm_t comm = nullptr;
  EXPECT_EQ(ncclCommInitRank(nullptr, 2, id, 0), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("comm is NULL"));
  EXPECT_EQ(ncclCommInitRank(&comm, 0, id, 0), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("nranks 0"));
  EXPECT_EQ(ncclCommInitRank(&comm, 2, id, 2), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("rank 2 is outside 0..1"));
  EXPECT_EQ(ncclCommInitRank(&comm, 2, id, -1), ncclInvalidArgument);
  ncclUniqueId zero;
  memset(&zero, 0, sizeof(zero));
  EXPECT_EQ(ncclCommInitRank(&comm, 2, zero, 0), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("malformed"));
  EXPECT_EQ(comm, nullptr);
}

TEST(BadInput, ConfigWithWrongMagicOrValuesIsInvalidArgument) {
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclComm_t comm = nullptr;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.magic = 0x12345678;
  EXPECT_EQ(ncclCommInitRankConfig(&comm, 1, id, 0, &config), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("magic"));
  config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 2;
  EXPECT_EQ(ncclCommInitRankConfig(&comm, 1, id, 0, &config), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("blocking = 2"));
  config = NCCL_CONFIG_INITIALIZER;
  config.minCTAs = 8;
  config.maxCTAs = 2;
  EXPECT_EQ(ncclCommInitRankConfig(&comm, 1, id, 0, &config), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("minCTAs"));
}

TEST(BadInput, OtherEntryPointsRejectNullsAndBadCounts) {
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclComm_t comm = nullptr;
  EXPECT_EQ(ncclGetUniqueId(nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommInitAll(nullptr, 2, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommInitAll(&comm, 0, nullptr), ncclInvalidArgument);
  const int negative[1] = {-1};
  EXPECT_EQ(ncclCommInitAll(&comm, 1, negative), ncclInvalidArgument);
  EXPECT_EQ(ncclCommInitRankScalable(&comm, 2, 0, 0, &id, nullptr), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("nId 0"));
  EXPECT_EQ(ncclCommInitRankScalable(&comm, 2, 0, 3, &id, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommInitRankScalable(&comm, 2, 0, 1, nullptr, nullptr), ncclInvalidArgument);
  int value = 0;
  ncclResult_t state;
  EXPECT_EQ(ncclCommCount(nullptr, &value), ncclInvalidArgument);
  EXPECT_EQ(ncclCommUserRank(nullptr, &value), ncclInvalidArgument);
  EXPECT_EQ(ncclCommCuDevice(nullptr, &value), ncclInvalidArgument);
  EXPECT_EQ(ncclCommGetAsyncError(nullptr, &state), ncclInvalidArgument);
  EXPECT_EQ(ncclCommFinalize(nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommDestroy(nullptr), ncclSuccess);  // as NCCL: destroying NULL is a no-op
  EXPECT_EQ(ncclCommAbort(nullptr), ncclSuccess);
}

TEST(BadInput, FinalizeTwiceIsInvalidUsageAndOutputPointersAreChecked) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ncclComm_t comm = nullptr;
  ASSERT_EQ(ncclCommInitAll(&comm, 1, nullptr), ncclSuccess);
  EXPECT_EQ(ncclCommCount(comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommUserRank(comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommCuDevice(comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommGetAsyncError(comm, nullptr), ncclInvalidArgument);
  EXPECT_EQ(ncclCommFinalize(comm), ncclSuccess);
  EXPECT_EQ(ncclCommFinalize(comm), ncclInvalidUsage);
  EXPECT_EQ(ncclCommDestroy(comm), ncclSuccess);
}

TEST(BadEnvironment, MalformedNcclCommIdIsInvalidArgumentNamingIt) {
  ScopedEnv env("NCCL_COMM_ID", "not-an-address");
  ncclUniqueId id;
  EXPECT_EQ(ncclGetUniqueId(&id), ncclInvalidArgument);
  EXPECT_TRUE(lastErrorHas("NCCL_COMM_ID=not-an-address")) << ncclGetLastError(nullptr);
  ncclComm_t comm = nullptr;
  EXPECT_EQ(ncclCommInitRank(&comm, 1, id, 0), ncclInvalidArgument);
}

TEST(BadEnvironment, NcclCommIdOnAPortInUseFailsOnRankZeroSayingSo) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  HeldPort held;
  std::string value = "127.0.0.1:" + std::to_string(held.port);
  ScopedEnv env("NCCL_COMM_ID", value.c_str());
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  ncclComm_t comm = nullptr;
  EXPECT_EQ(ncclCommInitRank(&comm, 1, id, 0), ncclSystemError);
  EXPECT_TRUE(lastErrorHas("already in use")) << ncclGetLastError(nullptr);
}

TEST(BadEnvironment, UnreachableRootFailsAtTheDeadline) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "1");
  int closedPort;
  {
    HeldPort held;
    closedPort = held.port;
  }
  chorus::BootstrapId root;
  ASSERT_EQ(chorus::parseHostPort(("127.0.0.1:" + std::to_string(closedPort)).c_str(), &root.root),
            ncclSuccess);
  root.magic = 42;
  ncclUniqueId id;
  chorus::encodeId(root, &id);
  ncclComm_t comm = nullptr;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ncclCommInitRank(&comm, 2, id, 1), ncclSystemError);
  EXPECT_TRUE(lastErrorHas("cannot reach the bootstrap root")) << ncclGetLastError(nullptr);
  EXPECT_LT(secondsSince(start), 20.0);
}

TEST(BadEnvironment, UnknownInterfaceNameIsASystemErrorNamingTheSetting) {
  ScopedEnv env("NCCL_SOCKET_IFNAME", "=no_such_interface0");
  ncclUniqueId id;
  EXPECT_EQ(ncclGetUniqueId(&id), ncclSystemError);
  EXPECT_TRUE(lastErrorHas("NCCL_SOCKET_IFNAME")) << ncclGetLastError(nullptr);
}

// A stranger's connection to `addr` (-1 if it could not connect).
int connectTo(const chorus::SocketAddress& addr) {
  int fd = socket(addr.sa.sa_family, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, &addr.sa, chorus::addressLength(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A stranger's connection to the root of `id` (-1 if it could not connect).
int connectToRoot(const ncclUniqueId& id) {
  chorus::BootstrapId decoded;
  if (chorus::decodeId(id, &decoded) != ncclSuccess) return -1;
  return connectTo(decoded.root);
}

// Two ranks (threads) create a communicator with `id` and destroy it.
std::vector<std::string> twoRanksMeet(const ncclUniqueId& id) {
  return runRankThreads(2, [&](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (ctx.checkNccl(ncclCommInitRank(&comm, ctx.nranks, id, ctx.rank), "init"))
      ncclCommDestroy(comm);
  });
}

TEST(Strangers, RootIgnoresAConnectionWithTheWrongMagic) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  // A stranger connects first and sends a header with a wrong magic and an
  // absurd length.
  int fd = connectToRoot(id);
  ASSERT_GE(fd, 0);
  uint64_t junk[2] = {0xdeadbeefull, 0xffffffffffffffffull};
  ASSERT_EQ(write(fd, junk, sizeof(junk)), static_cast<ssize_t>(sizeof(junk)));
  auto failures = twoRanksMeet(id);
  close(fd);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(Strangers, RanksThatDisagreeOnNranksAreToldWhy) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "2");
  auto failures = runRankThreads(2, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (ctx.rank == 1) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ncclResult_t r = ncclCommInitRank(&comm, ctx.rank == 0 ? 2 : 3, ctx.id, ctx.rank);
    ctx.check(r != ncclSuccess, "init with mismatched nranks succeeded");
    if (ctx.rank == 1)
      ctx.check(lastErrorHas("nranks=3"), std::string("message: ") + ncclGetLastError(nullptr));
    // Rank 0 hears of the disagreement too: as the rank turned away, or,
    // left waiting, why rank 1 is missing ("turned away: rank 1 says ...").
    if (ctx.rank == 0)
      ctx.check(lastErrorHas("nranks=3"), std::string("message: ") + ncclGetLastError(nullptr));
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// The first rank sets nranks for the root. A huge one (a bad argument on one
// rank) must not make the root allocate per rank: its process, which may be
// another, correct rank's, died of bad_alloc when the root listed the
// missing ranks at its deadline.
TEST(Strangers, AHugeNranksFromOneRankCostsTheRootNothing) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "1");
  auto failures = runRankThreads(2, [](RankContext& ctx) {
    ncclComm_t comm = nullptr;
    if (ctx.rank == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const int nranks = ctx.rank == 1 ? 2000000000 : 2;
    ncclResult_t r = ncclCommInitRank(&comm, nranks, ctx.id, ctx.rank);
    ctx.check(r != ncclSuccess, "init succeeded");
    // Whichever came first (rank 1, almost always), both hear the number.
    ctx.check(lastErrorHas("2000000000"), std::string("message: ") + ncclGetLastError(nullptr));
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A rank whose id names the root's address with another magic (a stale id,
// another job's, a corrupted one) is answered in its own magic, so it hears
// why instead of seeing its connection reset; the rank left waiting hears
// why it is missing.
TEST(Strangers, ARankWithAnIdOfAnotherMagicIsToldWhy) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "1");
  auto failures = runRankThreads(2, [](RankContext& ctx) {
    ncclUniqueId id = ctx.id;
    if (ctx.rank == 1) {
      chorus::BootstrapId decoded;
      if (!ctx.check(chorus::decodeId(id, &decoded) == ncclSuccess, "decode")) return;
      decoded.magic ^= 1;
      chorus::encodeId(decoded, &id);
    }
    ncclComm_t comm = nullptr;
    ncclResult_t r = ncclCommInitRank(&comm, 2, id, ctx.rank);
    ctx.check(r != ncclSuccess, "init succeeded");
    const char* expected = ctx.rank == 1 ? "rank 1 came with an id that is not this root's"
                                         : "turned away: rank 1 came with an id that is not";
    ctx.check(lastErrorHas(expected), std::string("message: ") + ncclGetLastError(nullptr));
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// ncclCommInitRankScalable's ranks must pass the same ids. Ranks 2 and 3
// pass another second id: the first root, where ranks 0 and 1 register and
// rank 2 too (as the successor of rank 1), sees it and says so, to ranks 0
// and 1 whichever came first; before, every rank heard only of missing
// ranks. (Rank 2 hears its own root first, which misses rank 0.)
TEST(Strangers, ScalableRanksWithOtherIdsAreToldSo) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "1");
  RankOptions options;
  options.idCount = 3;
  auto failures = runRankThreads(4, [](RankContext& ctx) {
    ncclUniqueId ids[2] = {ctx.ids[0], ctx.rank < 2 ? ctx.ids[1] : ctx.ids[2]};
    ncclComm_t comm = nullptr;
    ncclResult_t r = ncclCommInitRankScalable(&comm, 4, ctx.rank, 2, ids, nullptr);
    ctx.check(r != ncclSuccess, "init succeeded");
    if (ctx.rank <= 1)
      ctx.check(lastErrorHas("was given other ids than the ranks before it"),
                std::string("message: ") + ncclGetLastError(nullptr));
  }, options);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Connections that send half a header and then nothing wait for their
// registration beside the ranks' (each up to 5 s), not in front of them:
// read one after the other, three of them made the ranks' inits fail at a
// CHORUS_TIMEOUT of 2 s.
TEST(Strangers, SilentConnectionsDoNotHoldUpTheRanks) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "2");
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  std::vector<int> silent;
  for (int i = 0; i < 3; ++i) {
    silent.push_back(connectToRoot(id));
    ASSERT_GE(silent.back(), 0);
    ASSERT_EQ(write(silent.back(), "abc", 3), 3);
  }
  auto failures = twoRanksMeet(id);
  for (int fd : silent) close(fd);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A rank's own bootstrap listener (the ring, point-to-point messages such
// as a connection setup's) reads its connections' hellos side by side too:
// read one after the other, three silent connections held a message up for
// 5 s each.
TEST(Strangers, SilentConnectionsToARanksListenerDoNotHoldUpItsMessages) {
  ScopedEnv timeout("CHORUS_TIMEOUT", "30");
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  chorus::BootstrapId decoded;
  ASSERT_EQ(chorus::decodeId(id, &decoded), ncclSuccess);
  auto failures = runRankThreads(2, [&](RankContext& ctx) {
    std::unique_ptr<chorus::Bootstrap> bootstrap;
    if (!ctx.checkNccl(chorus::Bootstrap::create({decoded}, ctx.rank, 2, nullptr, &bootstrap),
                       "bootstrap"))
      return;
    int value = 0;
    if (ctx.rank == 1) {
      std::vector<int> silent;
      for (int i = 0; i < 3; ++i) {
        silent.push_back(connectTo(bootstrap->peerAddress(0)));
        ctx.check(silent.back() >= 0 && write(silent.back(), "abc", 3) == 3, "a silent connection");
      }
      value = 42;
      ctx.checkNccl(bootstrap->send(0, 7, &value, sizeof(value)), "send");
      // The silent connections stay open until rank 0 has the message.
      ctx.checkNccl(bootstrap->recv(0, 8, &value, sizeof(value)), "recv the answer");
      for (int fd : silent) close(fd);
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    ctx.checkNccl(bootstrap->recv(1, 7, &value, sizeof(value)), "recv");
    const double seconds = secondsSince(start);
    ctx.check(value == 42, "received " + std::to_string(value));
    ctx.check(seconds < 2.0, "the message took " + std::to_string(seconds) + " s");
    ctx.checkNccl(bootstrap->send(1, 8, &value, sizeof(value)), "send the answer");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A stranger touching the root's port (a port scan) before the ranks are
// launched must not start the root's deadline: the ranks, coming after
// CHORUS_TIMEOUT, found the root gone.
TEST(Strangers, AConnectionBeforeTheRanksDoesNotStartTheRootsDeadline) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv timeout("CHORUS_TIMEOUT", "1");
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  int fd = connectToRoot(id);
  ASSERT_GE(fd, 0);
  close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto failures = twoRanksMeet(id);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Settings come from each process's environment. Ranks that would run
// different algorithms, map an arena sized otherwise (that faulted with
// SIGBUS), or open rings their peers do not expect (those waited until
// CHORUS_TIMEOUT) all fail at once instead, naming the setting.
TEST(BadEnvironment, RanksWithDifferentSettingsAllFailAtOnceNamingTheSetting) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  // Longer than the whole test takes when the ranks fail at once.
  ScopedEnv timeout("CHORUS_TIMEOUT", "30");
  struct Case {
    const char* name;
    const char* rank1Value;
    const char* rank0Expects;  // in rank 0's error
    ncclResult_t rank1Result;
  };
  const Case cases[] = {
      {"CHORUS_STAGE_BYTES", "4194304", "CHORUS_STAGE_BYTES", ncclInvalidUsage},
      {"CHORUS_ONESHOT_BYTES", "1024", "CHORUS_ONESHOT_BYTES", ncclInvalidUsage},
      {"CHORUS_HOST_ALGO", "ring", "CHORUS_HOST_ALGO", ncclInvalidUsage},
      {"NCCL_BUFFSIZE", "65536", "NCCL_BUFFSIZE", ncclInvalidUsage},
      {"NCCL_MAX_NCHANNELS", "3", "NCCL_MAX_NCHANNELS", ncclInvalidUsage},
      {"NCCL_MIN_NCHANNELS", "2", "NCCL_MIN_NCHANNELS", ncclInvalidUsage},
      {"NCCL_SHM_DISABLE", "1", "NCCL_SHM_DISABLE", ncclInvalidUsage},
      // Invalid on rank 1 only: rank 1 says why, the others that it failed.
      {"CHORUS_STAGE_BYTES", "1", "rank 1 has invalid settings", ncclInvalidArgument},
      {"NCCL_BUFFSIZE", "16", "rank 1 has invalid settings", ncclInvalidArgument},
  };
  for (const Case& c : cases) {
    auto failures = runRankProcesses(3, [&](RankContext& ctx) {
      if (ctx.rank == 1) setenv(c.name, c.rank1Value, 1);
      ncclComm_t comm = nullptr;
      const auto start = std::chrono::steady_clock::now();
      const ncclResult_t r = ncclCommInitRank(&comm, ctx.nranks, ctx.id, ctx.rank);
      const std::string message = ncclGetLastError(nullptr);
      ctx.check(secondsSince(start) < 15.0, "init took until CHORUS_TIMEOUT: " + message);
      if (ctx.rank == 1) {
        ctx.check(r == c.rank1Result, "rank 1 got " + std::to_string(r) + ": " + message);
        ctx.check(message.find(c.name) != std::string::npos, "rank 1's message: " + message);
      } else {
        ctx.check(r == ncclInvalidUsage, "got " + std::to_string(r) + ": " + message);
        ctx.check(message.find(c.rank0Expects) != std::string::npos, "message: " + message);
      }
      if (r == ncclSuccess) ncclCommDestroy(comm);
    });
    EXPECT_TRUE(failures.empty()) << c.name << "=" << c.rank1Value << " on rank 1\n"
                                  << joinFailures(failures);
  }
}

// A communicator of one rank checks its settings as any other does.
TEST(BadEnvironment, InvalidSettingFailsACommunicatorOfOneRankNamingIt) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  for (const char* name : {"NCCL_BUFFSIZE", "CHORUS_STAGE_BYTES", "CHORUS_HOST_ALGO"}) {
    ScopedEnv bad(name, "1");
    ncclUniqueId id;
    ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
    ncclComm_t comm = nullptr;
    EXPECT_EQ(ncclCommInitRank(&comm, 1, id, 0), ncclInvalidArgument) << name;
    EXPECT_TRUE(lastErrorHas(std::string(name) + "=1")) << ncclGetLastError(nullptr);
    if (comm != nullptr) ncclCommDestroy(comm);
  }
}

}  // namespace
