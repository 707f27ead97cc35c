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

}  // namespace chorus
