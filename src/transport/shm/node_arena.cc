#include "transport/shm/node_arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "common/log.h"
#include "common/result.h"
#include "topology/host_identity.h"

namespace chorus {
namespace {

constexpr int kArenaNameTag = 0x30000;

size_t roundUp64(size_t n) { return (n + 63) / 64 * 64; }

}  // namespace

ncclResult_t NodeArena::open(Bootstrap& bootstrap, int rank, int nranks, size_t stageBytes,
                             size_t slotBytes,
                             std::unique_ptr<NodeArena>* out) {
  auto arena = std::unique_ptr<NodeArena>(new NodeArena());
  arena->stageBytes_ = roundUp64(stageBytes);
  arena->slotBytes_ = roundUp64(slotBytes);
  arena->nranks_ = nranks;
  const size_t rankSlotsBytes = roundUp64(sizeof(ArenaRankSlot) * static_cast<size_t>(nranks));
  const size_t syncedBytes =
      roundUp64(sizeof(uint32_t) * (2 * static_cast<size_t>(nranks) * static_cast<size_t>(nranks) + 1));
  const size_t stagingBytes = arena->stageBytes_ * kArenaParities * static_cast<size_t>(nranks);
  const size_t roundSlotBytes = arena->slotBytes_ * kArenaLines * static_cast<size_t>(nranks);
  const size_t bytes = rankSlotsBytes + syncedBytes + stagingBytes + roundSlotBytes;

  // A rank that cannot map the segment fails, and so does every other: each
  // learns how the others fared (rank 0 sends an empty name when it could
  // not create it), so none waits for a peer that has given up.
  char name[64] = {};
  ncclResult_t mapped;
  if (rank == 0) {
    static std::atomic<uint64_t> counter{0};
    // Unique across pid namespaces that share /dev/shm (see shm_transport.cc).
    snprintf(name, sizeof(name), "/chorus-arena-%016llx-%llu",
             static_cast<unsigned long long>(processToken()),
             static_cast<unsigned long long>(counter++));
    mapped = mapShmSegment(name, bytes, true, &arena->mapping_);
    // Fault every page in now, not during the first operation.
    if (mapped == ncclSuccess) memset(arena->mapping_.base, 0, bytes);
    char sent[sizeof(name)] = {};  // empty: not created
    if (mapped == ncclSuccess) memcpy(sent, name, sizeof(name));
    for (int peer = 1; peer < nranks; ++peer)
      CHORUS_CHECK(bootstrap.send(peer, kArenaNameTag, sent, sizeof(sent)));
    if (mapped != ncclSuccess) return mapped;
  } else {
    CHORUS_CHECK(bootstrap.recv(0, kArenaNameTag, name, sizeof(name)));
    name[sizeof(name) - 1] = '\0';
    if (name[0] == '\0')
      CHORUS_FAIL(ncclSystemError, "rank 0 could not create the node arena (%zu bytes; its log "
                  "says why)", bytes);
    mapped = mapShmSegment(name, bytes, false, &arena->mapping_);
  }
  std::vector<uint8_t> ok(static_cast<size_t>(nranks));
  ok[static_cast<size_t>(rank)] = mapped == ncclSuccess;
  const ncclResult_t gathered = bootstrap.allGather(ok.data(), 1);
  if (rank == 0) shm_unlink(name);  // every rank holds it now (or init failed)
  CHORUS_CHECK(mapped);
  CHORUS_CHECK(gathered);
  for (int r = 0; r < nranks; ++r)
    if (!ok[static_cast<size_t>(r)])
      CHORUS_FAIL(ncclSystemError, "rank %d could not map the node arena (its log says why)", r);
  arena->slots_ = static_cast<ArenaRankSlot*>(arena->mapping_.base);
  arena->synced_ =
      reinterpret_cast<uint32_t*>(static_cast<char*>(arena->mapping_.base) + rankSlotsBytes);
  arena->staging_ = static_cast<char*>(arena->mapping_.base) + rankSlotsBytes + syncedBytes;
  arena->roundSlots_ = arena->staging_ + stagingBytes;
  TRACE(kLogShm, "rank %d: node arena %s, %zu bytes", rank, name, bytes);
  *out = std::move(arena);
  return ncclSuccess;
}

}  // namespace chorus
