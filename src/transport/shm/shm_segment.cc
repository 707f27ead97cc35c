#include "transport/shm/shm_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "common/result.h"

namespace chorus {

ShmMapping::~ShmMapping() {
  if (base) munmap(base, bytes);
}

namespace {

// A process's first access to a page of a mapping costs a fault, which
// MAP_POPULATE avoids, and under a hypervisor with shadow page tables a
// second, hidden one that it does not: each page of every process, once.
// Left to the first operations, that made the first 256 small operations of
// a communicator (one per operation line) 20 us instead of 0.6 us with 2
// ranks, and 46 against 9 us with 4, which short benchmark runs report. So
// every page is touched here, for writing (an atomic or of 0: no value
// changes, whoever else writes there): init takes 15-50 ms longer on such a
// machine, and nothing elsewhere.
void writeTouchEveryPage(void* base, size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  for (size_t offset = 0; offset < bytes; offset += page)
    __atomic_fetch_or(reinterpret_cast<uint32_t*>(static_cast<char*>(base) + offset), 0u,
                      __ATOMIC_RELAXED);
}

}  // namespace

ncclResult_t mapShmSegment(const char* name, size_t bytes, bool create, ShmMapping* out) {
  int fd = shm_open(name, create ? (O_CREAT | O_EXCL | O_RDWR) : O_RDWR, 0600);
  if (fd < 0)
    CHORUS_FAIL(ncclSystemError, "shm_open(%s) failed: %s", name, strerror(errno));
  if (create && ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int err = errno;
    close(fd);
    shm_unlink(name);
    CHORUS_FAIL(ncclSystemError, "cannot size shared memory %s to %zu bytes: %s (is /dev/shm full?)",
                name, bytes, strerror(err));
  }
  // Sizing reserves no memory: a full /dev/shm would show as SIGBUS at the
  // first touch of a page it cannot back. Reserving the pages now makes that
  // an error (where the file system can; elsewhere pages come on first use).
  if (create) {
    const int err = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
    if (err != 0 && err != EOPNOTSUPP && err != EINVAL) {
      close(fd);
      shm_unlink(name);
      CHORUS_FAIL(ncclSystemError, "cannot reserve %zu bytes of shared memory for %s: %s (is "
                  "/dev/shm too small? a container's default is 64 MiB)", bytes, name,
                  strerror(err));
    }
  }
  // Mapping past the end of a smaller segment would fault (SIGBUS) on the
  // first access there, and a larger one was laid out by other settings:
  // a creator that sized it differently is an error here.
  struct stat st {};
  if (!create && (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != bytes)) {
    const long long found = st.st_size;
    close(fd);
    CHORUS_FAIL(ncclInvalidUsage, "shared memory %s holds %lld bytes, this rank expects %zu: did "
                "its creator use other settings?", name, found, bytes);
  }
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  close(fd);
  if (base == MAP_FAILED) CHORUS_FAIL(ncclSystemError, "mmap of %s failed: %s", name, strerror(errno));
  writeTouchEveryPage(base, bytes);
  out->base = base;
  out->bytes = bytes;
  return ncclSuccess;
}

}  // namespace chorus
