#include "runtime/host_blocks.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "common/result.h"
#include "runtime/lent_registrations.h"

namespace chorus {
namespace {

constexpr size_t kPageBytes = 4096;

struct Block {
  size_t bytes;
  int fd;  // the memfd, kept open while the block lives (-1: private memory)
  uint64_t device, inode;
};

// What a peer needs to open a block: where its descriptor is, and which
// file it must be.
struct BlockHandle {
  uint32_t pid;
  int32_t fd;
  uint64_t device;
  uint64_t inode;
  uint64_t bytes;
};
static_assert(sizeof(BlockHandle) <= kArenaHandleBytes, "a block's handle fits an entry");

std::mutex gBlocksMutex;
std::map<uintptr_t, Block> gBlocks;  // by start address
size_t gSharedBlocks = 0;            // of gBlocks, those with a memfd

// Whether one more block may hold a descriptor: blocks take at most a
// quarter of the process's limit, so that a program with many blocks does
// not run out of descriptors for its sockets and files (under gBlocksMutex).
bool descriptorToSpare() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  return limit.rlim_cur == RLIM_INFINITY || gSharedBlocks < limit.rlim_cur / 4;
}

// Whether `bytes` could ever be backed: a memfd reserves nothing when it is
// made, so a block larger than the machine's memory and swap would be
// "allocated" and then fail at its first touch.
bool fitsThisMachine(size_t bytes) {
  struct sysinfo info {};
  if (sysinfo(&info) != 0) return true;
  const unsigned long long total =
      (static_cast<unsigned long long>(info.totalram) + info.totalswap) * info.mem_unit;
  return bytes <= total;
}

// The block that holds `address`, under gBlocksMutex; null when none does.
const std::pair<const uintptr_t, Block>* blockHolding(uintptr_t address) {
  auto it = gBlocks.upper_bound(address);
  if (it == gBlocks.begin()) return nullptr;
  --it;
  return address - it->first < it->second.bytes ? &*it : nullptr;
}

// A shared memfd mapping of `bytes`, or null (and *fd -1).
void* mapSharedBlock(size_t bytes, int* fd, struct stat* file) {
  *fd = memfd_create("chorus-buffer", MFD_CLOEXEC);
  if (*fd < 0) return nullptr;
  void* block = MAP_FAILED;
  if (ftruncate(*fd, static_cast<off_t>(bytes)) == 0 && fstat(*fd, file) == 0)
    block = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
  if (block != MAP_FAILED) {
    // A forked child does not inherit the block: shared, the child's writes
    // would land in the parent's memory, where heap memory would be a copy
    // (registered memory of verbs is not inherited either).
    madvise(block, bytes, MADV_DONTFORK);
    // Huge pages where the system gives them to shared memory on request.
    madvise(block, bytes, MADV_HUGEPAGE);
    return block;
  }
  ::close(*fd);
  *fd = -1;
  return nullptr;
}

class HostBlockMemory final : public ExportedMemory {
 public:
  bool exportAllocation(const void* buffer, uintptr_t* base, size_t* bytes,
                        unsigned char (&handle)[kArenaHandleBytes], const char** why) override {
    std::lock_guard<std::mutex> lock(gBlocksMutex);
    const auto* block = blockHolding(reinterpret_cast<uintptr_t>(buffer));
    if (block == nullptr) {
      *why = "it is not memory from ncclMemAlloc";
      return false;
    }
    if (block->second.fd < 0) {
      *why = "its block is private memory (no shareable memory could be had for it, or blocks "
             "already hold a quarter of the process's file descriptors)";
      return false;
    }
    const BlockHandle h{static_cast<uint32_t>(getpid()), block->second.fd, block->second.device,
                        block->second.inode, block->second.bytes};
    memset(handle, 0, sizeof(handle));
    memcpy(handle, &h, sizeof(h));
    *base = block->first;
    *bytes = block->second.bytes;
    return true;
  }

  ncclResult_t open(const unsigned char (&handle)[kArenaHandleBytes], char** mapped) override {
    BlockHandle h;
    memcpy(&h, handle, sizeof(h));
    char path[64];
    snprintf(path, sizeof(path), "/proc/%u/fd/%d", h.pid, h.fd);
    const int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
      CHORUS_FAIL(ncclSystemError, "cannot open a peer's memory block through %s: %s", path,
                  strerror(errno));
    struct stat file {};
    if (fstat(fd, &file) != 0) {
      const int statError = errno;
      ::close(fd);
      CHORUS_FAIL(ncclSystemError, "cannot stat %s: %s", path, strerror(statError));
    }
    const bool same = static_cast<uint64_t>(file.st_dev) == h.device &&
                      static_cast<uint64_t>(file.st_ino) == h.inode &&
                      static_cast<uint64_t>(file.st_size) >= h.bytes;
    void* block = same ? mmap(nullptr, h.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                       : MAP_FAILED;
    const int mapError = errno;
    ::close(fd);
    if (!same)
      CHORUS_FAIL(ncclSystemError, "%s is not the memory block a peer lent (its process closed "
                  "it, or lives in another pid namespace)", path);
    if (block == MAP_FAILED)
      CHORUS_FAIL(ncclSystemError, "cannot map %llu bytes of a peer's memory block: %s",
                  static_cast<unsigned long long>(h.bytes), strerror(mapError));
    std::lock_guard<std::mutex> lock(mutex_);
    mappings_[static_cast<char*>(block)] = h.bytes;
    *mapped = static_cast<char*>(block);
    return ncclSuccess;
  }

  bool stillExported(uintptr_t base,
                     const unsigned char (&handle)[kArenaHandleBytes]) override {
    BlockHandle h;
    memcpy(&h, handle, sizeof(h));
    std::lock_guard<std::mutex> lock(gBlocksMutex);
    auto it = gBlocks.find(base);
    return it != gBlocks.end() && it->second.inode == h.inode && it->second.device == h.device;
  }

  void close(char* mapped) override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = mappings_.find(mapped);
    if (it == mappings_.end()) return;
    munmap(mapped, it->second);
    mappings_.erase(it);
  }

 private:
  std::mutex mutex_;
  std::map<char*, size_t> mappings_;  // peers' blocks mapped here, with their sizes
};

}  // namespace

void* allocateHostBlock(size_t bytes) {
  if (bytes == 0 || bytes > SIZE_MAX - kPageBytes) return nullptr;
  const size_t rounded = (bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
  if (!fitsThisMachine(rounded)) return nullptr;
  std::lock_guard<std::mutex> lock(gBlocksMutex);
  int fd = -1;
  struct stat file {};
  void* block = descriptorToSpare() ? mapSharedBlock(rounded, &fd, &file) : nullptr;
  if (block == nullptr) {
    block = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED) return nullptr;
  }
  gBlocks[reinterpret_cast<uintptr_t>(block)] =
      Block{rounded, fd, static_cast<uint64_t>(file.st_dev), static_cast<uint64_t>(file.st_ino)};
  if (fd >= 0) ++gSharedBlocks;
  return block;
}

bool freeHostBlock(void* block) {
  Block freed;
  {
    std::lock_guard<std::mutex> lock(gBlocksMutex);
    auto it = gBlocks.find(reinterpret_cast<uintptr_t>(block));
    if (it == gBlocks.end()) return false;
    freed = it->second;
    gBlocks.erase(it);
    if (freed.fd >= 0) --gSharedBlocks;
  }
  munmap(block, freed.bytes);
  if (freed.fd >= 0) ::close(freed.fd);
  return true;
}

std::unique_ptr<ExportedMemory> hostBlockMemory() { return std::make_unique<HostBlockMemory>(); }

}  // namespace chorus
