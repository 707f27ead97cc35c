#include "buffer_io.h"

#include <cmath>

#include "perf_types.h"

namespace perf {

namespace {

constexpr size_t kBlock = 16384;  // elements per step
constexpr size_t kKeepMismatches = 4;

}  // namespace

bool writeElements(Memory& memory, void* base, ncclDataType_t type, size_t n,
                   const std::function<double(size_t)>& value, std::string* error) {
  const size_t size = typeInfo(type).size;
  std::vector<double> values(kBlock);
  std::vector<char> staging(memory.onDevice() ? kBlock * size : 0);
  for (size_t begin = 0; begin < n; begin += kBlock) {
    const size_t count = n - begin < kBlock ? n - begin : kBlock;
    for (size_t j = 0; j < count; ++j) values[j] = value(begin + j);
    char* dst = static_cast<char*>(base) + begin * size;
    if (!memory.onDevice()) {
      encode(type, values.data(), count, dst);  // host memory: straight into the buffer
      continue;
    }
    encode(type, values.data(), count, staging.data());
    if (!memory.upload(dst, staging.data(), count * size, error)) return false;
  }
  return true;
}

bool countWrong(Memory& memory, const void* base, ncclDataType_t type, size_t n,
                const std::function<Want(size_t)>& want, size_t* wrong, std::vector<Mismatch>* first,
                std::string* error) {
  const size_t size = typeInfo(type).size;
  std::vector<double> got(kBlock);
  std::vector<char> staging(memory.onDevice() ? kBlock * size : 0);
  *wrong = 0;
  for (size_t begin = 0; begin < n; begin += kBlock) {
    const size_t count = n - begin < kBlock ? n - begin : kBlock;
    const char* src = static_cast<const char*>(base) + begin * size;
    if (memory.onDevice()) {
      if (!memory.download(staging.data(), src, count * size, error)) return false;
      src = staging.data();
    }
    decode(type, src, count, got.data());
    for (size_t j = 0; j < count; ++j) {
      const Want w = want(begin + j);
      const double g = got[j];
      const bool ok = w.tolerance == 0 ? g == w.value : std::fabs(g - w.value) <= w.tolerance;
      if (ok) continue;  // (a NaN is never ok)
      ++*wrong;
      if (first->size() < kKeepMismatches) first->push_back({begin + j, g, w.value});
    }
  }
  return true;
}

bool corruptFirst(Memory& memory, void* base, std::string* error) {
  unsigned char byte = 0;
  if (!memory.download(&byte, base, 1, error)) return false;
  byte ^= 1;
  return memory.upload(base, &byte, 1, error);
}

}  // namespace perf
