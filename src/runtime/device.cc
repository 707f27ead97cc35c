#include "runtime/device.h"

#include <string>

#include "common/result.h"
#include "common/settings.h"

#ifdef CHORUS_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace chorus {

int cudaDeviceCount() {
#ifdef CHORUS_HAVE_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
#else
  return 0;
#endif
}

int deviceForNewComm() {
  if (settingString("CHORUS_DEVICE") == "host") return -1;
#ifdef CHORUS_HAVE_CUDA
  if (cudaDeviceCount() == 0) return -1;
  int device = -1;
  if (cudaGetDevice(&device) != cudaSuccess) return -1;
  return device;
#else
  return -1;
#endif
}

ncclResult_t useDevice(int device) {
  if (device < 0) return ncclSuccess;
#ifdef CHORUS_HAVE_CUDA
  cudaError_t err = cudaSetDevice(device);
  if (err != cudaSuccess)
    CHORUS_FAIL(ncclUnhandledCudaError, "cudaSetDevice(%d) failed: %s", device,
                cudaGetErrorString(err));
  return ncclSuccess;
#else
  CHORUS_FAIL(ncclInvalidUsage, "device %d requested but Chorus was built without CUDA", device);
#endif
}

DeviceGuard::DeviceGuard(int device) {
  if (device < 0) return;
#ifdef CHORUS_HAVE_CUDA
  if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
  if (previous_ != device) result_ = useDevice(device);
  else previous_ = -1;  // nothing to restore
#else
  result_ = useDevice(device);
#endif
}

DeviceGuard::~DeviceGuard() {
#ifdef CHORUS_HAVE_CUDA
  if (previous_ >= 0) cudaSetDevice(previous_);
#endif
}

ncclResult_t checkDeviceBuffer(int device, const void* buffer, const char* caller,
                               const char* name) {
#ifdef CHORUS_HAVE_CUDA
  cudaPointerAttributes attributes{};
  const cudaError_t err = cudaPointerGetAttributes(&attributes, buffer);
  if (err != cudaSuccess) {
    cudaGetLastError();
    CHORUS_FAIL(ncclInvalidArgument, "%s: %s %p is not memory CUDA knows (%s)", caller, name,
                buffer, cudaGetErrorString(err));
  }
  switch (attributes.type) {
    case cudaMemoryTypeManaged:
      return ncclSuccess;
    case cudaMemoryTypeDevice:
      if (attributes.device == device) return ncclSuccess;
      CHORUS_FAIL(ncclInvalidArgument,
                  "%s: %s %p is memory of CUDA device %d, but the communicator is on device %d",
                  caller, name, buffer, attributes.device, device);
    case cudaMemoryTypeHost:
      if (attributes.devicePointer != nullptr) return ncclSuccess;
      break;
    default:
      break;
  }
  CHORUS_FAIL(ncclInvalidArgument,
              "%s: %s %p is host memory; a communicator on CUDA device %d takes device buffers "
              "(cudaMalloc, ncclMemAlloc) or mapped pinned memory",
              caller, name, buffer, device);
#else
  (void)buffer;
  CHORUS_FAIL(ncclInvalidUsage, "%s: %s: device %d requested but Chorus was built without CUDA",
              caller, name, device);
#endif
}

}  // namespace chorus
