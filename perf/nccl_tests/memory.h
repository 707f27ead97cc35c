// Where one communicator's buffers live: on its CUDA device (when the build
// has CUDA and the communicator is bound to a GPU) or in host memory. This is
// the only file that talks to the CUDA runtime.
//
// Host buffers: operations complete when their call (or ncclGroupEnd)
// returns, so there is nothing to wait for. Device buffers: each
// communicator has its own stream, and completion is the stream's.
#pragma once

#include <cstddef>
#include <string>

#include "nccl.h"

namespace perf {

// Number of CUDA devices this process may use; 0 without CUDA (build, driver
// or GPU), or when CHORUS_DEVICE=host.
int cudaDevices();
// Makes `device` current on this thread before ncclCommInitRank binds to it.
bool selectDevice(int device, std::string* error);
// "[0000:65:00] NVIDIA H100 80GB HBM3" for the rank lines.
std::string describeDevice(int device);

class Memory {
 public:
  // device < 0: host memory; from ncclMemAlloc with `libraryHost` (for
  // registration: the library's host blocks are what peers can map).
  explicit Memory(int device, bool libraryHost = false)
      : device_(device), libraryHost_(libraryHost) {}
  ~Memory();
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;

  bool onDevice() const { return device_ >= 0; }
  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }

  // Each returns false with a message in *error.
  bool init(std::string* error);                          // the stream
  bool alloc(size_t bytes, void** ptr, std::string* error);  // zero-filled (faulted in)
  void release(void* ptr);
  bool upload(void* dst, const void* host, size_t bytes, std::string* error);
  bool download(void* host, const void* src, size_t bytes, std::string* error);
  // dst and src both in this memory; ordered on the stream for devices.
  bool copy(void* dst, const void* src, size_t bytes, std::string* error);
  // 1: the stream has finished; 0: still running; -1: error (in *error).
  int query(std::string* error);
  bool synchronize(std::string* error);

 private:
  int device_;
  bool libraryHost_;
  cudaStream_t stream_ = nullptr;
};

}  // namespace perf
