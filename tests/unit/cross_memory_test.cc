// Reading and writing another process's memory through the kernel
// (transport/shm/cross_memory.h): exact bytes both ways, a short transfer
// carried on to its end or to the page that cannot be reached, and clear
// errors for a process that has exited and for memory that is not there;
// the probe that decides whether ranks use it at all.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "harness/ranks.h"
#include "transport/shm/cross_memory.h"

using chorus::canReachProcess;
using chorus::crossMemoryProbeAddress;
using chorus::readProcess;
using chorus::writeProcess;
using chorus::test::lastErrorHas;

namespace {

// Odd, and more than a few pages: the kernel pins and copies page by page.
constexpr size_t kBytes = 5 * 4096 + 123;

uint8_t childByte(size_t i) { return static_cast<uint8_t>(i * 7 + 1); }
uint8_t parentByte(size_t i) { return static_cast<uint8_t>(i * 13 + 5); }

// A forked process that runs `prepare`, tells the parent, waits until the
// parent says it is done, then exits with what `verify` returns (0: right).
class ChildProcess {
 public:
  template <typename Prepare, typename Verify>
  ChildProcess(Prepare prepare, Verify verify) {
    if (pipe(toParent_) != 0 || pipe(toChild_) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      prepare();
      char byte = 1;
      if (write(toParent_[1], &byte, 1) != 1) _exit(90);
      if (read(toChild_[0], &byte, 1) != 1) _exit(91);
      _exit(verify());
    }
    char byte = 0;
    if (pid_ < 0 || read(toParent_[0], &byte, 1) != 1) pid_ = -1;
  }
  ~ChildProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : {toParent_[0], toParent_[1], toChild_[0], toChild_[1]})
      if (fd >= 0) close(fd);
  }
  pid_t pid() const { return pid_; }
  // Lets the child verify and exit; its exit status (-1: it did not exit).
  int finish() {
    char byte = 1;
    if (write(toChild_[1], &byte, 1) != 1) return -1;
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return -1;
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  int toParent_[2] = {-1, -1}, toChild_[2] = {-1, -1};
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Where the kernel forbids it (a seccomp filter, Yama, another user) the
// library stages instead; these tests then have nothing to check.
bool skipWithoutCrossMemory(pid_t pid) {
  std::string why;
  if (canReachProcess(pid, crossMemoryProbeAddress(), &why)) return false;
  GTEST_LOG_(INFO) << "this machine forbids cross-memory attach (" << why << ")";
  return true;
}

TEST(CrossMemory, ReadsAndWritesBuffersOfAnotherProcessExactly) {
  // Both exist before the fork, at the same addresses in the child: what the
  // parent reads must be the child's bytes, not its own.
  std::vector<uint8_t> source(kBytes, 0), target(kBytes, 0);
  ChildProcess child(
      [&] {
        for (size_t i = 0; i < kBytes; ++i) source[i] = childByte(i);
      },
      [&] {
        for (size_t i = 0; i < kBytes; ++i)
          if (target[i] != parentByte(i)) return 1;
        return 0;
      });
  ASSERT_GT(child.pid(), 0);
  if (skipWithoutCrossMemory(child.pid())) GTEST_SKIP() << "cross-memory attach is forbidden here";

  std::vector<uint8_t> read(kBytes, 0);
  ASSERT_EQ(readProcess(child.pid(), 1, read.data(), reinterpret_cast<uint64_t>(source.data()),
                        kBytes),
            ncclSuccess)
      << ncclGetLastError(nullptr);
  for (size_t i = 0; i < kBytes; ++i) ASSERT_EQ(read[i], childByte(i)) << "byte " << i;
  EXPECT_EQ(source[0], 0) << "the parent's own buffer is untouched";

  std::vector<uint8_t> written(kBytes);
  for (size_t i = 0; i < kBytes; ++i) written[i] = parentByte(i);
  ASSERT_EQ(writeProcess(child.pid(), 1, reinterpret_cast<uint64_t>(target.data()),
                         written.data(), kBytes),
            ncclSuccess)
      << ncclGetLastError(nullptr);
  EXPECT_EQ(child.finish(), 0) << "the child found other bytes than the parent wrote";
}

TEST(CrossMemory, MemoryThePeerNoLongerHasIsInvalidUsageSayingWhereTheReadStopped) {
  // Two pages; the child unmaps the second: a read of both stops there.
  void* pages = mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(pages, MAP_FAILED);
  char* base = static_cast<char*>(pages);
  ChildProcess child([&] { munmap(base + 4096, 4096); }, [] { return 0; });
  ASSERT_GT(child.pid(), 0);
  if (skipWithoutCrossMemory(child.pid())) GTEST_SKIP() << "cross-memory attach is forbidden here";

  std::vector<char> read(2 * 4096);
  EXPECT_EQ(readProcess(child.pid(), 2, read.data(), reinterpret_cast<uint64_t>(base), 2 * 4096),
            ncclInvalidUsage);
  EXPECT_TRUE(lastErrorHas("rank 2's buffer")) << ncclGetLastError(nullptr);
  EXPECT_TRUE(lastErrorHas("cannot be read at byte 4096 of 8192")) << ncclGetLastError(nullptr);
  EXPECT_EQ(writeProcess(child.pid(), 2, reinterpret_cast<uint64_t>(base + 4096), read.data(), 8),
            ncclInvalidUsage);
  EXPECT_TRUE(lastErrorHas("cannot be written at byte 0 of 8")) << ncclGetLastError(nullptr);
  EXPECT_EQ(child.finish(), 0);
  munmap(pages, 2 * 4096);
}

TEST(CrossMemory, AProcessThatHasExitedIsARemoteErrorNamingTheRank) {
  std::vector<char> buffer(64);
  pid_t pid = -1;
  {
    ChildProcess child([] {}, [] { return 0; });
    ASSERT_GT(child.pid(), 0);
    if (skipWithoutCrossMemory(child.pid())) GTEST_SKIP() << "cross-memory attach is forbidden here";
    pid = child.pid();
    ASSERT_EQ(child.finish(), 0);
  }
  EXPECT_EQ(readProcess(pid, 3, buffer.data(), reinterpret_cast<uint64_t>(buffer.data()), 64),
            ncclRemoteError);
  EXPECT_TRUE(lastErrorHas("rank 3's process (pid " + std::to_string(pid) + ") has exited"))
      << ncclGetLastError(nullptr);
}

TEST(CrossMemory, TheProbeFailsAtAnAddressThatIsNotTheProbeWord) {
  std::vector<uint64_t> notTheWord(1, 12345);
  ChildProcess child([] {}, [] { return 0; });
  ASSERT_GT(child.pid(), 0);
  if (skipWithoutCrossMemory(child.pid())) GTEST_SKIP() << "cross-memory attach is forbidden here";
  std::string why;
  EXPECT_FALSE(canReachProcess(child.pid(), reinterpret_cast<uint64_t>(notTheWord.data()), &why));
  EXPECT_EQ(why, "process_vm_readv read the wrong bytes");
  EXPECT_FALSE(canReachProcess(child.pid(), 8, &why));
  EXPECT_NE(why.find("process_vm_readv: "), std::string::npos) << why;
  EXPECT_EQ(child.finish(), 0);
}

TEST(CrossMemory, TheProbeFailsWhereItCanReadButNotWrite) {
  // The probe word's value, on a page the peer may only read.
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  memcpy(page, reinterpret_cast<const void*>(crossMemoryProbeAddress()), sizeof(uint64_t));
  ASSERT_EQ(mprotect(page, 4096, PROT_READ), 0);
  ChildProcess child([] {}, [] { return 0; });
  ASSERT_GT(child.pid(), 0);
  if (skipWithoutCrossMemory(child.pid())) GTEST_SKIP() << "cross-memory attach is forbidden here";
  std::string why;
  EXPECT_FALSE(canReachProcess(child.pid(), reinterpret_cast<uint64_t>(page), &why));
  EXPECT_NE(why.find("process_vm_writev: "), std::string::npos) << why;
  EXPECT_TRUE(canReachProcess(child.pid(), crossMemoryProbeAddress(), &why)) << why;
  EXPECT_EQ(child.finish(), 0);
  munmap(page, 4096);
}

TEST(CrossMemory, TheKernelCopysCostIsTimedAgainstMemcpy) {
  const double slowdown = chorus::kernelCopySlowdown();
  GTEST_LOG_(INFO) << "a copy through the kernel takes " << slowdown << "x a memcpy's time";
  std::string why;
  if (!chorus::test::crossMemoryAllowed(&why)) {
    // This process reading itself is allowed even then, unless a seccomp
    // filter forbids the call: infinitely slow.
    EXPECT_GT(slowdown, 0.0);
    return;
  }
  EXPECT_GT(slowdown, 0.0);
  EXPECT_LT(slowdown, 1000.0) << "the kernel's copy never finished or was not timed";
}

}  // namespace
