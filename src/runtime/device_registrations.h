// Zero-copy for buffers registered with ncclCommRegister on device
// communicators whose ranks map each other's GPU memory (the direct
// algorithms between processes, see collectives/direct_primitives.h).
//
// Registering a buffer writes an entry in this rank's table in the node
// arena: the base and size of the cudaMalloc allocation that holds it and
// its CUDA IPC handle. An operation whose input or output lies in a
// registered buffer names that entry in its line instead of staging a copy;
// a peer maps the entry the first time it reads it (cudaIpcOpenMemHandle,
// or the pointer as it is for a peer of this process) and keeps the mapping
// until the entry changes or the communicator ends.
//
// Built only with CUDA; NCCL_LOCAL_REGISTER=0 turns it off.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "collectives/direct_primitives.h"
#include "nccl.h"

struct ncclComm;

namespace chorus {

struct RegisteredBuffer;

class DeviceRegistrations final : public RegisteredBuffers {
 public:
  explicit DeviceRegistrations(ncclComm* comm);
  ~DeviceRegistrations() override;  // closes the mappings of peers' entries
  DeviceRegistrations(const DeviceRegistrations&) = delete;
  DeviceRegistrations& operator=(const DeviceRegistrations&) = delete;

  // ncclCommRegister (under comm->registrationMutex): gives `buffer` an
  // entry of this rank's table. A buffer that cannot be lent (a full table,
  // memory without an IPC handle) gets none and is staged as before.
  void add(RegisteredBuffer* buffer);
  // ncclCommDeregister (under comm->registrationMutex): frees its entry.
  void remove(RegisteredBuffer* buffer);

  ArenaBufferRef find(const void* buffer, size_t bytes) override;
  ncclResult_t resolve(int peer, const ArenaBufferRef& ref, const char** start) override;

 private:
  // A peer's entry as this process reaches it.
  struct Mapping {
    uint32_t id = 0;  // the entry's id when mapped; 0: not mapped
    char* base = nullptr;
    uint64_t bytes = 0;
    bool opened = false;  // by cudaIpcOpenMemHandle (closed when replaced)
  };
  void unmap(Mapping* mapping);

  ncclComm* comm_;
  uint32_t nextId_ = 1;
  std::vector<Mapping> mappings_;  // [peer * kArenaRegistrations + entry]
};

// Whether ncclCommRegister lends device buffers to peers (NCCL_LOCAL_REGISTER).
bool localRegistrationEnabled();

}  // namespace chorus
