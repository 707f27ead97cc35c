// A program may include our nccl.h without CUDA headers and <cuda_runtime.h>
// after it: the two declarations of cudaStream_t must name the same type,
// or this does not compile (and the ABI would differ).
#define CHORUS_NO_CUDA_HEADERS 1
#include "nccl.h"
#include <cuda_runtime.h>

#include <type_traits>

static_assert(CHORUS_NCCL_CUDA_HEADERS == 0, "CUDA headers were meant to stay out");
static_assert(std::is_same<cudaStream_t, CUstream_st*>::value, "cudaStream_t is CUDA's type");
