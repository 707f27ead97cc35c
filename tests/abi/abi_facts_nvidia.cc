// The ABI facts of NVIDIA's nccl.h (and the host functions of its device
// API), the reference that abi_facts_main.cc holds ours to.
#include CHORUS_NVIDIA_NCCL_H  // NVIDIA's header by absolute path (set by CMake)

#if defined(CHORUS_NCCL_CUDA_HEADERS)
#error "this file must see NVIDIA's nccl.h, not Chorus's"
#endif

#if __has_include(<nccl_device/core.h>)
#include <nccl_device/core.h>
#include <nccl_device/gin_barrier.h>
#include <nccl_device/ll_a2a.h>
#include <nccl_device/lsa_barrier.h>
#define CHORUS_ABI_DEVICE_API 1
#else
#define CHORUS_ABI_DEVICE_API 0
#endif

#define CHORUS_ABI_FACTS_FN abiFactsNvidia
#include "abi_facts.inc"
