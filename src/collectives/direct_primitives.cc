#include "collectives/direct_primitives.h"

#include <algorithm>
#include <cstring>

#include "collectives/datatypes.h"
#include "common/cpu_hints.h"
#include "common/deadline.h"
#include "common/result.h"
#include "transport/fifo_host_wait.h"

namespace chorus {
namespace {

// Wrap-around comparison of phase counters.
bool reached(uint32_t phase, uint32_t target) { return static_cast<int32_t>(phase - target) >= 0; }

// How many rounds ahead a rank asks for its operation line (see exchange):
// far enough for a cache-line transfer to finish, far from the oldest line
// a peer running behind may still be reading.
constexpr int kLinePrefetchRounds = 8;
static_assert(kLinePrefetchRounds < kArenaLines / 2, "prefetch far from the oldest line in use");
// ...and of that line's slot, at most this much (2 KiB gained nothing over
// 256 B for 4 ranks' Broadcasts of 64 B to 8 KiB).
constexpr size_t kSlotPrefetchBytes = 256;

// A publisher that has run a whole arena of lines ahead of its readers
// waits until they are this many rounds further, not just one: waiting
// line by line, it read their counters every round, each of their stores
// then waited for the counter's cache line to come back, and both sides
// ran at the reader's slowed pace (2 ranks, 8-byte Broadcast, medians of 8
// alternated runs of best-of-3 passes: 0.193 -> 0.160 us; Open MPI 0.168).
// It watches the readers' line of that round, written once, rather than
// their phase counter, written every round.
constexpr uint64_t kReleaseSlackRounds = 64;
static_assert(kReleaseSlackRounds < kArenaLines - 1, "the line of a round before this one");
// ...for at most this long; after that, only as far as the line it needs.
constexpr double kReleaseSlackSeconds = 20e-6;

// How far a reader that caught up with its publisher lets it run ahead (see
// stepBack), how often it looks, and for how long at most.
constexpr uint32_t kStepBackRounds = 32;
static_assert(kStepBackRounds < kArenaLines / 2, "a line the publisher may write next");
constexpr int kStepBackPollPauses = 8;
constexpr double kStepBackSeconds = 10e-6;

// Only one-way rounds use the whole slot (kArenaSlotBytes): there the
// publisher runs ahead of its readers (4 ranks on 2 cores, 8 KiB Broadcast:
// 11.7 -> 1.2 us). A round in which every rank publishes meets the others
// anyway and gains nothing from that, and a slot touches colder memory than
// a staging area used again every other round (2 ranks, 4 KiB AllGather:
// 0.96 -> 1.08 us through 8 KiB slots): it uses kArenaMeetingSlotBytes.
static_assert(kArenaMeetingSlotBytes <= kArenaSlotBytes, "a part of the slot");

// One-way messages (Broadcast, Reduce) up to this size run in rounds of one
// slot each instead of one round through a staging area: a slot goes with
// its operation line, so the publisher fills the next slots while its
// readers empty this one, where two staging areas let it run one round
// ahead at most. Staged Broadcast, 2 ranks: 16 KiB 2.3-2.6 -> 1.25-1.28 us,
// 64 KiB 5.5-6.8 -> 5.1-5.3; 4 ranks on 2 cores: 16 KiB 5.7-5.9 -> 2.5-3.2,
// 64 KiB 12.0-13.4 -> 8.9-10.7. Larger messages lose by the many rounds
// (2 ranks, 128 KiB: 9.6-10.1 -> 11.9-13.9 us).
constexpr size_t kSlotRoundsUpTo = 64 * 1024;

// How much of a block a rank writes into a peer's output between checks
// that the peer is still in the operation (see copyTo).
constexpr size_t kWriteCheckBytes = size_t{4} << 20;

}  // namespace

DirectPrims::DirectPrims(DirectState* state, int rank, int nranks, DirectMode mode,
                         const DirectOpShape& shape, const void* input, void* output,
                         const RedOpArgs& op)
    : state_(state),
      rank_(rank),
      nranks_(nranks),
      shared_(mode != DirectMode::Staged),
      crossMemory_(mode == DirectMode::CrossMemory),
      shape_(shape),
      input_(static_cast<const char*>(input)),
      output_(static_cast<char*>(output)),
      op_(op),
      elemSize_(elementSize(shape.type)),
      elemShift_(elemSize_ == 0 ? 0 : __builtin_ctzll(elemSize_)) {}

size_t DirectPrims::roundElems(size_t blocks, bool oneWay) const {
  if (shared_) return SIZE_MAX;
  size_t bytes = oneWay && state_->oneWayRoundBytes > 0
                     ? std::min(state_->oneWayRoundBytes, state_->roundBytes)
                     : state_->roundBytes;
  // A one-way message of a few slots runs in rounds of one slot each (see
  // kSlotRoundsUpTo).
  if (oneWay && state_->mover->synchronous() && state_->arena->roundSlotBytes() > 0 &&
      shape_.count * elemSize_ <= kSlotRoundsUpTo)
    bytes = std::min(bytes, std::min(state_->arena->roundSlotBytes(), kArenaSlotBytes));
  // Element sizes are powers of two, and most rounds have one block: no
  // division on a tiny operation's path (a dependent one takes ~7 ns here).
  // floor(floor(a / b) / c) == floor(a / (b * c)).
  const size_t elems = bytes >> elemShift_;
  return std::max<size_t>(1, blocks > 1 ? elems / blocks : elems);
}

size_t DirectPrims::gatherRoundElems() const {
  const size_t piece = roundElems(1);
  if (shared_ || state_->roundReadBytes == 0) return piece;
  const size_t reads = state_->roundReadBytes / (static_cast<size_t>(nranks_) * elemSize_);
  return std::max<size_t>(1, std::min(piece, reads));
}

void DirectPrims::shareBuffers(const ArenaBufferRef& input, const ArenaBufferRef& output) {
  if (shared_ && !crossMemory_) return;  // peers reach every buffer in place already
  lending_ = true;
  // In CrossMemory mode the line holds two refs or two addresses.
  if (crossMemory_ && (input.id == 0 || output.id == 0)) return;
  lentInput_ = input;
  lentOutput_ = output;
}

ncclResult_t DirectPrims::arrive(uint32_t* seq) {
  // What this rank announces (staged pieces, published results, the end of
  // its reads from peers' staging areas) must be complete first.
  CHORUS_CHECK(state_->mover->settle());
  ArenaRankSlot& mine = state_->arena->slot(rank_);
  ++state_->phase;
  if (seq != nullptr) __atomic_store_n(seq, state_->phase, __ATOMIC_RELEASE);  // publishes the line
  __atomic_store_n(&mine.phase, state_->phase, __ATOMIC_RELEASE);  // and the staging area
  wakeSleepers(&mine.phase, &mine.sleepers);
  return ncclSuccess;
}

ncclResult_t DirectPrims::waitFor(int peers, uint32_t target, const char* what) {
  NodeArena& arena = *state_->arena;
  for (int r = 0; r < nranks_; ++r) {
    if (r == rank_ || (peers != kAllPeers && peers != r)) continue;
    // Phases only grow: what was seen before may already answer, and then
    // the peer's counter (a cache line it keeps writing) is not read.
    uint32_t& seen = state_->seenPhase[r];
    if (reached(seen, target)) continue;
    ArenaRankSlot& peer = arena.slot(r);
    CHORUS_CHECK(waitUntil(&peer.phase, &peer.sleepers, state_->waits[r], what, [&] {
      seen = __atomic_load_n(&peer.phase, __ATOMIC_ACQUIRE);
      return reached(seen, target);
    }));
  }
  return ncclSuccess;
}

ncclResult_t DirectPrims::waitForLineRelease(uint32_t target, uint64_t slackLine) {
  const uint32_t slackTarget = state_->roundPhase[slackLine];
  for (int r = 0; r < nranks_; ++r) {
    if (r == rank_) continue;
    // Only a publisher that a peer really keeps waiting, not one whose view
    // of the peer's phase is old, waits the slack (see kReleaseSlackRounds).
    uint32_t& seen = state_->seenPhase[r];
    if (reached(seen, target)) continue;
    ArenaRankSlot& peer = state_->arena->slot(r);
    seen = __atomic_load_n(&peer.phase, __ATOMIC_ACQUIRE);
    if (reached(seen, target)) continue;
    // A peer that stops short of the slack (it waits for what this rank
    // does next) is waited for as far as the line only, once the slack's
    // time is up: a publisher may still run kArenaLines - 1 rounds ahead.
    const uint32_t* slackSeq = &peer.lines[slackLine].seq;
    const Deadline patience = Deadline::after(kReleaseSlackSeconds);
    CHORUS_CHECK(waitUntil(&peer.phase, &peer.sleepers, state_->waits[r],
                           "waiting for a line and its slot to be released by", [&] {
                             if (reached(__atomic_load_n(slackSeq, __ATOMIC_ACQUIRE), slackTarget))
                               return true;
                             if (!patience.expired()) return false;
                             seen = __atomic_load_n(&peer.phase, __ATOMIC_ACQUIRE);
                             return reached(seen, target);
                           }));
  }
  return ncclSuccess;
}

ncclResult_t DirectPrims::waitForLines(int peers, int line, uint32_t target, const char* what) {
  for (int r = 0; r < nranks_; ++r) {
    if (r == rank_ || (peers != kAllPeers && peers != r)) continue;
    // The owner stores the line's sequence before its phase: sleeping on
    // the phase counter misses no update of the line.
    ArenaRankSlot& peer = state_->arena->slot(r);
    const uint32_t* seq = &peer.lines[line].seq;
    CHORUS_CHECK(waitUntil(&peer.phase, &peer.sleepers, state_->waits[r], what,
                           [&] { return reached(__atomic_load_n(seq, __ATOMIC_ACQUIRE), target); }));
  }
  return ncclSuccess;
}

void DirectPrims::stepBack(int peers, uint32_t target) {
  // A reader right behind its publisher polls the line the publisher is
  // about to write, and its hardware prefetcher fetches the lines after it,
  // which the publisher asked for ahead (exchange's prefetchForWrite): each
  // of the publisher's stores then waits for its line to come back, and
  // both run at one cache-line round trip per operation, a state they stay
  // in (2 ranks, 8-byte Broadcast: 0.15-0.2 us against 0.06-0.09 us with
  // the publisher ahead). So a reader that finds itself there lets the
  // publisher run ahead first, touching only the line kStepBackRounds on.
  // A publisher slower than that (the caller does other work between
  // operations) is left alone for a while.
  if (state_->stepBackRest > 0) {
    --state_->stepBackRest;
    return;
  }
  for (int r = 0; r < nranks_; ++r) {
    if (r == rank_ || (peers != kAllPeers && peers != r)) continue;
    const ArenaRankSlot& peer = state_->arena->slot(r);
    if (reached(__atomic_load_n(&peer.lines[line_].seq, __ATOMIC_ACQUIRE), target)) continue;
    const uint32_t* ahead = &peer.lines[(line_ + kStepBackRounds) % kArenaLines].seq;
    const Deadline deadline = Deadline::after(kStepBackSeconds);
    for (;;) {
      for (int i = 0; i < kStepBackPollPauses; ++i) cpuRelax();
      // Phases grow by at least one a round: the line's seq reaches
      // target + kStepBackRounds once the publisher has written it again.
      if (reached(__atomic_load_n(ahead, __ATOMIC_ACQUIRE), target + kStepBackRounds)) break;
      if (deadline.expired()) {
        state_->stepBackRest = kArenaLines;
        return;
      }
    }
  }
}

ncclResult_t DirectPrims::arriveAndWait(const char* what) {
  CHORUS_CHECK(arrive());
  return waitFor(kAllPeers, state_->phase, what);
}

ncclResult_t DirectPrims::exchange(const RoundPieces& pieces, bool contribute, int readsFrom) {
  const uint64_t round = state_->rounds++;
  line_ = static_cast<int>(round % kArenaLines);
  parity_ = static_cast<int>(round % kArenaParities);
  round_ = pieces;
  // Small rounds travel with their line (in it, or in its slot): they need
  // no staging area, so a publisher may run as far ahead as the lines allow.
  // The host mover only: a device copy would have to reach the arena.
  const size_t roundBytes = pieces.count * pieces.stagedPieces() * elemSize_;
  const bool small = !shared_ && state_->mover->synchronous();
  // Every rank of a one-way round knows it is one: it either publishes only
  // or reads only.
  const bool oneWay = !contribute || readsFrom == kNoPeer;
  inline_ = small && roundBytes <= kArenaInlineBytes;
  const size_t slotBytes = std::min(state_->arena->roundSlotBytes(),
                                    oneWay ? kArenaSlotBytes : kArenaMeetingSlotBytes);
  slotted_ = small && !inline_ && roundBytes <= slotBytes;
  const bool withLine = inline_ || slotted_;
  // Rounds that copy one publisher's data (Broadcast's readers). A Reduce
  // root reduces what it reads and stays behind its publishers by itself
  // (2 ranks, 8 bytes: stepping back there made it 0.13-0.15 -> 0.14-0.18 us).
  const bool onlyReads = withLine && !contribute && readsFrom != kNoPeer && readsFrom != kAllPeers;
  state_->readingStreak = onlyReads ? state_->readingStreak + 1 : 0;
  // Peers are done with a line (and its slot) once they have started the
  // round after the one it served (kArenaLines - 1 rounds ago), and with a
  // staging area once they have started the previous round.
  const uint64_t released = withLine ? round + 1 : round + kArenaLines - 1;
  const uint32_t releaseTarget = state_->roundPhase[released % kArenaLines];
  if (withLine)
    CHORUS_CHECK(waitForLineRelease(releaseTarget, (released + kReleaseSlackRounds) % kArenaLines));
  else
    CHORUS_CHECK(waitFor(kAllPeers, releaseTarget, "waiting for a staging area to be released by"));
  // Our line of a few rounds ahead was last read by the peers: its transfer
  // back starts now, so that its stores then do not wait for it (a waiting
  // store fills the store buffer and stalls a Broadcast root, which would
  // run at one cache-line round trip per operation).
  prefetchForWrite(&state_->arena->slot(rank_).lines[(line_ + kLinePrefetchRounds) % kArenaLines]);
  // A rank that only publishes (it runs ahead) asks for the start of that
  // line's slot too, which its readers last read: otherwise its copy into
  // the slot waits for each line (4 ranks on 2 cores, Broadcast of 64 B:
  // 0.39-0.42 -> 0.20-0.22 us, 1 KiB 0.48-0.53 -> 0.35-0.39; 2 ranks, 64 B
  // 0.17-0.22 -> 0.10-0.15). The rest of the copy then streams.
  if (slotted_ && readsFrom == kNoPeer) {
    const char* next = state_->arena->roundSlot(rank_, (line_ + kLinePrefetchRounds) % kArenaLines);
    for (size_t at = 0; at < std::min(roundBytes, kSlotPrefetchBytes); at += 64)
      prefetchForWrite(next + at);
  }
  CHORUS_CHECK(publishRound(pieces, contribute));
  CHORUS_CHECK(arrive(&lineOf(rank_).seq));
  state_->roundPhase[line_] = state_->phase;
  // A rank that only publishes (a Broadcast root, Reduce's other ranks)
  // goes on at once; its readers check its record.
  if (readsFrom == kNoPeer) return ncclSuccess;
  // Only within a run of such rounds: a lone operation is not held back.
  if (state_->readersStepBack && state_->readingStreak > 1) stepBack(readsFrom, state_->phase);
  CHORUS_CHECK(waitForLines(readsFrom, line_, state_->phase, "waiting to start an operation with"));
  CHORUS_CHECK(checkRecords(readsFrom));
  return resolveLent(readsFrom);
}

ncclResult_t DirectPrims::publishRound(const RoundPieces& pieces, bool contribute) {
  ArenaOpLine& line = lineOf(rank_);
  line.kind = static_cast<int8_t>(shape_.kind);
  line.type = static_cast<int8_t>(shape_.type);
  line.redop = static_cast<int8_t>(shape_.redop);
  line.root = shape_.root;
  line.count = shape_.count;
  line.scalar = op_.scalar;
  if (shared_) {
    const bool lent = lentInput_.id != 0;  // both sides (shareBuffers)
    line.sharing = static_cast<uint8_t>((input_ == output_ ? kLineInPlace : 0) |
                                        (lent ? kLineLent : 0));
    if (lent) {
      line.inPlace.input = lentInput_;
      line.inPlace.output = lentOutput_;
    } else {
      line.buffers.input = reinterpret_cast<uint64_t>(input_);
      line.buffers.output = reinterpret_cast<uint64_t>(output_);
    }
    return ncclSuccess;
  }
  if (lends()) {
    line.inPlace.input = lentInput_;
    line.inPlace.output = lentOutput_;
  }
  // A lent input is read where it is.
  if (!contribute || (lends() && lentInput_.id != 0)) return ncclSuccess;
  const size_t bytes = pieces.count * elemSize_;
  if (bytes * pieces.stagedPieces() > state_->stageBytes)
    CHORUS_FAIL(ncclInternalError, "rank %d: a round of %zu bytes does not fit the %zu-byte "
                "staging area", rank_, bytes * pieces.stagedPieces(), state_->stageBytes);
  DataMover& mover = *state_->mover;
  char* staging = stagedBase(rank_);
  for (size_t b = 0, place = 0; b < pieces.blocks; ++b) {
    if (pieces.ownPieceUnstaged && b == static_cast<size_t>(rank_)) continue;
    const size_t begin = pieces.base + b * pieces.stride, end = begin + pieces.count;
    // Up to two parts: before and after the skipped range.
    const size_t cut1 = std::min(std::max(pieces.skipBegin, begin), end);
    const size_t cut2 = std::min(std::max(pieces.skipEnd, cut1), end);
    char* to = staging + place++ * bytes;
    CHORUS_CHECK(mover.copy(to, input_ + begin * elemSize_, (cut1 - begin) * elemSize_));
    CHORUS_CHECK(mover.copy(to + (cut2 - begin) * elemSize_, input_ + cut2 * elemSize_,
                            (end - cut2) * elemSize_));
  }
  return ncclSuccess;
}

ncclResult_t DirectPrims::checkRecords(int peers) const {
  const ArenaOpLine& mine = lineOf(rank_);
  for (int r = 0; r < nranks_; ++r) {
    if (r == rank_ || (peers != kAllPeers && peers != r)) continue;
    const ArenaOpLine& other = lineOf(r);
    if (other.kind != mine.kind || other.count != mine.count || other.type != mine.type ||
        other.root != mine.root || other.redop != mine.redop)
      CHORUS_FAIL(ncclInvalidUsage,
                  "rank %d runs an operation (kind %d, count %llu, type %d, root %d, op %d) that "
                  "differs from rank %d's (kind %d, count %llu, type %d, root %d, op %d): do all "
                  "ranks call the same collectives in the same order with the same arguments?",
                  rank_, mine.kind, static_cast<unsigned long long>(mine.count), mine.type,
                  mine.root, mine.redop, r, other.kind, static_cast<unsigned long long>(other.count),
                  other.type, other.root, other.redop);
  }
  return ncclSuccess;
}

ncclResult_t DirectPrims::resolveLent(int peers) {
  if (!lends() && !crossMemory_) return ncclSuccess;
  for (int r = 0; r < nranks_; ++r) {
    if (r == rank_ || (peers != kAllPeers && peers != r)) continue;
    const ArenaOpLine& line = lineOf(r);
    const char* input = nullptr;
    const char* output = nullptr;
    state_->peerInput[r] = state_->peerOutput[r] = nullptr;
    if (shared_ && !lentInPlace(r)) continue;  // its line holds addresses
    if ((line.inPlace.input.id != 0 || line.inPlace.output.id != 0) && state_->registered == nullptr)
      CHORUS_FAIL(ncclInternalError, "rank %d lends its buffers, which rank %d cannot reach", r,
                  rank_);
    if (line.inPlace.input.id != 0)
      CHORUS_CHECK(state_->registered->resolve(r, line.inPlace.input, &input));
    if (line.inPlace.output.id != 0)
      CHORUS_CHECK(state_->registered->resolve(r, line.inPlace.output, &output));
    state_->peerInput[r] = input;
    state_->peerOutput[r] = output;
  }
  return ncclSuccess;
}

char* DirectPrims::stagedBase(int r) const {
  if (inline_) return lineOf(r).inlineData;
  if (slotted_) return state_->arena->roundSlot(r, line_);
  if (!state_->deviceStaging.empty()) return state_->deviceStaging[r * kArenaParities + parity_];
  return state_->arena->staging(r, parity_);
}

const char* DirectPrims::dataOf(int r, Side side, size_t element) const {
  if (r == rank_)
    return (side == Side::Input ? input_ : output_) + element * elemSize_;
  if (lentInPlace(r))
    return (side == Side::Input ? state_->peerInput[r] : state_->peerOutput[r]) + element * elemSize_;
  if (shared_) {
    const ArenaOpLine& line = lineOf(r);
    return reinterpret_cast<const char*>(side == Side::Input ? line.buffers.input
                                                             : line.buffers.output) +
           element * elemSize_;
  }
  if (lends()) {
    // A lent output is indexed as the input is: only AllReduce reads peers'
    // outputs, and there the two have the same layout.
    const char* lent = side == Side::Input ? state_->peerInput[r] : state_->peerOutput[r];
    if (lent != nullptr) return lent + element * elemSize_;
  }
  return stagedBase(r) + stagedPosition(r, element) * elemSize_;
}

size_t DirectPrims::stagedPosition(int r, size_t element) const {
  // Piece b of the round holds input elements [base + b*stride, +count); an
  // unstaged own piece leaves no gap.
  const size_t offset = element - round_.base;
  const size_t block = round_.stride == 0 ? 0 : offset / round_.stride;
  const size_t place = round_.ownPieceUnstaged && block > static_cast<size_t>(r) ? block - 1 : block;
  return place * round_.count + (offset - block * round_.stride);
}

RedOpArgs DirectPrims::opOf(int r) const {
  // PreMulSum scales each rank's input by that rank's own scalar.
  RedOpArgs op = op_;
  if (op.kind == RedOpKind::PreMulSum && r != rank_) op.scalar = lineOf(r).scalar;
  return op;
}

ncclResult_t DirectPrims::inputPiece(int r, size_t element, size_t n, int copy, const char** at) {
  const char* in = dataOf(r, Side::Input, element);
  if (!throughKernel(r)) {
    *at = in;
    return ncclSuccess;
  }
  // The kernel copies at once: a reduction still queued on the mover may
  // read this copy.
  CHORUS_CHECK(state_->mover->settle());
  char* piece = state_->peerCopies + static_cast<size_t>(copy) * state_->chunkBytes;
  CHORUS_CHECK(peerCopyResult(r, "reading the input of",
                              readProcess(state_->waits[r].peerPid, r, piece,
                                          reinterpret_cast<uint64_t>(in), n * elemSize_)));
  *at = piece;
  return ncclSuccess;
}

ncclResult_t DirectPrims::reduce(size_t src, size_t dst, size_t n, bool publish) {
  char* accumulator = state_->scratch;
  const size_t chunk = std::max<size_t>(1, state_->chunkBytes / elemSize_);
  // Without a pre-operation the first two inputs combine in one pass.
  const bool pairFirst = op_.kind != RedOpKind::PreMulSum;
  const int last = nranks_ - 1;
  DataMover& mover = *state_->mover;
  for (size_t i = 0, m; i < n; i += m) {
    m = std::min(chunk, n - i);
    char* to = out(dst + i);
    const char* first;
    const char* second;
    int r;
    CHORUS_CHECK(inputPiece(0, src + i, m, 0, &first));
    if (pairFirst) {
      CHORUS_CHECK(inputPiece(1, src + i, m, 1, &second));
      CHORUS_CHECK(mover.reduceCopy(op_, first, second, true, last == 1 ? to : accumulator,
                                    last == 1, m));
      r = 2;
    } else {
      CHORUS_CHECK(mover.reduceCopy(opOf(0), nullptr, first, true, accumulator, false, m));
      r = 1;
    }
    for (; r <= last; ++r) {
      CHORUS_CHECK(inputPiece(r, src + i, m, 0, &second));
      CHORUS_CHECK(mover.reduceCopy(opOf(r), accumulator, second, true,
                                    r == last ? to : accumulator, r == last, m));
    }
    if (publish && shared_) {
      for (int step = 1; step < nranks_; ++step)
        CHORUS_CHECK(copyTo((rank_ + step) % nranks_, Side::Output, dst + i, dst + i, m));
      continue;
    }
    // Peers read a lent output where it is.
    if (publish && !(lends() && lentOutput_.id != 0))
      CHORUS_CHECK(mover.copy(stagedBase(rank_) + stagedPosition(rank_, src + i) * elemSize_, to,
                              m * elemSize_));
  }
  return ncclSuccess;
}

ncclResult_t DirectPrims::copyFrom(int peer, Side side, size_t src, size_t dst, size_t n) {
  if (n == 0) return ncclSuccess;
  const char* from = dataOf(peer, side, src);
  char* to = out(dst);
  // An address in another process may equal one of ours (processes forked
  // from one parent allocate alike): it is always read. (It needs no
  // settle: no queued copy of this rank writes where a peer's block lands.)
  if (throughKernel(peer))
    return peerCopyResult(peer, "reading the buffer of",
                          readProcess(state_->waits[peer].peerPid, peer, to,
                                      reinterpret_cast<uint64_t>(from), n * elemSize_));
  if (from == to) return ncclSuccess;
  return copyIntoOutput(to, from, n * elemSize_);
}

ncclResult_t DirectPrims::copyIntoOutput(char* to, const char* from, size_t bytes) {
  if (outputPastCache_) return state_->mover->copyPastCache(to, from, bytes);
  return state_->mover->copy(to, from, bytes);
}

ncclResult_t DirectPrims::peerCopyResult(int peer, const char* what, ncclResult_t result) const {
  // A peer that left the operation may have freed its buffer: that is the
  // failure to report, not the memory the kernel could not reach.
  if (result != ncclSuccess && otherEndLost(state_->waits[peer]))
    return waitFailure(state_->waits[peer], what, false);
  return result;
}

ncclResult_t DirectPrims::copyTo(int peer, Side side, size_t src, size_t dst, size_t n) {
  if (!shared_)
    CHORUS_FAIL(ncclInternalError, "rank %d: copyTo needs peers' buffers in place", rank_);
  const char* from = dataOf(rank_, side, src);
  const uint64_t to = reinterpret_cast<uint64_t>(dataOf(peer, Side::Output, dst));
  const bool kernel = throughKernel(peer);
  if (!kernel && reinterpret_cast<const char*>(to) == from) return ncclSuccess;
  // The kernel copies at once: what the mover still has queued (the
  // reduction of this very piece) must be written first.
  if (kernel) CHORUS_CHECK(state_->mover->settle());
  const size_t bytes = n * elemSize_;
  for (size_t done = 0, piece; done < bytes; done += piece) {
    // Unlike a read, a write lands in the peer's memory: a peer that left
    // the operation (aborted, failed) may be using that memory again, so
    // the writer stops as soon as it sees that. (A process that has exited
    // raises no flag, but then the kernel refuses the write.)
    if (otherEndFlagged(state_->waits[peer]))
      return waitFailure(state_->waits[peer], "writing into the output of", false);
    piece = std::min(kWriteCheckBytes, bytes - done);
    if (kernel)
      CHORUS_CHECK(peerCopyResult(peer, "writing into the output of",
                                  writeProcess(state_->waits[peer].peerPid, peer, to + done,
                                               from + done, piece)));
    else
      CHORUS_CHECK(copyIntoOutput(reinterpret_cast<char*>(to + done), from + done, piece));
  }
  return ncclSuccess;
}

bool DirectPrims::inPlaceAt(int r) const {
  if (r == rank_) return input_ == output_;
  return (lineOf(r).sharing & kLineInPlace) != 0;
}

ncclResult_t DirectPrims::barrier() { return arriveAndWait("waiting in an operation for"); }

ncclResult_t DirectPrims::finish() {
  // Staging in the arena outlasts every reader; device staging is freed
  // with its communicator, and lent buffers belong to the caller, so there
  // the ranks meet once more (or, staged on the host, a lender waits for
  // its readers), and no peer reads them after the operation. Either way
  // the output is complete when the operation ends.
  if (shared_ || !state_->deviceStaging.empty())
    return arriveAndWait("waiting to finish an operation with");
  if (lending_) {
    // Staged rounds where ranks may lend: every rank says it is done (so
    // that phases stay in step), but only a rank whose buffers peers read
    // waits for them; the others, most often every rank (nothing
    // registered), go on at once (2 ranks, 4 KiB AllGather, nothing
    // registered: 1.43-1.62 us, against 1.70-2.09 when every rank waited).
    CHORUS_CHECK(arrive());
    if (lentInput_.id == 0 && lentOutput_.id == 0) return ncclSuccess;
    return waitFor(kAllPeers, state_->phase, "waiting, to take back its lent buffers, for");
  }
  return state_->mover->settle();
}

}  // namespace chorus
