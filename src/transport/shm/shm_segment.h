// POSIX shared-memory segments: created by one rank, mapped by others of the
// same host, unmapped with their owner.
#pragma once

#include <cstddef>

#include "nccl.h"

namespace chorus {

// A mapping that is unmapped with its owner.
struct ShmMapping {
  void* base = nullptr;
  size_t bytes = 0;

  ShmMapping() = default;
  ShmMapping(const ShmMapping&) = delete;
  ShmMapping& operator=(const ShmMapping&) = delete;
  ~ShmMapping();
};

// Maps the segment `name` of `bytes` bytes; with `create`, makes it first
// (it must not exist yet). The creator should fault the pages in at once.
ncclResult_t mapShmSegment(const char* name, size_t bytes, bool create, ShmMapping* out);

}  // namespace chorus
