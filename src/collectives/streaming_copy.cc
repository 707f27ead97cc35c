#include "collectives/streaming_copy.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <emmintrin.h>
#define CHORUS_STREAMING_STORES 1
#endif

namespace chorus {

void copyWithStreamingStores(void* dst, const void* src, size_t bytes) {
#if defined(CHORUS_STREAMING_STORES)
  char* to = static_cast<char*>(dst);
  const char* from = static_cast<const char*>(src);
  // Up to the first 64-byte line of the destination with memcpy, then whole
  // lines (SSE2: every x86-64 CPU), then the rest.
  const size_t head = std::min<size_t>(bytes, (64 - reinterpret_cast<uintptr_t>(to) % 64) % 64);
  memcpy(to, from, head);
  size_t i = head;
  for (; i + 64 <= bytes; i += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i + 32));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(from + i + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(to + i), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(to + i + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(to + i + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(to + i + 48), d);
  }
  // Streaming stores are weakly ordered: a peer told the data is ready must
  // see it.
  _mm_sfence();
  memcpy(to + i, from + i, bytes - i);
#else
  if (bytes > 0) memcpy(dst, src, bytes);
#endif
}

}  // namespace chorus
