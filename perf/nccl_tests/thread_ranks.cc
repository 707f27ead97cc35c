#include "thread_ranks.h"

#include <sched.h>

#include <chrono>
#include <cstring>
#include <thread>

namespace perf {

namespace {

constexpr size_t kRecordMax = 256;  // largest exchange() record

using Clock = std::chrono::steady_clock;

}  // namespace

ThreadRanks::ThreadRanks(const World& world, const Options& options, int thread)
    : world_(world), options_(options), thread_(thread), nonBlocking_(options.timeoutSec > 0) {}

ThreadRanks::~ThreadRanks() {
  for (Slot& s : slots_) {
    for (void* handle : {s.sendHandle, s.recvHandle}) {
      if (handle == nullptr) continue;
      ncclResult_t r = ncclCommDeregister(s.comm, handle);
      if (r != ncclSuccess)
        printError("rank %d: ncclCommDeregister failed: %s (%s)", s.rank, ncclGetErrorString(r),
                   ncclGetLastError(s.comm));
    }
    if (s.memory) {
      s.memory->release(s.send);
      s.memory->release(s.recv);
      s.memory->release(s.ctlSend);
      s.memory->release(s.ctlRecv);
    }
    if (s.comm != nullptr) {
      ncclResult_t r = ncclCommDestroy(s.comm);
      if (r != ncclSuccess)
        printError("rank %d: ncclCommDestroy failed: %s (%s)", s.rank, ncclGetErrorString(r),
                   ncclGetLastError(nullptr));
    }
  }
}

void ThreadRanks::fail(int code, const std::string& message) {
  printError("%s", message.c_str());
  die(code);
}

void ThreadRanks::check(ncclResult_t result, const char* what, ncclComm_t comm) {
  if (result == ncclSuccess || (result == ncclInProgress && nonBlocking_)) return;
  std::string who = "thread " + std::to_string(thread_);
  for (const Slot& s : slots_)
    if (comm != nullptr && s.comm == comm) who = "rank " + std::to_string(s.rank);
  fail(kExitNccl, who + ": " + what + " failed: " + ncclGetErrorString(result) + " (" +
                      ncclGetLastError(comm) + ")");
}

void ThreadRanks::checkMemory(bool ok, const std::string& error) {
  if (!ok) fail(kExitCuda, "thread " + std::to_string(thread_) + ": " + error);
}

void ThreadRanks::init() {
  const int devices = cudaDevices();
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  if (nonBlocking_) config.blocking = 0;
  slots_.resize(static_cast<size_t>(world_.nGpus));
  // Like nccl-tests, ranks of one host take consecutive GPUs; Chorus lets
  // several ranks share one, so the index wraps around the device count.
  groupStart();
  for (int k = 0; k < world_.nGpus; ++k) {
    Slot& s = slots_[k];
    s.rank = world_.rankOf(thread_, k);
    if (devices > 0) {
      const int device = (world_.localRank * world_.nThreads * world_.nGpus + thread_ * world_.nGpus + k) % devices;
      std::string error;
      checkMemory(selectDevice(device, &error), error);
    }
    ncclResult_t r = ncclCommInitRankConfig(&s.comm, world_.nranks(), world_.id, s.rank, &config);
    check(r, "ncclCommInitRankConfig", s.comm);
  }
  groupEnd("ncclCommInitRankConfig");
  for (Slot& s : slots_) {
    ncclResult_t state = ncclInProgress;
    while (state == ncclInProgress) {  // non-blocking init; CHORUS_TIMEOUT bounds it
      check(ncclCommGetAsyncError(s.comm, &state), "ncclCommGetAsyncError", s.comm);
      if (state == ncclInProgress) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    check(state, "communicator initialisation", s.comm);
  }
  ctlBytes_ = kRecordMax * static_cast<size_t>(world_.nranks());
  for (Slot& s : slots_) {
    int device = -1;
    check(ncclCommCuDevice(s.comm, &device), "ncclCommCuDevice", s.comm);
    s.memory.reset(new Memory(device >= 0 && devices > 0 ? device : -1, options_.localRegister));
    std::string error;
    checkMemory(s.memory->init(&error), error);
    checkMemory(s.memory->alloc(options_.maxBytes, &s.send, &error), error);
    checkMemory(s.memory->alloc(options_.maxBytes, &s.recv, &error), error);
    checkMemory(s.memory->alloc(ctlBytes_, &s.ctlSend, &error), error);
    checkMemory(s.memory->alloc(ctlBytes_, &s.ctlRecv, &error), error);
    if (options_.localRegister) {
      check(ncclCommRegister(s.comm, s.send, options_.maxBytes, &s.sendHandle), "ncclCommRegister",
            s.comm);
      check(ncclCommRegister(s.comm, s.recv, options_.maxBytes, &s.recvHandle), "ncclCommRegister",
            s.comm);
    }
  }
}

void ThreadRanks::groupStart() {
  ncclResult_t r = ncclGroupStart();
  if (r != ncclSuccess)
    fail(kExitNccl, std::string("ncclGroupStart failed: ") + ncclGetErrorString(r));
}

void ThreadRanks::groupEnd(const char* what) {
  ncclResult_t r = ncclGroupEnd();
  if (r == ncclSuccess || (r == ncclInProgress && nonBlocking_)) return;
  std::string ranks;
  for (const Slot& s : slots_) ranks += (ranks.empty() ? "" : ",") + std::to_string(s.rank);
  fail(kExitNccl, "rank " + ranks + ": " + what + " failed at ncclGroupEnd: " + ncclGetErrorString(r) +
                      " (" + ncclGetLastError(nullptr) + ")");
}

void ThreadRanks::issue(const char* what, const std::function<ncclResult_t(Slot&)>& fn, bool group) {
  const bool grouped = group || slots_.size() > 1;
  if (grouped) groupStart();
  for (Slot& s : slots_) check(fn(s), what, s.comm);
  if (grouped) groupEnd(what);
}

void ThreadRanks::abortAll() {
  for (Slot& s : slots_) {
    if (s.comm == nullptr) continue;
    ncclCommAbort(s.comm);
    s.comm = nullptr;
  }
}

void ThreadRanks::finish(const char* what) {
  bool anyDevice = false;
  for (const Slot& s : slots_) anyDevice |= s.memory && s.memory->onDevice();
  if (!nonBlocking_ && !anyDevice) return;  // host, blocking: done when the call returned
  std::string error;
  if (options_.timeoutSec == 0) {
    for (Slot& s : slots_) {
      checkMemory(s.memory->synchronize(&error), error);
      ncclResult_t state = ncclSuccess;
      check(ncclCommGetAsyncError(s.comm, &state), "ncclCommGetAsyncError", s.comm);
      check(state, what, s.comm);
    }
    return;
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(options_.timeoutSec);
  for (Slot& s : slots_) {
    for (int spins = 0;; ++spins) {
      const int streamDone = s.memory->query(&error);
      checkMemory(streamDone >= 0, error);
      ncclResult_t state = ncclSuccess;
      check(ncclCommGetAsyncError(s.comm, &state), "ncclCommGetAsyncError", s.comm);
      if (state != ncclInProgress) {
        if (state != ncclSuccess) {
          const std::string text = std::string(ncclGetErrorString(state)) + " (" +
                                   ncclGetLastError(s.comm) + ")";
          abortAll();
          fail(kExitNccl, "rank " + std::to_string(s.rank) + ": " + what + " failed: " + text);
        }
        if (streamDone == 1) break;
      }
      if (Clock::now() > deadline) {
        printError("rank %d: %s did not finish within %d s (-T); aborting the communicators",
                   s.rank, what, options_.timeoutSec);
        abortAll();
        die(kExitTimeout);
      }
      if (spins < 1000)
        sched_yield();
      else
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

void ThreadRanks::exchange(const std::vector<std::string>& mine, size_t recordBytes,
                           std::vector<char>* all) {
  const size_t nranks = static_cast<size_t>(world_.nranks());
  if (recordBytes == 0 || recordBytes > kRecordMax || mine.size() != slots_.size())
    fail(kExitUsage, "internal error: bad exchange() record");
  std::string error;
  for (size_t k = 0; k < slots_.size(); ++k) {
    std::string record = mine[k];
    record.resize(recordBytes, '\0');
    checkMemory(slots_[k].memory->upload(slots_[k].ctlSend, record.data(), recordBytes, &error), error);
  }
  issue("control ncclAllGather", [&](Slot& s) {
    return ncclAllGather(s.ctlSend, s.ctlRecv, recordBytes, ncclUint8, s.comm, s.memory->stream());
  });
  finish("control ncclAllGather");
  all->assign(nranks * recordBytes, '\0');
  checkMemory(slots_[0].memory->download(all->data(), slots_[0].ctlRecv, all->size(), &error), error);
}

void ThreadRanks::barrier() {
  std::vector<char> all;
  exchange(std::vector<std::string>(slots_.size(), std::string(1, '\0')), 1, &all);
}

}  // namespace perf
