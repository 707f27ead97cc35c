#include "collectives/direct_host_primitives.h"

#include <algorithm>
#include <cstring>

#include "collectives/datatypes.h"
#include "collectives/reduce_copy.h"
#include "common/result.h"

namespace chorus {
namespace {

// Wrap-around comparison of phase counters.
bool reached(uint32_t phase, uint32_t target) { return static_cast<int32_t>(phase - target) >= 0; }

}  // namespace

DirectHostPrims::DirectHostPrims(DirectState* state, int rank, int nranks, bool staged,
                                 const DirectOpShape& shape, const void* input, void* output,
                                 const RedOpArgs& op)
    : state_(state),
      rank_(rank),
      nranks_(nranks),
      shared_(!staged && state->allInThisProcess),
      shape_(shape),
      input_(static_cast<const char*>(input)),
      output_(static_cast<char*>(output)),
      op_(op),
      elemSize_(elementSize(shape.type)) {}

size_t DirectHostPrims::roundElems(size_t blocks) const {
  if (shared_) return SIZE_MAX;
  return std::max<size_t>(1, state_->roundBytes / (std::max<size_t>(blocks, 1) * elemSize_));
}

void DirectHostPrims::arrive() {
  ArenaRankSlot& mine = state_->arena->slot(rank_);
  __atomic_store_n(&mine.phase, ++state_->phase, __ATOMIC_RELEASE);  // publishes record and staging
  wakeSleepers(&mine.phase, &mine.sleepers);
}

ncclResult_t DirectHostPrims::waitFor(int peers, uint32_t target, const char* what) {
  NodeArena& arena = *state_->arena;
  for (int r = 0; r < nranks_; ++r) {
    if (r == rank_ || (peers != kAllPeers && peers != r)) continue;
    ArenaRankSlot& peer = arena.slot(r);
    CHORUS_CHECK(waitUntil(&peer.phase, &peer.sleepers, state_->waits[r], what, [&] {
      return reached(__atomic_load_n(&peer.phase, __ATOMIC_ACQUIRE), target);
    }));
  }
  return ncclSuccess;
}

ncclResult_t DirectHostPrims::arriveAndWait(const char* what) {
  arrive();
  return waitFor(kAllPeers, state_->phase, what);
}

ncclResult_t DirectHostPrims::exchange(const RoundPieces& pieces, bool contribute, int readsFrom) {
  NodeArena& arena = *state_->arena;
  // This parity's record and staging area last served the round before the
  // previous one; every peer is done with it once it has started the
  // previous round.
  CHORUS_CHECK(waitFor(kAllPeers, state_->lastExchange, "waiting for a staging area to be released by"));
  parity_ = static_cast<int>(state_->rounds++ % kArenaParities);
  round_ = pieces;
  ArenaOpRecord& record = arena.slot(rank_).ops[parity_];
  record.input = reinterpret_cast<uint64_t>(input_);
  record.output = reinterpret_cast<uint64_t>(output_);
  record.count = shape_.count;
  record.kind = shape_.kind;
  record.type = shape_.type;
  record.root = shape_.root;
  record.redop = static_cast<int32_t>(shape_.redop);
  record.scalar = op_.scalar;
  if (!shared_ && contribute) {
    const size_t bytes = pieces.count * elemSize_;
    if (bytes * pieces.blocks > arena.stageBytes())
      CHORUS_FAIL(ncclInternalError, "rank %d: a round of %zu bytes does not fit the %zu-byte "
                  "staging area", rank_, bytes * pieces.blocks, arena.stageBytes());
    char* staging = arena.staging(rank_, parity_);
    for (size_t b = 0; b < pieces.blocks; ++b) {
      const size_t begin = pieces.base + b * pieces.stride, end = begin + pieces.count;
      // Up to two parts: before and after the skipped range.
      const size_t cut1 = std::min(std::max(pieces.skipBegin, begin), end);
      const size_t cut2 = std::min(std::max(pieces.skipEnd, cut1), end);
      char* to = staging + b * bytes;
      memcpy(to, input_ + begin * elemSize_, (cut1 - begin) * elemSize_);
      memcpy(to + (cut2 - begin) * elemSize_, input_ + cut2 * elemSize_, (end - cut2) * elemSize_);
    }
  }
  arrive();
  state_->lastExchange = state_->phase;
  // A rank that only publishes (a Broadcast root, Reduce's other ranks)
  // goes on at once; its readers check its record.
  if (readsFrom == kNoPeer) return ncclSuccess;
  CHORUS_CHECK(waitFor(readsFrom, state_->phase, "waiting to start an operation with"));
  for (int r = 0; r < nranks_; ++r) {
    if (readsFrom != kAllPeers && readsFrom != r) continue;
    const ArenaOpRecord& other = arena.slot(r).ops[parity_];
    if (other.kind != record.kind || other.count != record.count || other.type != record.type ||
        other.root != record.root || other.redop != record.redop)
      CHORUS_FAIL(ncclInvalidUsage,
                  "rank %d runs an operation (kind %d, count %llu, type %d, root %d, op %d) that "
                  "differs from rank %d's (kind %d, count %llu, type %d, root %d, op %d): do all "
                  "ranks call the same collectives in the same order with the same arguments?",
                  rank_, record.kind, static_cast<unsigned long long>(record.count), record.type,
                  record.root, record.redop, r, other.kind,
                  static_cast<unsigned long long>(other.count), other.type, other.root, other.redop);
  }
  return ncclSuccess;
}

const char* DirectHostPrims::dataOf(int r, Side side, size_t element) const {
  if (r == rank_)
    return (side == Side::Input ? input_ : output_) + element * elemSize_;
  if (shared_) {
    const ArenaOpRecord& record = state_->arena->slot(r).ops[parity_];
    return reinterpret_cast<const char*>(side == Side::Input ? record.input : record.output) +
           element * elemSize_;
  }
  return state_->arena->staging(r, parity_) + stagedPosition(element) * elemSize_;
}

size_t DirectHostPrims::stagedPosition(size_t element) const {
  // Piece b of the round holds input elements [base + b*stride, +count).
  const size_t offset = element - round_.base;
  const size_t block = round_.stride == 0 ? 0 : offset / round_.stride;
  return block * round_.count + (offset - block * round_.stride);
}

RedOpArgs DirectHostPrims::opOf(int r) const {
  // PreMulSum scales each rank's input by that rank's own scalar.
  RedOpArgs op = op_;
  if (op.kind == RedOpKind::PreMulSum && r != rank_) op.scalar = state_->arena->slot(r).ops[parity_].scalar;
  return op;
}

ncclResult_t DirectHostPrims::reduce(size_t src, size_t dst, size_t n, bool publish) {
  char* accumulator = state_->scratch;
  const size_t chunk = std::max<size_t>(1, state_->chunkBytes / elemSize_);
  // Without a pre-operation the first two inputs combine in one pass.
  const bool pairFirst = op_.kind != RedOpKind::PreMulSum;
  const int last = nranks_ - 1;
  for (size_t i = 0, m; i < n; i += m) {
    m = std::min(chunk, n - i);
    char* to = out(dst + i);
    int r;
    if (pairFirst) {
      reduceCopy(op_, dataOf(0, Side::Input, src + i), dataOf(1, Side::Input, src + i), true,
                 last == 1 ? to : accumulator, last == 1, m);
      r = 2;
    } else {
      reduceCopy(opOf(0), nullptr, dataOf(0, Side::Input, src + i), true, accumulator, false, m);
      r = 1;
    }
    for (; r <= last; ++r)
      reduceCopy(opOf(r), accumulator, dataOf(r, Side::Input, src + i), true,
                 r == last ? to : accumulator, r == last, m);
    if (publish && !shared_)
      memcpy(state_->arena->staging(rank_, parity_) + stagedPosition(src + i) * elemSize_, to,
             m * elemSize_);
  }
  return ncclSuccess;
}

ncclResult_t DirectHostPrims::copyFrom(int peer, Side side, size_t src, size_t dst, size_t n) {
  if (n == 0) return ncclSuccess;
  const char* from = dataOf(peer, side, src);
  char* to = out(dst);
  if (from != to) memcpy(to, from, n * elemSize_);
  return ncclSuccess;
}

ncclResult_t DirectHostPrims::barrier() { return arriveAndWait("waiting in an operation for"); }

ncclResult_t DirectHostPrims::finish() {
  if (!shared_) return ncclSuccess;
  return arriveAndWait("waiting to finish an operation with");
}

}  // namespace chorus
