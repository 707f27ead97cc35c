// Shared memory segments: a segment maps only at the size its creator gave
// it, so ranks that sized it differently fail instead of faulting or
// reading a layout they do not expect.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "harness/ranks.h"
#include "transport/shm/shm_segment.h"

using chorus::mapShmSegment;
using chorus::ShmMapping;
using chorus::test::lastErrorHas;

namespace {

constexpr size_t kBytes = 64 * 1024;

// A segment name of this process, unlinked with the object.
struct SegmentName {
  std::string name = "/chorus-test-segment-" + std::to_string(getpid());
  ~SegmentName() { shm_unlink(name.c_str()); }
};

TEST(ShmSegment, OpensAtItsCreatorsSizeAndSharesItsBytes) {
  SegmentName segment;
  ShmMapping created, opened;
  ASSERT_EQ(mapShmSegment(segment.name.c_str(), kBytes, true, &created), ncclSuccess);
  memset(created.base, 0x5a, kBytes);
  ASSERT_EQ(mapShmSegment(segment.name.c_str(), kBytes, false, &opened), ncclSuccess);
  EXPECT_EQ(opened.bytes, kBytes);
  EXPECT_EQ(static_cast<unsigned char*>(opened.base)[kBytes - 1], 0x5a);
}

TEST(ShmSegment, OpeningAtAnotherSizeIsInvalidUsageNamingBothSizes) {
  SegmentName segment;
  ShmMapping created;
  ASSERT_EQ(mapShmSegment(segment.name.c_str(), kBytes, true, &created), ncclSuccess);
  for (const size_t expected : {kBytes - 4096, kBytes + 4096}) {
    ShmMapping opened;
    EXPECT_EQ(mapShmSegment(segment.name.c_str(), expected, false, &opened), ncclInvalidUsage)
        << expected;
    EXPECT_TRUE(lastErrorHas("holds " + std::to_string(kBytes) + " bytes, this rank expects " +
                             std::to_string(expected)))
        << ncclGetLastError(nullptr);
    EXPECT_EQ(opened.base, nullptr);
  }
}

TEST(ShmSegment, CreatingOneThatExistsIsASystemError) {
  SegmentName segment;
  ShmMapping first, second;
  ASSERT_EQ(mapShmSegment(segment.name.c_str(), kBytes, true, &first), ncclSuccess);
  EXPECT_EQ(mapShmSegment(segment.name.c_str(), kBytes, true, &second), ncclSystemError);
  EXPECT_TRUE(lastErrorHas("shm_open")) << ncclGetLastError(nullptr);
}

}  // namespace
