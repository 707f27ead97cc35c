// Which device a communicator is bound to. Chorus runs on the host when the
// build has no CUDA, when no CUDA device is usable (no driver, no GPU), or
// when CHORUS_DEVICE=host; otherwise on the calling thread's current device.
#pragma once

#include "nccl.h"

namespace chorus {

// -1 for the host, else the CUDA device to bind a new communicator to.
int deviceForNewComm();
// Number of usable CUDA devices (0 without CUDA).
int cudaDeviceCount();
// Makes `device` current on this thread (no-op for -1).
ncclResult_t useDevice(int device);
// Makes `device` current for the lifetime of the guard, then restores the
// caller's current device (no-op for -1 or without CUDA).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ncclResult_t result() const { return result_; }

 private:
  int previous_ = -1;
  ncclResult_t result_ = ncclSuccess;
};

// A buffer of a communicator bound to `device` must be memory that device
// reaches: its own device memory, managed memory, or mapped pinned host
// memory. Anything else (plain host memory, another device's memory) is
// ncclInvalidArgument naming `caller` and the argument `name`.
ncclResult_t checkDeviceBuffer(int device, const void* buffer, const char* caller,
                               const char* name);

}  // namespace chorus
