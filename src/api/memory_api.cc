// Memory for communication buffers (ncclMemAlloc/ncclMemFree) and buffer
// registration (ncclCommRegister/ncclCommDeregister).
//
// ncclMemAlloc gives memory that a communicator created now on this thread
// takes: GPU memory of the current device (cudaMalloc) when communicators
// bind to a device, else a page-aligned host block that other processes may
// map (runtime/host_blocks.h), so programs written for GPUs run unchanged
// on the host path. Registration records the buffer and checks that the
// communicator reaches it; where peers in other processes can map it (GPU
// memory between GPUs that map each other's, a host block) it also lends
// the buffer to them, and they read and write it in place instead of
// through a staged copy or the kernel (runtime/lent_registrations.h;
// ranks of one process reach each other's buffers in place anyway).
#include <cstdint>
#include <mutex>

#include "api/api_export.h"
#include "common/result.h"
#include "runtime/comm.h"
#include "runtime/device.h"
#include "runtime/host_blocks.h"

#ifdef CHORUS_HAVE_CUDA
#include <cuda_runtime.h>
#endif

using namespace chorus;

NCCL_API(ncclResult_t, ncclMemAlloc, void** ptr, size_t size) {
  if (ptr == nullptr) CHORUS_FAIL(ncclInvalidArgument, "ncclMemAlloc: ptr is NULL");
  *ptr = nullptr;
  if (size == 0) return ncclSuccess;
#ifdef CHORUS_HAVE_CUDA
  if (deviceForNewComm() >= 0) {
    const cudaError_t err = cudaMalloc(ptr, size);
    if (err != cudaSuccess)
      CHORUS_FAIL(err == cudaErrorMemoryAllocation ? ncclSystemError : ncclUnhandledCudaError,
                  "ncclMemAlloc: cudaMalloc of %zu bytes failed: %s", size,
                  cudaGetErrorString(err));
    return ncclSuccess;
  }
#endif
  void* block = allocateHostBlock(size);
  if (block == nullptr)
    CHORUS_FAIL(ncclSystemError, "ncclMemAlloc: out of host memory allocating %zu bytes", size);
  *ptr = block;
  return ncclSuccess;
}

NCCL_API(ncclResult_t, ncclMemFree, void* ptr) {
  if (ptr == nullptr) return ncclSuccess;
  if (freeHostBlock(ptr)) return ncclSuccess;
#ifdef CHORUS_HAVE_CUDA
  const cudaError_t err = cudaFree(ptr);
  if (err == cudaSuccess) return ncclSuccess;
  cudaGetLastError();
  // cudaFree's reason only where a device could have given the block (without
  // one it says the driver is missing, which misleads).
  if (deviceForNewComm() < 0)
    CHORUS_FAIL(ncclInvalidArgument, "ncclMemFree: %p was not allocated by ncclMemAlloc", ptr);
  CHORUS_FAIL(ncclInvalidArgument, "ncclMemFree: %p was not allocated by ncclMemAlloc (%s)", ptr,
              cudaGetErrorString(err));
#else
  CHORUS_FAIL(ncclInvalidArgument, "ncclMemFree: %p was not allocated by ncclMemAlloc", ptr);
#endif
}

NCCL_API(ncclResult_t, ncclCommRegister, const ncclComm_t comm, void* buff, size_t size,
         void** handle) {
  const char* caller = "ncclCommRegister";
  CHORUS_CHECK(checkComm(comm, caller));
  if (handle == nullptr) CHORUS_FAIL(ncclInvalidArgument, "%s: handle is NULL", caller);
  *handle = nullptr;
  if (buff == nullptr) CHORUS_FAIL(ncclInvalidArgument, "%s: buff is NULL", caller);
  // A registration names a range that can exist (an empty one is kept).
  if (size > static_cast<size_t>(PTRDIFF_MAX) ||
      reinterpret_cast<uintptr_t>(buff) > UINTPTR_MAX - size)
    CHORUS_FAIL(ncclInvalidArgument, "%s: size %zu at %p is not a buffer", caller, size, buff);
  if (!comm->onHost()) CHORUS_CHECK(checkDeviceBuffer(comm->cudaDev, buff, caller, "buff"));
  // Its CUDA calls outside the lock, which the proxy takes.
  LentRegistrations::Export exported;
  if (comm->lentRegistrations) exported = comm->lentRegistrations->exportBuffer(buff);
  std::lock_guard<std::mutex> lock(comm->registrationMutex);
  comm->registrations.push_back(RegisteredBuffer{buff, size});
  if (comm->lentRegistrations) comm->lentRegistrations->add(&comm->registrations.back(), exported);
  *handle = &comm->registrations.back();
  return ncclSuccess;
}

NCCL_API(ncclResult_t, ncclCommDeregister, const ncclComm_t comm, void* handle) {
  const char* caller = "ncclCommDeregister";
  CHORUS_CHECK(checkComm(comm, caller));
  uint32_t retired = 0;
  {
    std::lock_guard<std::mutex> lock(comm->registrationMutex);
    auto it = comm->registrations.begin();
    while (it != comm->registrations.end() && &*it != handle) ++it;
    if (it == comm->registrations.end())
      CHORUS_FAIL(ncclInvalidArgument, "%s: handle %p is not a registration of this communicator",
                  caller, handle);
    if (comm->lentRegistrations) retired = comm->lentRegistrations->retire(&*it);
    comm->registrations.erase(it);
  }
  // Peers that mapped the buffer close it before the caller frees it.
  if (retired != 0) comm->lentRegistrations->awaitRelease(retired);
  return ncclSuccess;
}
