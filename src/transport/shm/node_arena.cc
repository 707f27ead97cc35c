#include "transport/shm/node_arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "bootstrap/bootstrap.h"
#include "common/log.h"
#include "common/result.h"

namespace chorus {
namespace {

constexpr int kArenaNameTag = 0x30000;

size_t roundUp64(size_t n) { return (n + 63) / 64 * 64; }

}  // namespace

ncclResult_t NodeArena::open(Bootstrap& bootstrap, int rank, int nranks, size_t stageBytes,
                             bool withRoundSlots,
                             std::unique_ptr<NodeArena>* out) {
  auto arena = std::unique_ptr<NodeArena>(new NodeArena());
  arena->stageBytes_ = roundUp64(stageBytes);
  arena->nranks_ = nranks;
  const size_t slotBytes = roundUp64(sizeof(ArenaRankSlot) * static_cast<size_t>(nranks));
  const size_t syncedBytes =
      roundUp64(sizeof(uint32_t) * (2 * static_cast<size_t>(nranks) * static_cast<size_t>(nranks) + 1));
  const size_t stagingBytes = arena->stageBytes_ * kArenaParities * static_cast<size_t>(nranks);
  const size_t roundSlotBytes =
      withRoundSlots ? kArenaSlotBytes * kArenaLines * static_cast<size_t>(nranks) : 0;
  const size_t bytes = slotBytes + syncedBytes + stagingBytes + roundSlotBytes;

  char name[64] = {};
  if (rank == 0) {
    static std::atomic<uint64_t> counter{0};
    snprintf(name, sizeof(name), "/chorus-arena-%d-%llu", static_cast<int>(getpid()),
             static_cast<unsigned long long>(counter++));
    CHORUS_CHECK(mapShmSegment(name, bytes, true, &arena->mapping_));
    // Fault every page in now, not during the first operation.
    memset(arena->mapping_.base, 0, bytes);
    for (int peer = 1; peer < nranks; ++peer)
      CHORUS_CHECK(bootstrap.send(peer, kArenaNameTag, name, sizeof(name)));
  } else {
    CHORUS_CHECK(bootstrap.recv(0, kArenaNameTag, name, sizeof(name)));
    name[sizeof(name) - 1] = '\0';
    CHORUS_CHECK(mapShmSegment(name, bytes, false, &arena->mapping_));
  }
  ncclResult_t mapped = bootstrap.barrier();
  if (rank == 0) shm_unlink(name);  // every rank holds it now (or init failed)
  CHORUS_CHECK(mapped);
  arena->slots_ = static_cast<ArenaRankSlot*>(arena->mapping_.base);
  arena->synced_ = reinterpret_cast<uint32_t*>(static_cast<char*>(arena->mapping_.base) + slotBytes);
  arena->staging_ = static_cast<char*>(arena->mapping_.base) + slotBytes + syncedBytes;
  if (withRoundSlots) arena->roundSlots_ = arena->staging_ + stagingBytes;
  TRACE(kLogShm, "rank %d: node arena %s, %zu bytes", rank, name, bytes);
  *out = std::move(arena);
  return ncclSuccess;
}

}  // namespace chorus
