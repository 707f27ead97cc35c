#include "runtime/lent_registrations.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "common/deadline.h"
#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"
#include "runtime/comm.h"
#include "transport/fifo_host_wait.h"

namespace chorus {
namespace {

static_assert(kArenaRegistrations <= 32, "the refused entries of a table are one 32-bit mask");

// How long the mapping thread sleeps when no table changes.
constexpr int kIdleWakeMs = 2000;

// Wrap-around comparison of table generations.
bool reached(uint32_t generation, uint32_t target) {
  return static_cast<int32_t>(generation - target) >= 0;
}

}  // namespace

bool localRegistrationEnabled() { return settingInt("NCCL_LOCAL_REGISTER") != 0; }

LentRegistrations::LentRegistrations(ncclComm* comm, std::unique_ptr<ExportedMemory> memory)
    : comm_(comm),
      memory_(std::move(memory)),
      synced_(static_cast<size_t>(comm->nranks), 0),
      failedIds_(static_cast<size_t>(comm->nranks) * kArenaRegistrations, 0),
      mappings_(static_cast<size_t>(comm->nranks) * kArenaRegistrations) {
  // Said before the thread reads any table: an owner that retires an entry
  // after reading 0 here knows this rank never mapped it.
  __atomic_store_n(&comm_->arena->slot(comm_->rank).registrationMapperPid,
                   static_cast<uint32_t>(getpid()), __ATOMIC_SEQ_CST);
  mapper_ = std::thread([this] { mapLoop(); });
}

LentRegistrations::~LentRegistrations() {
  // Buffers still registered are deregistered, as ncclCommDestroy does in
  // NCCL: once it returns the caller may free them, so peers must have
  // closed them first. Their mapping threads run until their own
  // communicators go (each rank retires and waits here before it stops its
  // thread), and those already gone map nothing.
  uint32_t retired = 0;
  {
    std::lock_guard<std::mutex> lock(comm_->registrationMutex);
    for (RegisteredBuffer& buffer : comm_->registrations)
      if (const uint32_t generation = retire(&buffer)) retired = generation;
  }
  awaitRelease(retired);
  stop_.store(true);
  announceChange();  // changes the word, so a thread about to sleep does not
  mapper_.join();
  for (Mapping& mapping : mappings_)
    if (mapping.opened) memory_->close(mapping.base);
  // Owners that deregister from now on do not wait for this rank.
  __atomic_store_n(&comm_->arena->slot(comm_->rank).registrationMapperPid, 0u, __ATOMIC_RELEASE);
}

void LentRegistrations::mapLoop() {
  setLogRank(comm_->rank);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // pairs with awaitRelease's
  uint32_t* changes = comm_->arena->registrationChanges();
  while (!stop_.load()) {
    const uint32_t seen = __atomic_load_n(changes, __ATOMIC_ACQUIRE);
    syncPeers();
    // A change after `seen` was read ends the sleep at once; the timeout
    // only bounds how long a lost wake-up could delay a mapping. (Every
    // host communicator between processes has this thread, registrations
    // or not: a long timeout keeps an idle one asleep.)
    if (!stop_.load()) futexSleep(changes, seen, kIdleWakeMs);
  }
}

void LentRegistrations::announceChange() {
  __atomic_fetch_add(comm_->arena->registrationChanges(), 1u, __ATOMIC_RELEASE);
  futexWakeAll(comm_->arena->registrationChanges());
}

LentRegistrations::Export LentRegistrations::exportBuffer(const void* buffer) {
  Export exported;
  exported.ok = memory_->exportAllocation(buffer, &exported.base, &exported.bytes, exported.handle,
                                          &exported.why);
  return exported;
}

void LentRegistrations::add(RegisteredBuffer* buffer, const Export& exported) {
  ArenaRankSlot& mine = comm_->arena->slot(comm_->rank);
  int entry = 0;
  while (entry < kArenaRegistrations && mine.registrations[entry].id != 0) ++entry;
  const uintptr_t start = reinterpret_cast<uintptr_t>(buffer->buffer);
  const char* why = exported.why;
  if (entry == kArenaRegistrations)
    why = "every entry of the table is in use";
  else if (exported.ok && (start < exported.base || start - exported.base > exported.bytes ||
                           buffer->bytes > exported.bytes - (start - exported.base)))
    why = "it runs past the end of the allocation that holds it";
  else if (exported.ok)
    why = nullptr;
  if (why != nullptr) {
    INFO(kLogReg, "rank %d: registered buffer %p is staged, not lent to peers: %s", comm_->rank,
         buffer->buffer, why);
    return;
  }
  ArenaRegistration& slot = mine.registrations[entry];
  __atomic_store_n(&slot.base, static_cast<uint64_t>(exported.base), __ATOMIC_RELAXED);
  __atomic_store_n(&slot.bytes, static_cast<uint64_t>(exported.bytes), __ATOMIC_RELAXED);
  memcpy(slot.handle, exported.handle, sizeof(slot.handle));
  if (++generation_ == 0) ++generation_;  // 0 means "none"
  __atomic_store_n(&slot.id, generation_, __ATOMIC_RELEASE);
  __atomic_store_n(&mine.registrationGeneration, generation_, __ATOMIC_RELEASE);
  announceChange();
  buffer->entry = entry;
  entriesInUse_.fetch_add(1, std::memory_order_relaxed);
  buffer->id = generation_;
  buffer->allocationBase = exported.base;
  INFO(kLogReg, "rank %d: registered buffer %p lent to peers (entry %d, allocation %#llx, %zu bytes)",
       comm_->rank, buffer->buffer, entry, static_cast<unsigned long long>(exported.base),
       exported.bytes);
}

uint32_t LentRegistrations::retire(RegisteredBuffer* buffer) {
  if (buffer->entry < 0) return 0;
  ArenaRankSlot& mine = comm_->arena->slot(comm_->rank);
  __atomic_store_n(&mine.registrations[buffer->entry].id, 0u, __ATOMIC_RELAXED);
  // A peer that reads the entry's fields after this point, when it is next
  // filled, sees the cleared id again (syncEntry's check).
  __atomic_thread_fence(__ATOMIC_RELEASE);
  buffer->entry = -1;
  entriesInUse_.fetch_sub(1, std::memory_order_relaxed);
  if (++generation_ == 0) ++generation_;
  __atomic_store_n(&mine.registrationGeneration, generation_, __ATOMIC_RELEASE);
  announceChange();
  return generation_;
}

bool LentRegistrations::lendable(int entry, uint32_t id) const {
  NodeArena& arena = *comm_->arena;
  for (int peer = 0; peer < comm_->nranks; ++peer) {
    if (peer == comm_->rank) continue;
    if (__atomic_load_n(&arena.slot(peer).registrationMapperPid, __ATOMIC_ACQUIRE) == 0) return false;
    const uint32_t seen = __atomic_load_n(&arena.synced(peer)[comm_->rank], __ATOMIC_ACQUIRE);
    if (!reached(seen, id)) return false;
    // Stored before `seen`: it describes that generation or a later one.
    if ((__atomic_load_n(&arena.refused(peer)[comm_->rank], __ATOMIC_RELAXED) >> entry) & 1u)
      return false;
  }
  return true;
}

bool LentRegistrations::released(uint32_t generation) const {
  NodeArena& arena = *comm_->arena;
  for (int peer = 0; peer < comm_->nranks; ++peer) {
    if (peer == comm_->rank) continue;
    // A peer without a mapping thread (none yet, or its communicator is
    // gone), or whose process died, maps nothing of ours. Its pid is one of
    // its own pid namespace: probed only when that is ours.
    const pid_t mapper = static_cast<pid_t>(
        __atomic_load_n(&arena.slot(peer).registrationMapperPid, __ATOMIC_ACQUIRE));
    if (mapper == 0) continue;
    if (probeablePid(comm_->peers[peer], comm_->peers[comm_->rank]) != 0 && peerProcessGone(mapper))
      continue;
    if (!reached(__atomic_load_n(&arena.synced(peer)[comm_->rank], __ATOMIC_ACQUIRE), generation))
      return false;
  }
  return true;
}

void LentRegistrations::awaitRelease(uint32_t generation) {
  if (generation == 0) return;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // the retirement before the peers' flags
  const Deadline deadline = Deadline::after(kReleaseSeconds);
  while (!released(generation)) {
    if (comm_->abortFlag.load()) {
      WARN("rank %d: communicator aborted: not waiting for peers to close its deregistered "
           "buffers; freeing them now is not safe for a peer that still maps them", comm_->rank);
      return;
    }
    if (deadline.expired()) {
      WARN("rank %d: a peer still maps a deregistered buffer after %.0f s (is its process "
           "gone, or its GPU busy?); freeing the buffer now is not safe for that peer",
           comm_->rank, kReleaseSeconds);
      return;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

void LentRegistrations::syncPeers() {
  NodeArena& arena = *comm_->arena;
  for (int peer = 0; peer < comm_->nranks; ++peer) {
    if (peer == comm_->rank) continue;
    const uint32_t generation =
        __atomic_load_n(&arena.slot(peer).registrationGeneration, __ATOMIC_ACQUIRE);
    if (generation == synced_[peer]) continue;
    uint32_t refused = 0;
    for (int entry = 0; entry < kArenaRegistrations; ++entry)
      if (!syncEntry(peer, entry)) refused |= 1u << entry;
    // Entries that changed after `generation` was read may be mapped or
    // not: they carry later ids, which the owner does not lend on this word.
    __atomic_store_n(&arena.refused(comm_->rank)[peer], refused, __ATOMIC_RELAXED);
    synced_[peer] = generation;
    __atomic_store_n(&arena.synced(comm_->rank)[peer], generation, __ATOMIC_RELEASE);
  }
}

bool LentRegistrations::syncEntry(int peer, int index) {
  const ArenaRegistration& entry = comm_->arena->slot(peer).registrations[index];
  const size_t at = static_cast<size_t>(peer) * kArenaRegistrations + index;
  Mapping& mapping = mappings_[at];
  const uint32_t id = __atomic_load_n(&entry.id, __ATOMIC_ACQUIRE);
  if (id == mapping.id) return true;
  if (id != 0 && id == failedIds_[at]) return false;  // failed already: not tried again
  Mapping old;
  {
    std::lock_guard<std::mutex> lock(mappingsMutex_);
    old = mapping;
    mapping = Mapping{};
  }
  if (old.opened) memory_->close(old.base);
  if (id == 0) return true;
  Mapping fresh;
  const uint64_t base = __atomic_load_n(&entry.base, __ATOMIC_RELAXED);
  fresh.bytes = __atomic_load_n(&entry.bytes, __ATOMIC_RELAXED);
  unsigned char handle[kArenaHandleBytes];
  memcpy(handle, entry.handle, sizeof(handle));
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  // Changed while we read it: the fields may be torn. It has a later id now,
  // which the generation read before does not cover; the next sync maps it.
  if (__atomic_load_n(&entry.id, __ATOMIC_RELAXED) != id) return true;
  if (sameProcess(comm_->peers[peer], comm_->peers[comm_->rank])) {
    // A handle does not open in the process that made it; the pointer is
    // good as it is (device communicators enabled peer access at init).
    fresh.base = reinterpret_cast<char*>(base);
  } else if (memory_->open(handle, &fresh.base) == ncclSuccess) {
    fresh.opened = true;
  } else {
    failedIds_[at] = id;
    WARN("rank %d: cannot map a buffer rank %d registered (%s); it stays staged", comm_->rank,
         peer, lastError().c_str());
    return false;
  }
  fresh.id = id;
  std::lock_guard<std::mutex> lock(mappingsMutex_);
  mapping = fresh;
  return true;
}

ArenaBufferRef LentRegistrations::find(const void* buffer, size_t bytes) {
  // A registration made on another thread while this operation runs may be
  // missed: the operation then stages, which is correct either way.
  if (entriesInUse_.load(std::memory_order_relaxed) == 0) return ArenaBufferRef{};
  const uintptr_t begin = reinterpret_cast<uintptr_t>(buffer);
  std::lock_guard<std::mutex> lock(comm_->registrationMutex);
  for (const RegisteredBuffer& r : comm_->registrations) {
    const uintptr_t start = reinterpret_cast<uintptr_t>(r.buffer);
    if (r.entry < 0 || begin < start || begin - start > r.bytes || bytes > r.bytes - (begin - start))
      continue;
    // Lent only once every peer has mapped it (another registration that
    // holds it may be), and while its allocation lives (freed without
    // deregistering, its address may hold another: the kernel reaches that
    // one, peers' mappings the old).
    if (!lendable(r.entry, r.id) ||
        !memory_->stillExported(r.allocationBase,
                                comm_->arena->slot(comm_->rank).registrations[r.entry].handle))
      continue;
    return ArenaBufferRef{static_cast<uint32_t>(r.entry), r.id, begin - r.allocationBase};
  }
  return ArenaBufferRef{};
}

ncclResult_t LentRegistrations::resolve(int peer, const ArenaBufferRef& ref,
                                          const char** start) {
  if (peer < 0 || peer >= comm_->nranks || ref.entry >= static_cast<uint32_t>(kArenaRegistrations))
    CHORUS_FAIL(ncclInternalError, "rank %d: rank %d lends entry %u of its registrations, which "
                "does not exist", comm_->rank, peer, ref.entry);
  Mapping mapping;
  {
    std::lock_guard<std::mutex> lock(mappingsMutex_);
    mapping = mappings_[static_cast<size_t>(peer) * kArenaRegistrations + ref.entry];
  }
  if (mapping.id != ref.id)
    CHORUS_FAIL(ncclInvalidUsage,
                "rank %d: rank %d lends a registered buffer that this rank does not map (was it "
                "deregistered while an operation used it?)", comm_->rank, peer);
  if (ref.offset >= mapping.bytes)
    CHORUS_FAIL(ncclInternalError, "rank %d: rank %d lends offset %llu of a %llu-byte allocation",
                comm_->rank, peer, static_cast<unsigned long long>(ref.offset),
                static_cast<unsigned long long>(mapping.bytes));
  resolved_.fetch_add(1, std::memory_order_relaxed);
  *start = mapping.base + ref.offset;
  return ncclSuccess;
}

}  // namespace chorus

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime.h>
#include <dlfcn.h>

#include "runtime/cuda_capture_mode.h"
#include "runtime/cuda_check.h"
#include "runtime/device.h"

namespace chorus {
namespace {

static_assert(sizeof(cudaIpcMemHandle_t) <= kArenaHandleBytes, "an IPC handle fits an entry");

// cuMemGetAddressRange from the driver: the runtime API has no call that
// gives the allocation holding a pointer, and the library does not link
// libcuda (it must load on machines without a driver). Null when the
// driver does not have it.
using AddressRangeFn = int (*)(unsigned long long* base, size_t* bytes, unsigned long long ptr);
AddressRangeFn addressRangeFn() {
  static const AddressRangeFn fn = [] {
    void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    return driver == nullptr
               ? nullptr
               : reinterpret_cast<AddressRangeFn>(dlsym(driver, "cuMemGetAddressRange_v2"));
  }();
  return fn;
}

// Every call relaxes graph capture (it may run while the caller captures)
// and makes the communicator's device current.
class CudaIpcMemory final : public ExportedMemory {
 public:
  CudaIpcMemory(int device, int rank) : device_(device), rank_(rank) {}

  bool exportAllocation(const void* buffer, uintptr_t* base, size_t* bytes,
                        unsigned char (&handle)[kArenaHandleBytes], const char** why) override {
    RelaxedCaptureMode relaxed;
    DeviceGuard onDevice(device_);
    AddressRangeFn range = addressRangeFn();
    unsigned long long start = 0;
    cudaIpcMemHandle_t ipc{};
    if (range == nullptr) {
      *why = "the CUDA driver has no cuMemGetAddressRange";
    } else if (range(&start, bytes, reinterpret_cast<unsigned long long>(buffer)) != 0) {
      *why = "cuMemGetAddressRange failed";
    } else if (cudaIpcGetMemHandle(&ipc, reinterpret_cast<void*>(start)) != cudaSuccess) {
      cudaGetLastError();
      *why = "its memory has no CUDA IPC handle (not from cudaMalloc?)";
    } else {
      *base = static_cast<uintptr_t>(start);
      memcpy(handle, &ipc, sizeof(ipc));
      return true;
    }
    return false;
  }

  ncclResult_t open(const unsigned char (&handle)[kArenaHandleBytes], char** mapped) override {
    RelaxedCaptureMode relaxed;
    DeviceGuard onDevice(device_);
    CHORUS_CHECK(onDevice.result());
    cudaIpcMemHandle_t ipc;
    memcpy(&ipc, handle, sizeof(ipc));
    void* pointer = nullptr;
    CHORUS_CHECK(cudaCheck(cudaIpcOpenMemHandle(&pointer, ipc, cudaIpcMemLazyEnablePeerAccess),
                           "cudaIpcOpenMemHandle of a peer's registered buffer", rank_));
    *mapped = static_cast<char*>(pointer);
    return ncclSuccess;
  }

  void close(char* mapped) override {
    RelaxedCaptureMode relaxed;
    DeviceGuard onDevice(device_);
    cudaIpcCloseMemHandle(mapped);
    cudaGetLastError();  // nothing to report it to
  }

 private:
  int device_, rank_;
};

}  // namespace

std::unique_ptr<ExportedMemory> cudaIpcMemory(int device, int rank) {
  return std::make_unique<CudaIpcMemory>(device, rank);
}

}  // namespace chorus

#else  // !CHORUS_HAVE_CUDA

namespace chorus {

std::unique_ptr<ExportedMemory> cudaIpcMemory(int, int) { return nullptr; }

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
