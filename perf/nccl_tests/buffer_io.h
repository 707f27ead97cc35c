// Filling and checking buffers element by element, wherever they live: values
// are made (or compared) as doubles on the host, a block at a time, and
// moved through Memory.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "collective.h"
#include "memory.h"

namespace perf {

// base[i] = value(i) for i in [0, n), encoded as `type`.
bool writeElements(Memory& memory, void* base, ncclDataType_t type, size_t n,
                   const std::function<double(size_t)>& value, std::string* error);

struct Mismatch {
  size_t index;
  double got, want;
};

// Counts the elements of base[0, n) farther from want(i).value than its
// tolerance (NaN is always wrong). The first few go to *first.
bool countWrong(Memory& memory, const void* base, ncclDataType_t type, size_t n,
                const std::function<Want(size_t)>& want, size_t* wrong, std::vector<Mismatch>* first,
                std::string* error);

// Flips the lowest bit of element 0 (the CHORUS_PERF_CORRUPT test hook).
bool corruptFirst(Memory& memory, void* base, std::string* error);

}  // namespace perf
