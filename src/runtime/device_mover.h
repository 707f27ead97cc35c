// The DataMover for CUDA memory: copies and reductions are enqueued on one
// stream of the communicator's proxy thread, and settle() waits for it.
// Built only with CUDA.
#pragma once

#if defined(CHORUS_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include "collectives/data_mover.h"

namespace chorus {

class CudaMover final : public DataMover {
 public:
  // `stream` belongs to the caller and outlives the mover.
  explicit CudaMover(cudaStream_t stream) : stream_(stream) {}
  ncclResult_t copy(void* dst, const void* src, size_t bytes) override;
  ncclResult_t reduceCopy(const RedOpArgs& op, const void* peer, const void* local,
                          bool applyPre, void* dst, bool applyPost, size_t count) override;
  ncclResult_t settle() override;
  bool synchronous() const override { return false; }

 private:
  cudaStream_t stream_;
  bool pending_ = false;  // work was enqueued since the last settle
};

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
