// Host blocks of ncclMemAlloc (runtime/host_blocks.h): what a peer maps
// through an exported handle is the owner's memory, both ways; a handle
// whose block is gone opens nothing, even when its descriptor number has
// been given to another block, and is no longer current; memory from
// elsewhere is not exported; a forked child does not inherit a block.
#include "runtime/host_blocks.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/lent_registrations.h"

namespace chorus {
namespace {

struct Exported {
  bool ok = false;
  uintptr_t base = 0;
  size_t bytes = 0;
  unsigned char handle[kArenaHandleBytes] = {};
  const char* why = nullptr;
};

Exported exportOf(ExportedMemory& memory, const void* buffer) {
  Exported e;
  e.ok = memory.exportAllocation(buffer, &e.base, &e.bytes, e.handle, &e.why);
  return e;
}

TEST(HostBlocks, AreWholePagesFreedOnce) {
  EXPECT_EQ(allocateHostBlock(0), nullptr);
  EXPECT_EQ(allocateHostBlock(SIZE_MAX - 10), nullptr);
  // More than any machine has: refused now, not at its first touch.
  EXPECT_EQ(allocateHostBlock(size_t{1} << 55), nullptr);
  void* block = allocateHostBlock(5000);
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % 4096, 0u);
  memset(block, 7, 8192);  // rounded up to whole pages
  EXPECT_TRUE(freeHostBlock(block));
  EXPECT_FALSE(freeHostBlock(block));
  int onStack = 0;
  EXPECT_FALSE(freeHostBlock(&onStack));
}

TEST(HostBlocks, AMappedBlockIsTheOwnersMemory) {
  auto memory = hostBlockMemory();
  char* block = static_cast<char*>(allocateHostBlock(10000));
  ASSERT_NE(block, nullptr);
  const Exported e = exportOf(*memory, block + 100);
  ASSERT_TRUE(e.ok) << e.why;
  EXPECT_EQ(e.base, reinterpret_cast<uintptr_t>(block));
  EXPECT_EQ(e.bytes, 12288u);
  char* mapped = nullptr;
  ASSERT_EQ(memory->open(e.handle, &mapped), ncclSuccess) << lastError();
  ASSERT_NE(mapped, nullptr);
  EXPECT_NE(mapped, block);
  block[12287] = 42;
  EXPECT_EQ(mapped[12287], 42);
  mapped[100] = 17;
  EXPECT_EQ(block[100], 17);
  memory->close(mapped);
  EXPECT_TRUE(freeHostBlock(block));
}

// Shared, a block would let a forked child write into its parent's memory:
// the child does not have it at all.
TEST(HostBlocks, AForkedChildDoesNotInheritABlock) {
  char* block = static_cast<char*>(allocateHostBlock(4096));
  ASSERT_NE(block, nullptr);
  block[0] = 1;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // madvise of a range that is not mapped fails with ENOMEM.
    const bool mapped = madvise(block, 4096, MADV_NORMAL) == 0 || errno != ENOMEM;
    _exit(mapped ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child has the block";
  EXPECT_EQ(block[0], 1);
  EXPECT_TRUE(freeHostBlock(block));
}

// A freed block's handle is no longer current, and opens nothing, though
// the next block most likely takes its descriptor number (the lowest free
// one) and perhaps its address.
TEST(HostBlocks, AFreedBlocksHandleIsStaleAndOpensNothing) {
  auto memory = hostBlockMemory();
  void* first = allocateHostBlock(4096);
  ASSERT_NE(first, nullptr);
  const Exported e = exportOf(*memory, first);
  ASSERT_TRUE(e.ok) << e.why;
  EXPECT_TRUE(memory->stillExported(e.base, e.handle));
  ASSERT_TRUE(freeHostBlock(first));
  EXPECT_FALSE(memory->stillExported(e.base, e.handle));
  void* second = allocateHostBlock(4096);
  ASSERT_NE(second, nullptr);
  EXPECT_FALSE(memory->stillExported(e.base, e.handle));
  char* mapped = nullptr;
  EXPECT_EQ(memory->open(e.handle, &mapped), ncclSystemError);
  EXPECT_EQ(mapped, nullptr);
  EXPECT_FALSE(lastError().empty());
  const Exported e2 = exportOf(*memory, second);
  ASSERT_TRUE(e2.ok) << e2.why;
  EXPECT_TRUE(memory->stillExported(e2.base, e2.handle));
  EXPECT_TRUE(freeHostBlock(second));
}

TEST(HostBlocks, MemoryFromElsewhereIsNotExported) {
  auto memory = hostBlockMemory();
  std::vector<char> heap(4096);
  const Exported e = exportOf(*memory, heap.data());
  EXPECT_FALSE(e.ok);
  ASSERT_NE(e.why, nullptr);
  EXPECT_NE(std::string(e.why).find("ncclMemAlloc"), std::string::npos) << e.why;
  // Just past a block is not in it.
  char* block = static_cast<char*>(allocateHostBlock(4096));
  ASSERT_NE(block, nullptr);
  EXPECT_TRUE(exportOf(*memory, block + 4095).ok);
  const Exported past = exportOf(*memory, block + 4096);  // maybe in a neighbouring block
  EXPECT_TRUE(!past.ok || past.base != reinterpret_cast<uintptr_t>(block));
  EXPECT_TRUE(freeHostBlock(block));
}

}  // namespace
}  // namespace chorus
