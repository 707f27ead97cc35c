// For CUDA calls a graph capture must not see: while it lives, this
// thread's capture mode is relaxed, so that calls such as cudaMalloc or
// cudaIpcOpenMemHandle neither fail nor invalidate a capture in progress
// (on this thread or, in global mode, on another). For CUDA builds only.
#pragma once

#include <cuda_runtime_api.h>

namespace chorus {

class RelaxedCaptureMode {
 public:
  RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  ~RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&mode_); }
  RelaxedCaptureMode(const RelaxedCaptureMode&) = delete;
  RelaxedCaptureMode& operator=(const RelaxedCaptureMode&) = delete;

 private:
  cudaStreamCaptureMode mode_ = cudaStreamCaptureModeRelaxed;
};

}  // namespace chorus
