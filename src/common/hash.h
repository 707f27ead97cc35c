// FNV-1a: a small, stable 64-bit hash for identities (not for security).
#pragma once

#include <cstddef>
#include <cstdint>

namespace chorus {

inline uint64_t hashBytes(const void* data, size_t size, uint64_t seed = 0xcbf29ce484222325ull) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace chorus
