// How an entry point is exported: a strong pnccl<Name> (for profilers and
// tools that interpose on the API, as with NVIDIA's library) and a weak
// nccl<Name> alias of it. Only these two names leave libnccl.so.2
// (cmake/exports.map).
//
//   NCCL_API(ncclResult_t, ncclGetVersion, int* version) { ... }
#pragma once

#include "nccl.h"

#define NCCL_API(ret, name, ...)                                                  \
  extern "C" __attribute__((visibility("default"))) ret p##name(__VA_ARGS__);    \
  extern "C" __attribute__((visibility("default"), weak, alias("p" #name))) ret  \
  name(__VA_ARGS__);                                                              \
  extern "C" __attribute__((visibility("default"))) ret p##name(__VA_ARGS__)
