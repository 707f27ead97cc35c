#include "runtime/device_registrations.h"

#include "common/settings.h"

namespace chorus {

bool localRegistrationEnabled() { return settingInt("NCCL_LOCAL_REGISTER") != 0; }

}  // namespace chorus

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstring>
#include <mutex>

#include "common/log.h"
#include "common/result.h"
#include "runtime/comm.h"
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

bool sameProcess(const PeerInfo& a, const PeerInfo& b) {
  return a.hostHash == b.hostHash && a.pid == b.pid;
}

}  // namespace

DeviceRegistrations::DeviceRegistrations(ncclComm* comm)
    : comm_(comm), mappings_(static_cast<size_t>(comm->nranks) * kArenaRegistrations) {}

DeviceRegistrations::~DeviceRegistrations() {
  // Errors are ignored: the communicator is going away.
  DeviceGuard onDevice(comm_->cudaDev);
  for (Mapping& mapping : mappings_) unmap(&mapping);
  cudaGetLastError();
}

void DeviceRegistrations::unmap(Mapping* mapping) {
  if (mapping->opened) cudaIpcCloseMemHandle(mapping->base);
  *mapping = Mapping{};
}

void DeviceRegistrations::add(RegisteredBuffer* buffer) {
  ArenaRankSlot& mine = comm_->arena->slot(comm_->rank);
  int entry = 0;
  while (entry < kArenaRegistrations && mine.registrations[entry].id != 0) ++entry;
  AddressRangeFn range = addressRangeFn();
  unsigned long long base = 0;
  size_t bytes = 0;
  cudaIpcMemHandle_t handle{};
  DeviceGuard onDevice(comm_->cudaDev);
  const char* why = nullptr;
  if (entry == kArenaRegistrations)
    why = "every entry of the table is in use";
  else if (range == nullptr)
    why = "the CUDA driver has no cuMemGetAddressRange";
  else if (range(&base, &bytes, reinterpret_cast<unsigned long long>(buffer->buffer)) != 0)
    why = "cuMemGetAddressRange failed";
  else if (cudaIpcGetMemHandle(&handle, reinterpret_cast<void*>(base)) != cudaSuccess)
    why = "its memory has no CUDA IPC handle (not from cudaMalloc?)";
  if (why != nullptr) {
    cudaGetLastError();
    INFO(kLogReg, "rank %d: registered buffer %p is staged, not lent to peers: %s", comm_->rank,
         buffer->buffer, why);
    return;
  }
  ArenaRegistration& slot = mine.registrations[entry];
  slot.base = base;
  slot.bytes = bytes;
  memcpy(slot.handle, &handle, sizeof(handle));
  const uint32_t id = nextId_++;
  if (nextId_ == 0) nextId_ = 1;  // 0 means "none"
  __atomic_store_n(&slot.id, id, __ATOMIC_RELEASE);
  buffer->entry = entry;
  buffer->id = id;
  buffer->allocationBase = base;
  INFO(kLogReg, "rank %d: registered buffer %p lent to peers (entry %d, allocation %#llx, %zu bytes)",
       comm_->rank, buffer->buffer, entry, base, bytes);
}

void DeviceRegistrations::remove(RegisteredBuffer* buffer) {
  if (buffer->entry < 0) return;
  ArenaRegistration& slot = comm_->arena->slot(comm_->rank).registrations[buffer->entry];
  __atomic_store_n(&slot.id, 0u, __ATOMIC_RELEASE);
  buffer->entry = -1;
}

ArenaBufferRef DeviceRegistrations::find(const void* buffer, size_t bytes) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(buffer);
  std::lock_guard<std::mutex> lock(comm_->registrationMutex);
  for (const RegisteredBuffer& r : comm_->registrations) {
    const uintptr_t start = reinterpret_cast<uintptr_t>(r.buffer);
    if (r.entry < 0 || begin < start || begin - start > r.bytes || bytes > r.bytes - (begin - start))
      continue;
    return ArenaBufferRef{static_cast<uint32_t>(r.entry), r.id, begin - r.allocationBase};
  }
  return ArenaBufferRef{};
}

ncclResult_t DeviceRegistrations::resolve(int peer, const ArenaBufferRef& ref,
                                          const char** start) {
  if (peer < 0 || peer >= comm_->nranks || ref.entry >= static_cast<uint32_t>(kArenaRegistrations))
    CHORUS_FAIL(ncclInternalError, "rank %d: rank %d lends entry %u of its registrations, which "
                "does not exist", comm_->rank, peer, ref.entry);
  Mapping& mapping = mappings_[static_cast<size_t>(peer) * kArenaRegistrations + ref.entry];
  if (mapping.id != ref.id) {
    const ArenaRegistration& entry = comm_->arena->slot(peer).registrations[ref.entry];
    if (__atomic_load_n(&entry.id, __ATOMIC_ACQUIRE) != ref.id)
      CHORUS_FAIL(ncclInvalidUsage,
                  "rank %d: rank %d deregistered a buffer that an operation in flight reads; "
                  "deregister only after the operations on it have completed", comm_->rank, peer);
    DeviceGuard onDevice(comm_->cudaDev);
    CHORUS_CHECK(onDevice.result());
    unmap(&mapping);
    if (sameProcess(comm_->peers[peer], comm_->peers[comm_->rank])) {
      // CUDA does not open a handle in the process that made it; the
      // pointer is good as it is (peer access was enabled at init).
      mapping.base = reinterpret_cast<char*>(entry.base);
    } else {
      cudaIpcMemHandle_t handle;
      memcpy(&handle, entry.handle, sizeof(handle));
      void* mapped = nullptr;
      CHORUS_CHECK(cudaCheck(cudaIpcOpenMemHandle(&mapped, handle, cudaIpcMemLazyEnablePeerAccess),
                             "cudaIpcOpenMemHandle of a peer's registered buffer", comm_->rank));
      mapping.base = static_cast<char*>(mapped);
      mapping.opened = true;
    }
    mapping.bytes = entry.bytes;
    mapping.id = ref.id;
  }
  if (ref.offset >= mapping.bytes)
    CHORUS_FAIL(ncclInternalError, "rank %d: rank %d lends offset %llu of a %llu-byte allocation",
                comm_->rank, peer, static_cast<unsigned long long>(ref.offset),
                static_cast<unsigned long long>(mapping.bytes));
  *start = mapping.base + ref.offset;
  return ncclSuccess;
}

}  // namespace chorus

#else  // !CHORUS_HAVE_CUDA: no device communicator exists, nothing is ever registered

namespace chorus {

DeviceRegistrations::DeviceRegistrations(ncclComm* comm) : comm_(comm) {}
DeviceRegistrations::~DeviceRegistrations() = default;
void DeviceRegistrations::add(RegisteredBuffer*) {}
void DeviceRegistrations::remove(RegisteredBuffer*) {}
ArenaBufferRef DeviceRegistrations::find(const void*, size_t) { return ArenaBufferRef{}; }
ncclResult_t DeviceRegistrations::resolve(int, const ArenaBufferRef&, const char**) {
  return ncclInternalError;
}
void DeviceRegistrations::unmap(Mapping*) {}

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
