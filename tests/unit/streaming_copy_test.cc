// The copy that bypasses the caches: exact bytes for every length around a
// cache line and every misalignment of source and destination, and the
// bytes around the destination untouched.
#include "collectives/streaming_copy.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace chorus {
namespace {

TEST(StreamingCopy, EveryLengthAndAlignmentIsExactAndStaysInItsRange) {
  const size_t lengths[] = {0, 1, 15, 63, 64, 65, 127, 128, 200, 4096 + 33};
  std::vector<uint8_t> source(8192), target(8192 + 256);
  for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint8_t>(i * 131 + 7);
  for (size_t length : lengths)
    for (size_t from = 0; from < 64; from += 9)
      for (size_t to = 0; to < 64; to += 5) {
        std::fill(target.begin(), target.end(), 0xEE);
        copyWithStreamingStores(target.data() + 64 + to, source.data() + from, length);
        for (size_t i = 0; i < target.size(); ++i) {
          const bool inside = i >= 64 + to && i < 64 + to + length;
          const uint8_t want = inside ? source[from + (i - 64 - to)] : 0xEE;
          ASSERT_EQ(target[i], want) << "length " << length << ", source offset " << from
                                     << ", target offset " << to << ", byte " << i;
        }
      }
}

// Larger than the caches' line-by-line paths care about: a few MiB, as the
// collectives use it.
TEST(StreamingCopy, SeveralMegabytesAreExact) {
  const size_t bytes = (size_t{3} << 20) + 40;
  std::vector<uint32_t> source(bytes / 4 + 1), target(bytes / 4 + 1, 0);
  for (size_t i = 0; i < source.size(); ++i) source[i] = static_cast<uint32_t>(i * 2654435761u);
  copyWithStreamingStores(reinterpret_cast<char*>(target.data()) + 4,
                          reinterpret_cast<const char*>(source.data()) + 4, bytes - 4);
  EXPECT_EQ(target[0], 0u);
  for (size_t i = 1; i < bytes / 4; ++i) ASSERT_EQ(target[i], source[i]) << "word " << i;
}

}  // namespace
}  // namespace chorus
