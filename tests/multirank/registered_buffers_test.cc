// Registered buffers lent to peers (runtime/lent_registrations.h), on the
// CPU: ranks on threads, made to run staged rounds as ranks of several
// processes do, and to see each other as other processes, with a host
// stand-in for CUDA IPC whose handles are addresses. So every entry is
// opened and closed as an IPC handle would be, and the collectives read
// peers' buffers where they are.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness/ranks.h"
#include "runtime/comm.h"
#include "runtime/lent_registrations.h"

using namespace chorus::test;

namespace {

constexpr size_t kCount = 50000;  // floats per rank: many staged rounds of 1 KiB

// How many times each allocation was closed, by every rank together.
std::mutex gClosedMutex;
std::map<const void*, int> gClosed;
int closedCount(const void* allocation) {
  std::lock_guard<std::mutex> lock(gClosedMutex);
  return gClosed[allocation];
}

// Host memory shown to "other processes": allocations the test declares;
// a handle is the allocation's address. While `holdOpens` is set, open()
// waits (a peer slow to map); the allocation at `refuse` does not open.
class HostExport final : public chorus::ExportedMemory {
 public:
  static inline std::atomic<bool> holdOpens{false};
  static inline std::atomic<uintptr_t> refuse{0};

  void declare(const void* base, size_t bytes) { allocations_.push_back({base, bytes}); }
  bool exportAllocation(const void* buffer, uintptr_t* base, size_t* bytes,
                        unsigned char (&handle)[chorus::kArenaHandleBytes],
                        const char** why) override {
    const auto at = reinterpret_cast<uintptr_t>(buffer);
    for (const auto& [start, size] : allocations_) {
      const auto first = reinterpret_cast<uintptr_t>(start);
      if (at < first || at - first >= size) continue;
      *base = first;
      *bytes = size;
      memcpy(handle, &first, sizeof(first));
      return true;
    }
    *why = "not a declared allocation";
    return false;
  }
  ncclResult_t open(const unsigned char (&handle)[chorus::kArenaHandleBytes],
                    char** mapped) override {
    while (holdOpens.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    uintptr_t address = 0;
    memcpy(&address, handle, sizeof(address));
    if (address == refuse.load()) return ncclSystemError;
    *mapped = reinterpret_cast<char*>(address);
    ++opens;
    return ncclSuccess;
  }
  void close(char* mapped) override {
    ++closes;
    std::lock_guard<std::mutex> lock(gClosedMutex);
    ++gClosed[mapped];
  }

  std::atomic<int> opens{0}, closes{0};

 private:
  std::vector<std::pair<const void*, size_t>> allocations_;
};

float inputOf(int rank, size_t i) { return static_cast<float>(rank + 1 + static_cast<int>(i % 13)); }

// Runs AllReduce (out of place and in place), AllGather, ReduceScatter,
// Broadcast and Reduce on send/recv and checks every element.
void runAndCheckAll(RankContext& ctx, ncclComm_t comm, std::vector<float>& send,
                    std::vector<float>& recv, const std::string& when) {
  const int n = ctx.nranks, me = ctx.rank;
  auto fill = [&] {
    for (size_t i = 0; i < send.size(); ++i) send[i] = inputOf(me, i);
  };
  auto sumOf = [&](size_t i) {
    float s = 0;
    for (int r = 0; r < n; ++r) s += inputOf(r, i);
    return s;
  };
  auto expectAll = [&](const char* what, size_t count, auto want) {
    size_t wrong = 0, first = 0;
    for (size_t i = 0; i < count; ++i)
      if (recv[i] != want(i) && wrong++ == 0) first = i;
    ctx.check(wrong == 0, when + ", " + what + ": " + std::to_string(wrong) + " wrong, first at " +
                              std::to_string(first));
  };
  auto call = [&](const char* what, ncclResult_t r) { return ctx.checkNccl(r, when + ", " + what); };

  fill();
  if (call("AllReduce", ncclAllReduce(send.data(), recv.data(), kCount, ncclFloat32, ncclSum, comm, nullptr)))
    expectAll("AllReduce", kCount, sumOf);
  fill();
  recv.assign(recv.size(), -1.0f);
  memcpy(recv.data(), send.data(), kCount * sizeof(float));
  if (call("in-place AllReduce", ncclAllReduce(recv.data(), recv.data(), kCount, ncclFloat32, ncclSum, comm, nullptr)))
    expectAll("in-place AllReduce", kCount, sumOf);
  if (call("AllGather", ncclAllGather(send.data(), recv.data(), kCount, ncclFloat32, comm, nullptr)))
    expectAll("AllGather", kCount * n, [&](size_t i) { return inputOf(static_cast<int>(i / kCount), i % kCount); });
  if (call("ReduceScatter", ncclReduceScatter(send.data(), recv.data(), kCount, ncclFloat32, ncclSum, comm, nullptr)))
    expectAll("ReduceScatter", kCount, [&](size_t i) { return sumOf(me * kCount + i); });
  const int root = n - 1;
  if (call("Broadcast", ncclBroadcast(send.data(), recv.data(), kCount, ncclFloat32, root, comm, nullptr)))
    expectAll("Broadcast", kCount, [&](size_t i) { return inputOf(root, i); });
  recv.assign(recv.size(), -1.0f);
  if (call("Reduce", ncclReduce(send.data(), recv.data(), kCount, ncclFloat32, ncclSum, 0, comm, nullptr)) && me == 0)
    expectAll("Reduce", kCount, sumOf);
}

// Waits until every peer has mapped `buffer` (this rank would lend it),
// then meets the others, which have waited for theirs.
void waitUntilLent(RankContext& ctx, ncclComm_t comm, const std::vector<float>& buffer) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (comm->lentRegistrations->find(buffer.data(), buffer.size() * sizeof(float)).id == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ctx.check(comm->lentRegistrations->find(buffer.data(), buffer.size() * sizeof(float)).id != 0,
            "peers did not map a registered buffer within 20 s");
  barrier(ctx, comm);
}

// Installs a HostExport lender on a host communicator made to run staged
// rounds, with peers that look like other processes.
HostExport& lendThroughHost(RankContext& ctx, ncclComm_t comm) {
  comm->direct.allInThisProcess = false;
  for (int r = 0; r < ctx.nranks; ++r)
    if (r != ctx.rank) {
      comm->peers[r].pid += 1000000 + r;
      comm->peers[r].processToken ^= 0x5a5a5a5a00000000ull + r;
    }
  auto owned = std::make_unique<HostExport>();
  HostExport& memory = *owned;
  comm->lentRegistrations = std::make_unique<chorus::LentRegistrations>(comm, std::move(owned));
  comm->direct.registered = comm->lentRegistrations.get();
  comm->direct.lendStagedBytes = comm->direct.lendStagedOneWayBytes = 0;  // as device communicators do
  return memory;
}

// A communicator of ctx's rank lending through a HostExport (*memory);
// null, with the failure recorded, without one or without a node arena.
ncclComm_t initLending(RankContext& ctx, HostExport** memory) {
  ncclComm_t comm = initRankComm(ctx);
  if (comm == nullptr) return nullptr;
  if (!ctx.check(comm->arena != nullptr, "the direct algorithms are not on")) {
    ncclCommDestroy(comm);
    return nullptr;
  }
  *memory = &lendThroughHost(ctx, comm);
  return comm;
}

void lendRegisteredBuffers(RankContext& ctx) {
  HostExport* lender = nullptr;
  ncclComm_t comm = initLending(ctx, &lender);
  if (comm == nullptr) return;
  HostExport& memory = *lender;
  chorus::LentRegistrations& lending = *comm->lentRegistrations;

  std::vector<float> send(kCount * ctx.nranks), recv(kCount * ctx.nranks);
  memory.declare(send.data(), send.size() * sizeof(float));
  memory.declare(recv.data(), recv.size() * sizeof(float));
  void* sendHandle = nullptr;
  void* recvHandle = nullptr;
  ctx.checkNccl(ncclCommRegister(comm, send.data(), send.size() * sizeof(float), &sendHandle), "register send");
  ctx.checkNccl(ncclCommRegister(comm, recv.data(), recv.size() * sizeof(float), &recvHandle), "register recv");
  waitUntilLent(ctx, comm, send);
  waitUntilLent(ctx, comm, recv);
  runAndCheckAll(ctx, comm, send, recv, "registered");
  const uint64_t resolved = lending.resolvedCount();
  ctx.check(resolved > 0, "no peer's lent buffer was read");
  ctx.check(memory.opens == 2 * (ctx.nranks - 1),
            "opened " + std::to_string(memory.opens) + " peers' entries, not 2 per peer");

  // Deregistering returns once every peer has closed the entry (so the
  // caller may free it), even while the peers are busy elsewhere: rank 0
  // deregisters while the others wait for it in an AllReduce; their
  // mapping threads close it.
  const int closedBefore = closedCount(send.data());
  if (ctx.rank == 0) {
    const auto began = std::chrono::steady_clock::now();
    ctx.checkNccl(ncclCommDeregister(comm, sendHandle), "deregister send");
    ctx.check(std::chrono::steady_clock::now() - began < std::chrono::seconds(1),
              "deregistering waited for peers busy in an AllReduce");
    barrier(ctx, comm);
  } else {
    barrier(ctx, comm);
    ctx.checkNccl(ncclCommDeregister(comm, sendHandle), "deregister send");
  }
  const int peersClosed = closedCount(send.data()) - closedBefore;
  ctx.check(peersClosed == ctx.nranks - 1, "deregistering returned while " +
                                               std::to_string(ctx.nranks - 1 - peersClosed) +
                                               " peers still mapped the buffer");
  barrier(ctx, comm);
  ctx.check(memory.closes == ctx.nranks - 1,
            "closed " + std::to_string(memory.closes) + " peers' entries, not one per peer");

  // A new buffer takes an entry again (ids are new): peers map it and read it.
  std::vector<float> send2(kCount * ctx.nranks);
  memory.declare(send2.data(), send2.size() * sizeof(float));
  ctx.checkNccl(ncclCommRegister(comm, send2.data(), send2.size() * sizeof(float), &sendHandle), "register send2");
  waitUntilLent(ctx, comm, send2);
  runAndCheckAll(ctx, comm, send2, recv, "registered again");
  ctx.check(lending.resolvedCount() > resolved, "the new buffer was not lent");
  ctx.check(memory.opens == 3 * (ctx.nranks - 1), "opened " + std::to_string(memory.opens) +
                                                      " peers' entries, not 3 per peer");
  barrier(ctx, comm);

  // The old send buffer, no longer registered, is staged: still exact.
  runAndCheckAll(ctx, comm, send, recv, "deregistered");

  // A buffer that a peer has not mapped yet (its open() is held) is staged,
  // not lent: every result is still exact, and no lent buffer of rank 0 is
  // read. Then the peer maps it, and it is lent.
  std::vector<float> late(kCount * ctx.nranks);
  void* lateHandle = nullptr;
  barrier(ctx, comm);
  struct ReleaseOpens {  // also when a check fails below
    ~ReleaseOpens() { HostExport::holdOpens = false; }
  } releaseOpens;
  if (ctx.rank == 0) {
    HostExport::holdOpens = true;
    memory.declare(late.data(), late.size() * sizeof(float));
    ctx.checkNccl(ncclCommRegister(comm, late.data(), late.size() * sizeof(float), &lateHandle), "register late");
  }
  barrier(ctx, comm);
  const uint64_t before = lending.resolvedCount();
  std::vector<float> out(kCount);  // not registered: only rank 0's input may be lent
  // Only AllGather and Broadcast from rank 0 read rank 0's input alone.
  std::vector<float>& mine = ctx.rank == 0 ? late : send2;
  for (size_t i = 0; i < mine.size(); ++i) mine[i] = inputOf(ctx.rank, i);
  if (ctx.checkNccl(ncclBroadcast(mine.data(), out.data(), kCount, ncclFloat32, 0, comm, nullptr), "Broadcast of an unmapped buffer")) {
    size_t wrong = 0;
    for (size_t i = 0; i < kCount; ++i) wrong += out[i] != inputOf(0, i);
    ctx.check(wrong == 0, "Broadcast of an unmapped buffer: " + std::to_string(wrong) + " wrong");
  }
  ctx.check(ctx.rank == 0 || lending.resolvedCount() == before,
            "a buffer a peer had not mapped was lent");
  barrier(ctx, comm);
  if (ctx.rank == 0) HostExport::holdOpens = false;
  if (ctx.rank == 0) waitUntilLent(ctx, comm, late); else barrier(ctx, comm);
  if (ctx.checkNccl(ncclBroadcast(mine.data(), out.data(), kCount, ncclFloat32, 0, comm, nullptr), "Broadcast of a mapped buffer")) {
    size_t wrong = 0;
    for (size_t i = 0; i < kCount; ++i) wrong += out[i] != inputOf(0, i);
    ctx.check(wrong == 0, "Broadcast of a mapped buffer: " + std::to_string(wrong) + " wrong");
  }
  ctx.check(ctx.rank == 0 || lending.resolvedCount() > before, "a mapped buffer was not lent");
  if (lateHandle != nullptr) ctx.checkNccl(ncclCommDeregister(comm, lateHandle), "deregister late");
  barrier(ctx, comm);
  const int send2Closed = closedCount(send2.data());
  ctx.checkNccl(ncclCommDeregister(comm, sendHandle), "deregister send2");
  ctx.check(closedCount(send2.data()) - send2Closed == ctx.nranks - 1, "send2 still mapped by a peer");
  ctx.checkNccl(ncclCommDeregister(comm, recvHandle), "deregister recv");
  barrier(ctx, comm);
  comm->direct.registered = nullptr;
  ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
}

TEST(RegisteredBuffersLent, PeersMapReadAndCloseRegisteredBuffers) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "1024");
  for (int n : {2, 3}) {
    SCOPED_TRACE(std::to_string(n) + " ranks");
    auto failures = runRankThreads(n, lendRegisteredBuffers);
    EXPECT_TRUE(failures.empty()) << joinFailures(failures);
  }
}

// A registration that runs past its allocation is not lent; the buffer is
// staged and results are exact.
TEST(RegisteredBuffersLent, ARegistrationPastItsAllocationIsStaged) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "1024");
  auto failures = runRankThreads(2, [](RankContext& ctx) {
    HostExport* lender = nullptr;
    ncclComm_t comm = initLending(ctx, &lender);
    if (comm == nullptr) return;
    HostExport& memory = *lender;
    std::vector<float> send(kCount * ctx.nranks), recv(kCount * ctx.nranks);
    memory.declare(send.data(), 64);  // the "allocation" is smaller than the registration
    memory.declare(recv.data(), 64);
    void* handles[2] = {};
    ctx.checkNccl(ncclCommRegister(comm, send.data(), send.size() * sizeof(float), &handles[0]), "register");
    ctx.checkNccl(ncclCommRegister(comm, recv.data(), recv.size() * sizeof(float), &handles[1]), "register");
    barrier(ctx, comm);
    runAndCheckAll(ctx, comm, send, recv, "past its allocation");
    ctx.check(comm->lentRegistrations->resolvedCount() == 0, "a buffer past its allocation was lent");
    for (void* h : handles) ctx.checkNccl(ncclCommDeregister(comm, h), "deregister");
    comm->direct.registered = nullptr;
    ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A buffer that a peer cannot map is never lent; the owner's other buffers
// still are, and deregistering either does not wait.
TEST(RegisteredBuffersLent, ABufferAPeerCannotMapIsStagedAndOthersAreLent) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "1024");
  auto failures = runRankThreads(3, [](RankContext& ctx) {
    HostExport* lender = nullptr;
    ncclComm_t comm = initLending(ctx, &lender);
    if (comm == nullptr) return;
    HostExport& memory = *lender;
    std::vector<float> bad(kCount * ctx.nranks), good(kCount * ctx.nranks), recv(kCount * ctx.nranks);
    memory.declare(bad.data(), bad.size() * sizeof(float));
    memory.declare(good.data(), good.size() * sizeof(float));
    void* handles[2] = {};
    if (ctx.rank == 0) HostExport::refuse = reinterpret_cast<uintptr_t>(bad.data());
    barrier(ctx, comm);
    if (ctx.rank == 0) {
      ctx.checkNccl(ncclCommRegister(comm, bad.data(), bad.size() * sizeof(float), &handles[0]), "register bad");
      ctx.checkNccl(ncclCommRegister(comm, good.data(), good.size() * sizeof(float), &handles[1]), "register good");
      waitUntilLent(ctx, comm, good);
      ctx.check(comm->lentRegistrations->find(bad.data(), 64).id == 0, "a buffer peers cannot map is lent");
    } else {
      barrier(ctx, comm);
    }
    runAndCheckAll(ctx, comm, bad, recv, "a buffer peers cannot map");
    const uint64_t before = comm->lentRegistrations->resolvedCount();
    runAndCheckAll(ctx, comm, ctx.rank == 0 ? good : bad, recv, "a buffer peers map");
    ctx.check(ctx.rank == 0 || comm->lentRegistrations->resolvedCount() > before,
              "rank 0's mappable buffer was not lent");
    const auto began = std::chrono::steady_clock::now();
    for (void* h : handles)
      if (h != nullptr) ctx.checkNccl(ncclCommDeregister(comm, h), "deregister");
    ctx.check(std::chrono::steady_clock::now() - began < std::chrono::seconds(1),
              "deregistering waited for peers that could not map the buffer");
    barrier(ctx, comm);
    HostExport::refuse = 0;
    comm->direct.registered = nullptr;
    ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A rank whose peer has destroyed its communicator deregisters without
// waiting for it.
TEST(RegisteredBuffersLent, DeregisteringDoesNotWaitForAPeerThatIsGone) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "1024");
  std::atomic<bool> peerGone{false};
  auto failures = runRankThreads(2, [&peerGone](RankContext& ctx) {
    HostExport* lender = nullptr;
    ncclComm_t comm = initLending(ctx, &lender);
    if (comm == nullptr) return;
    HostExport& memory = *lender;
    std::vector<float> send(kCount * ctx.nranks);
    memory.declare(send.data(), send.size() * sizeof(float));
    void* handle = nullptr;
    ctx.checkNccl(ncclCommRegister(comm, send.data(), send.size() * sizeof(float), &handle), "register");
    waitUntilLent(ctx, comm, send);
    if (ctx.rank == 1) {
      ctx.checkNccl(ncclCommDeregister(comm, handle), "deregister");
      comm->direct.registered = nullptr;
      ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
      peerGone = true;
      return;
    }
    while (!peerGone) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto began = std::chrono::steady_clock::now();
    ctx.checkNccl(ncclCommDeregister(comm, handle), "deregister");
    ctx.check(std::chrono::steady_clock::now() - began < std::chrono::seconds(1),
              "deregistering waited for a peer whose communicator is gone");
    comm->direct.registered = nullptr;
    ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// The pid of a process that has exited and been reaped.
pid_t pidOfAGoneProcess() {
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  return child;
}

// A peer whose process died while it mapped this rank's tables never says
// it closed them: deregistering does not wait for it. Rank 1 plays that
// peer: no mapping thread, and its slot naming a process that is gone.
TEST(RegisteredBuffersLent, DeregisteringDoesNotWaitForAPeerWhoseProcessDied) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  const pid_t gone = pidOfAGoneProcess();
  std::atomic<bool> peerDied{false}, deregistered{false};
  auto failures = runRankThreads(2, [&](RankContext& ctx) {
    ncclComm_t comm = initRankComm(ctx);
    if (comm == nullptr) return;
    if (!ctx.check(comm->arena != nullptr, "the direct algorithms are not on")) {
      ncclCommDestroy(comm);
      return;
    }
    uint32_t& mapperPid = comm->arena->slot(ctx.rank).registrationMapperPid;
    if (ctx.rank == 1) {
      __atomic_store_n(&mapperPid, static_cast<uint32_t>(gone), __ATOMIC_RELEASE);
      peerDied = true;
      while (!deregistered) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      __atomic_store_n(&mapperPid, 0u, __ATOMIC_RELEASE);
      ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
      return;
    }
    HostExport& memory = lendThroughHost(ctx, comm);
    std::vector<float> send(kCount);
    memory.declare(send.data(), send.size() * sizeof(float));
    while (!peerDied) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    void* handle = nullptr;
    ctx.checkNccl(ncclCommRegister(comm, send.data(), send.size() * sizeof(float), &handle), "register");
    const auto began = std::chrono::steady_clock::now();
    ctx.checkNccl(ncclCommDeregister(comm, handle), "deregister");
    ctx.check(std::chrono::steady_clock::now() - began < std::chrono::seconds(1),
              "deregistering waited for a peer whose process is gone");
    deregistered = true;
    comm->direct.registered = nullptr;
    ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// ncclCommDestroy deregisters what is still registered: it returns once
// every peer has closed the rank's buffers (so the caller may free them),
// while those peers' communicators live on.
TEST(RegisteredBuffersLent, DestroyClosesPeersMappingsOfBuffersStillRegistered) {
  ScopedEnv host("CHORUS_DEVICE", "host");
  ScopedEnv oneShot("CHORUS_ONESHOT_BYTES", "1024");
  std::atomic<bool> ownerGone{false};
  auto failures = runRankThreads(3, [&ownerGone](RankContext& ctx) {
    HostExport* lender = nullptr;
    ncclComm_t comm = initLending(ctx, &lender);
    if (comm == nullptr) return;
    HostExport& memory = *lender;
    std::vector<float> send(kCount * ctx.nranks);
    memory.declare(send.data(), send.size() * sizeof(float));
    void* handle = nullptr;
    if (ctx.rank == 0) {
      ctx.checkNccl(ncclCommRegister(comm, send.data(), send.size() * sizeof(float), &handle), "register");
      waitUntilLent(ctx, comm, send);
      const int closedBefore = closedCount(send.data());
      const auto began = std::chrono::steady_clock::now();
      comm->direct.registered = nullptr;
      ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy with a buffer still registered");
      ctx.check(std::chrono::steady_clock::now() - began < std::chrono::seconds(1),
                "destroy waited for peers whose mapping threads run");
      const int peersClosed = closedCount(send.data()) - closedBefore;
      ctx.check(peersClosed == ctx.nranks - 1,
                "ncclCommDestroy returned while " + std::to_string(ctx.nranks - 1 - peersClosed) +
                    " peers still mapped a buffer registered on it");
      ownerGone = true;
      return;
    }
    barrier(ctx, comm);  // the one in rank 0's waitUntilLent
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!ownerGone && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ctx.check(ownerGone, "rank 0 did not destroy its communicator within 30 s");
    comm->direct.registered = nullptr;
    ctx.checkNccl(ncclCommDestroy(comm), "ncclCommDestroy");
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
