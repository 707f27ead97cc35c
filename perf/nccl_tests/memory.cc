#include "memory.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifdef CHORUS_PERF_CUDA
#include <cuda_runtime.h>
#endif

namespace perf {

namespace {

constexpr size_t kAlign = 4096;

#ifdef CHORUS_PERF_CUDA
bool ok(cudaError_t err, const char* what, std::string* error) {
  if (err == cudaSuccess) return true;
  *error = std::string(what) + " failed: " + cudaGetErrorString(err);
  return false;
}
#endif

bool hostOnly() {
  const char* d = getenv("CHORUS_DEVICE");
  return d != nullptr && strcmp(d, "host") == 0;
}

}  // namespace

int cudaDevices() {
  if (hostOnly()) return 0;
#ifdef CHORUS_PERF_CUDA
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // no driver or no GPU: clear the error and run on the host
    return 0;
  }
  return count;
#else
  return 0;
#endif
}

bool selectDevice(int device, std::string* error) {
#ifdef CHORUS_PERF_CUDA
  return ok(cudaSetDevice(device), "cudaSetDevice", error);
#else
  (void)device;
  *error = "this build has no CUDA";
  return false;
#endif
}

std::string describeDevice(int device) {
  if (device < 0) return "[host] host memory";
#ifdef CHORUS_PERF_CUDA
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) {
    char text[512];
    snprintf(text, sizeof text, "[%04x:%02x:%02x] %s", prop.pciDomainID, prop.pciBusID,
             prop.pciDeviceID, prop.name);
    return text;
  }
  cudaGetLastError();
#endif
  return "[?] unknown device";
}

Memory::~Memory() {
#ifdef CHORUS_PERF_CUDA
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
#endif
}

bool Memory::init(std::string* error) {
  if (!onDevice()) return true;
#ifdef CHORUS_PERF_CUDA
  return ok(cudaSetDevice(device_), "cudaSetDevice", error) &&
         ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate", error);
#else
  *error = "device buffers need a CUDA build";
  return false;
#endif
}

bool Memory::alloc(size_t bytes, void** ptr, std::string* error) {
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign + kAlign;
  if (!onDevice()) {
    *ptr = nullptr;
    if (libraryHost_) {
      const ncclResult_t r = ncclMemAlloc(ptr, rounded);
      if (r != ncclSuccess) {
        *error = std::string("ncclMemAlloc failed: ") + ncclGetErrorString(r) + " (" +
                 ncclGetLastError(nullptr) + ")";
        return false;
      }
    } else {
      *ptr = aligned_alloc(kAlign, rounded);
    }
    if (*ptr == nullptr) {
      *error = "out of host memory allocating " + std::to_string(rounded) + " bytes";
      return false;
    }
    memset(*ptr, 0, rounded);  // fault every page in now, not in the timed loop
    return true;
  }
#ifdef CHORUS_PERF_CUDA
  return ok(cudaSetDevice(device_), "cudaSetDevice", error) &&
         ok(cudaMalloc(ptr, rounded), "cudaMalloc", error) &&
         ok(cudaMemset(*ptr, 0, rounded), "cudaMemset", error) &&
         // The memset may still run when it returns; later uploads go on
         // another stream that is not ordered after it.
         ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize", error);
#else
  *error = "device buffers need a CUDA build";
  return false;
#endif
}

void Memory::release(void* ptr) {
  if (ptr == nullptr) return;
  if (!onDevice()) {
    if (libraryHost_)
      ncclMemFree(ptr);
    else
      free(ptr);
    return;
  }
#ifdef CHORUS_PERF_CUDA
  cudaFree(ptr);
#endif
}

bool Memory::upload(void* dst, const void* host, size_t bytes, std::string* error) {
  if (!onDevice()) {
    memcpy(dst, host, bytes);
    return true;
  }
#ifdef CHORUS_PERF_CUDA
  // On this rank's stream, and waited for: a plain cudaMemcpy from pageable
  // memory may return before the data reaches the device, and the stream
  // (non-blocking) is not ordered after the legacy stream it runs on.
  return ok(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync",
            error) &&
         ok(cudaStreamSynchronize(stream_), "cudaStreamSynchronize", error);
#else
  *error = "device buffers need a CUDA build";
  return false;
#endif
}

bool Memory::download(void* host, const void* src, size_t bytes, std::string* error) {
  if (!onDevice()) {
    memcpy(host, src, bytes);
    return true;
  }
#ifdef CHORUS_PERF_CUDA
  return ok(cudaMemcpy(host, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy", error);
#else
  *error = "device buffers need a CUDA build";
  return false;
#endif
}

bool Memory::copy(void* dst, const void* src, size_t bytes, std::string* error) {
  if (!onDevice()) {
    memmove(dst, src, bytes);
    return true;
  }
#ifdef CHORUS_PERF_CUDA
  return ok(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "cudaMemcpyAsync",
            error);
#else
  *error = "device buffers need a CUDA build";
  return false;
#endif
}

int Memory::query(std::string* error) {
  if (!onDevice()) return 1;
#ifdef CHORUS_PERF_CUDA
  cudaError_t err = cudaStreamQuery(stream_);
  if (err == cudaSuccess) return 1;
  if (err == cudaErrorNotReady) return 0;
  ok(err, "cudaStreamQuery", error);
  return -1;
#else
  *error = "device buffers need a CUDA build";
  return -1;
#endif
}

bool Memory::synchronize(std::string* error) {
  if (!onDevice()) return true;
#ifdef CHORUS_PERF_CUDA
  return ok(cudaStreamSynchronize(stream_), "cudaStreamSynchronize", error);
#else
  *error = "device buffers need a CUDA build";
  return false;
#endif
}

}  // namespace perf
