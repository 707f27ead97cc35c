// The primitives of direct_collectives.h, for ranks that all live on one
// host: they meet in a NodeArena and read each other's data there, instead
// of passing it around a ring. The data may be host or CUDA memory: every
// copy and reduction goes through the communicator's DataMover, and the
// primitives settle it before each meeting and at the end of an operation.
//
// Three modes (DirectMode):
//   Staged  (ranks in several processes) an operation runs in rounds; in
//           each, every rank copies a piece of its input into its staging
//           area (in the arena, or in device memory for CUDA buffers; or in
//           its operation line when it fits there), and peers read it (and
//           results published there).
//           A round's pieces fit in cache, so the data crosses memory about
//           once in and once out.
//   Shared  (every rank in this process; not for one-shot AllReduce) ranks
//           publish their buffer addresses and read each other's buffers
//           (or write their outputs) directly; one round, and a last
//           meeting so that buffers outlive their readers and writers.
//   CrossMemory  (host ranks in several processes, where every rank may
//           read every peer's memory; not for one-shot AllReduce) as
//           Shared, but a peer's buffer is read (and written) through the
//           kernel (transport/shm/cross_memory.h): one copy instead of two.
//           A reduction reads a peer's piece into a cached copy first.
// In Staged mode a rank may also lend its input and output to its peers
// (shareBuffers: registered memory that peers map, see RegisteredBuffers;
// on the host only for operations of at least DirectState::lendStagedBytes): it
// stages nothing from a lent side and its peers read that side in place,
// as in Shared mode; the rounds stay the same.
// In CrossMemory mode a rank whose input and output are both registered
// host blocks that every peer maps lends them instead of their addresses:
// its peers then read and write them in place, as in Shared mode, and the
// kernel copies only for peers that did not lend.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "collectives/data_mover.h"
#include "collectives/reduce_ops.h"
#include "nccl.h"
#include "transport/fifo_host.h"
#include "transport/shm/cross_memory.h"
#include "transport/shm/node_arena.h"

namespace chorus {

// Buffers that ranks of other processes reach in place instead of staged
// copies or copies through the kernel (memory registered with
// ncclCommRegister: device memory mapped through CUDA IPC, host blocks of
// ncclMemAlloc). Given by the runtime; absent where buffers cannot be lent.
class RegisteredBuffers {
 public:
  virtual ~RegisteredBuffers() = default;
  // The registration of this rank that holds [buffer, buffer + bytes), or a
  // reference with id 0.
  virtual ArenaBufferRef find(const void* buffer, size_t bytes) = 0;
  // Where rank `peer`'s lent buffer `ref` (id != 0) starts in this process.
  virtual ncclResult_t resolve(int peer, const ArenaBufferRef& ref, const char** start) = 0;
};

// The per-communicator state the direct primitives carry between operations.
struct DirectState {
  NodeArena* arena = nullptr;
  std::vector<WaitContext> waits;  // per rank, for waiting on its phase counter
  bool allInThisProcess = false;   // Shared mode possible
  uint32_t phase = 0;              // this rank's meetings so far (mirrors its arena slot)
  std::vector<uint32_t> seenPhase; // per rank: the latest phase read from its slot
  uint64_t rounds = 0;             // rounds run through the arena (line = rounds % kArenaLines)
  uint32_t roundPhase[kArenaLines] = {};  // `phase` when round (index) last started
  size_t stageBytes = 0;           // one staging area
  size_t roundBytes = 0;           // the most one round stages per rank (<= stageBytes)
  size_t oneWayRoundBytes = 0;     // the same for rounds where only one side publishes
  // The most one round may read per rank, so that host rounds stay in
  // cache (0: no limit; copies on devices do not go through a CPU cache).
  // Only AllGather reads more than it stages: every rank's piece.
  size_t roundReadBytes = 0;
  char* scratch = nullptr;         // an accumulator of chunkBytes (in the movers' memory)
  size_t chunkBytes = 0;
  // CrossMemory mode: two buffers of chunkBytes, where a reduction reads
  // peers' pieces through the kernel (a cached copy instead of a staged one).
  char* peerCopies = nullptr;
  DataMover* mover = &hostMover();
  // Staging areas per rank and parity, when they are not the arena's (CUDA
  // memory, mapped from every rank's allocation); empty otherwise.
  std::vector<char*> deviceStaging;
  RegisteredBuffers* registered = nullptr;  // lent buffers, where ranks may lend them
  // Staged operations lend buffers only from this many bytes per rank
  // (input or output, the larger; one-way: Broadcast, Reduce): 0 on
  // devices, whose operations end with a meeting anyway. On the host the
  // wait at the end that lending needs costs more than it saves below
  // (runtime/direct_setup.cc). SIZE_MAX: never.
  size_t lendStagedBytes = SIZE_MAX;
  size_t lendStagedOneWayBytes = SIZE_MAX;
  // Per rank, this round: where its lent input and output start, or null
  // when that side is staged.
  std::vector<const char*> peerInput, peerOutput;
  // Whether a reader that catches up with its publisher steps back (see
  // DirectPrims::stepBack): only when every rank has a core, since it spins.
  bool readersStepBack = false;
  uint32_t readingStreak = 0;  // one-way rounds in a row this rank only read
  uint32_t stepBackRest = 0;   // rounds that skip stepping back after one timed out
  // CrossMemory mode may run: a peer's buffers are then read in the process
  // waits[peer].peerPid names (0: this one, where they are read directly).
  bool crossMemory = false;
  size_t cmaBytes = 0;           // the smallest output per rank that uses it
  size_t cmaOneWayBytes = 0;     // ...of a Broadcast or Reduce
  size_t cmaMaxBytes = 0;        // the largest output per rank that uses it
  size_t cmaReduceMaxBytes = 0;  // the largest input per rank of a reduction that uses it
  size_t streamBytes = 0;  // the smallest output copied into past the caches (0: none)
};

enum class DirectMode { Staged, Shared, CrossMemory };

// What every rank must agree on for one operation (checked at each meeting).
struct DirectOpShape {
  int kind;
  size_t count;
  ncclDataType_t type;
  int root;
  RedOpKind redop;
};

// Which part of the input a round stages: `blocks` pieces of `count`
// elements, piece b starting at element base + b * stride, except input
// elements [skipBegin, skipEnd), which only this rank reads (from its own
// buffer; their place in the staging area stays, for results it publishes
// there). With `ownPieceUnstaged` (blocks == nranks), piece `rank` of each
// rank is read by that rank only and takes no place: the staged pieces are
// packed, so a round stages one piece less (2 ranks, 64-byte ReduceScatter:
// 32 bytes, which travel in the line).
struct RoundPieces {
  size_t base;
  size_t count;
  size_t blocks;
  size_t stride;
  size_t skipBegin = 0;
  size_t skipEnd = 0;
  bool ownPieceUnstaged = false;

  // The pieces that take a place in a staging area.
  size_t stagedPieces() const { return blocks - (ownPieceUnstaged ? 1 : 0); }
};

class DirectPrims {
 public:
  enum class Side { Input, Output };

  // Staged mode is required unless every rank is in this process (or may
  // read its peers' processes), and for one-shot operations, which read all
  // inputs while ranks already write their outputs.
  DirectPrims(DirectState* state, int rank, int nranks, DirectMode mode, const DirectOpShape& shape,
              const void* input, void* output, const RedOpArgs& op);

  // Elements per rank and piece that one round may stage (everything in
  // Shared mode). `oneWay`: a round in which only one side publishes and
  // the other only reads (Broadcast, Reduce).
  size_t roundElems(size_t blocks, bool oneWay = false) const;
  // Elements per piece of a round in which every rank reads every rank's
  // one staged piece (AllGather): roundElems(1), within the read budget.
  size_t gatherRoundElems() const;

  // Where ranks lend (lendsBuffers in runtime/direct_mode.h), on every
  // rank, before the first round: peers may reach
  // this rank's input and/or output (refs with id != 0, from
  // RegisteredBuffers::find; id 0: not lent) in place. Staged mode: each
  // side on its own, and only for algorithms that, like Shared mode, leave
  // what a peer reads untouched until the meeting after it (one-shot
  // AllReduce: only an input that is not its output, and no output).
  // CrossMemory mode: both sides or neither.
  void shareBuffers(const ArenaBufferRef& input, const ArenaBufferRef& output);

  // `readsFrom` of exchange: every peer, none, or else the one rank named.
  static constexpr int kAllPeers = -1;
  static constexpr int kNoPeer = -2;

  // The meeting that starts a round: in Staged mode this rank's pieces are
  // staged first (none unless `contribute`); then it waits for the peers it
  // reads from this round (`readsFrom`) and checks their records against its
  // own.
  ncclResult_t exchange(const RoundPieces& pieces, bool contribute, int readsFrom);
  // output[dst..dst+n) = post( pre(in_0[src..]) (+) ... (+) pre(in_last[src..]) )
  // in rank order, so every rank that computes an element gets the same
  // bits. With `publish`, the result also replaces this rank's staged piece,
  // for peers to copy (Staged), or is written into every peer's output at
  // dst, piece by piece while in cache (Shared, CrossMemory; only where no
  // peer reads those elements of its output or, in place, its input).
  ncclResult_t reduce(size_t src, size_t dst, size_t n, bool publish);
  // A peer's input (as staged) or output (as published) [src..src+n) ->
  // output[dst..]; src counts in input elements of this round.
  ncclResult_t copyFrom(int peer, Side side, size_t src, size_t dst, size_t n);
  // Shared and CrossMemory modes: this rank's input or output [src..src+n)
  // -> peer's output [dst..]; the peer must be among those this round read from. It
  // stops, with the peer's failure, when the peer leaves the operation
  // (looked for every few MiB).
  ncclResult_t copyTo(int peer, Side side, size_t src, size_t dst, size_t n);
  // Copies into this rank's output, and copyTo's into peers' outputs (as
  // large) where not through the kernel, bypass the caches
  // (DataMover::copyPastCache): for outputs much larger than the caches.
  void writeOutputPastCache() { outputPastCache_ = true; }
  // Whether peers' buffers are read (and written) in place: Shared and
  // CrossMemory modes, which run an operation in one round.
  bool sharesBuffers() const { return shared_; }
  // Shared and CrossMemory modes: whether rank r's input is its output
  // (for a peer: from its record, once this round read from it).
  bool inPlaceAt(int r) const;
  // Waits until every rank has reached this point.
  ncclResult_t barrier();
  // Ends the operation: settles the mover; in Shared and CrossMemory modes,
  // with staging outside the arena, and where this rank lent buffers,
  // waits until no rank reads (or writes) our memory any more.
  ncclResult_t finish();

 private:
  char* out(size_t element) const { return output_ + element * elemSize_; }
  // Where rank r's input (or published result) element `element` is.
  const char* dataOf(int r, Side side, size_t element) const;
  // Staged: where input element `element` of this round sits in rank r's
  // staging area.
  size_t stagedPosition(int r, size_t element) const;
  // Staged: where rank r's pieces of this round are (its line or staging area).
  char* stagedBase(int r) const;
  ArenaOpLine& lineOf(int r) const { return state_->arena->slot(r).lines[line_]; }
  // Settles the mover, then publishes the phase (after `seq`, when given:
  // the round's line).
  ncclResult_t arrive(uint32_t* seq = nullptr);
  // Waits until `peers` (kAllPeers or one rank) have reached phase `target`.
  ncclResult_t waitFor(int peers, uint32_t target, const char* what);
  // The release check of a round that travels with its line: waits until
  // every peer has reached phase `target`, or, when one has not, until it
  // has written its line `slackLine` (kReleaseSlackRounds).
  ncclResult_t waitForLineRelease(uint32_t target, uint64_t slackLine);
  // Waits until `peers` have written their line `line` in the round where
  // this rank's phase became `target`.
  ncclResult_t waitForLines(int peers, int line, uint32_t target, const char* what);
  // In a run of one-way rounds, before waitForLines: if a publisher has not
  // yet written this round's line, waits without touching it until the
  // publisher is kStepBackRounds ahead (or a short time passes).
  void stepBack(int peers, uint32_t target);
  // Fills this rank's line (and staging area) for the round.
  ncclResult_t publishRound(const RoundPieces& pieces, bool contribute);
  ncclResult_t checkRecords(int peers) const;
  // Where peers' lent buffers are this round (state_->peerInput/peerOutput).
  ncclResult_t resolveLent(int peers);
  // Whether this round's line carries lent buffers (not data, not
  // addresses): a staged round of an operation where ranks lend.
  bool lends() const { return lending_ && !shared_ && !inline_; }
  // Whether rank r (a peer read this round) lent its buffers in place of
  // their addresses (CrossMemory mode).
  bool lentInPlace(int r) const { return shared_ && (lineOf(r).sharing & kLineLent) != 0; }
  ncclResult_t arriveAndWait(const char* what);
  // A copy into this rank's output or, in place, a peer's (as large): past
  // the caches where writeOutputPastCache asked for it.
  ncclResult_t copyIntoOutput(char* to, const char* from, size_t bytes);
  // `result` of a copy to or from `peer`'s buffer, or the peer's own
  // failure when it has left the operation.
  ncclResult_t peerCopyResult(int peer, const char* what, ncclResult_t result) const;
  // Whether `peer`'s buffer is reached through the kernel: CrossMemory mode,
  // a peer in another process that did not lend its buffers.
  bool throughKernel(int peer) const {
    return crossMemory_ && peer != rank_ && state_->waits[peer].peerPid != 0 && !lentInPlace(peer);
  }
  // Where rank r's input [element, +n) (n <= one chunk) is read from: in
  // place, or, from a peer reached through the kernel, read into peer copy
  // `copy` (0 or 1) first.
  ncclResult_t inputPiece(int r, size_t element, size_t n, int copy, const char** at);
  // The operator for rank r's input (its own PreMulSum scalar).
  RedOpArgs opOf(int r) const;

  DirectState* state_;
  int rank_, nranks_;
  bool shared_;       // peers publish buffer addresses (Shared and CrossMemory)
  bool crossMemory_;  // ...in other processes, read through the kernel
  DirectOpShape shape_;
  const char* input_;
  char* output_;
  RedOpArgs op_;
  size_t elemSize_;
  int elemShift_;  // log2(elemSize_): element sizes are powers of two
  int parity_ = 0;     // staging area of this round
  int line_ = 0;       // operation line of this round
  bool inline_ = false;   // this round's pieces travel in the lines
  bool slotted_ = false;  // ...or in the slots that go with the lines
  RoundPieces round_{};
  bool outputPastCache_ = false;
  ArenaBufferRef lentInput_{}, lentOutput_{};  // what shareBuffers lent (id 0: nothing)
  bool lending_ = false;  // shareBuffers was called: ranks may lend (agreed)
};

}  // namespace chorus
