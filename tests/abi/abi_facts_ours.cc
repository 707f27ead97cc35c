// The ABI facts of Chorus's nccl.h. Built twice: with CUDA headers and with
// CHORUS_NO_CUDA_HEADERS (CHORUS_ABI_FACTS_FN names each build's function).
#include "nccl.h"
#include "nccl_device_host.h"

#if !defined(CHORUS_NCCL_CUDA_HEADERS)
#error "this file must see Chorus's nccl.h"
#endif
#if defined(CHORUS_NO_CUDA_HEADERS) && CHORUS_NCCL_CUDA_HEADERS
#error "CHORUS_NO_CUDA_HEADERS did not keep the CUDA headers out"
#endif

#define CHORUS_ABI_DEVICE_API 1
#include "abi_facts.inc"
