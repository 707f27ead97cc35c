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

}  // namespace chorus
