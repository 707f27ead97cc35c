// Collectives for ranks of one host that read each other's data directly
// (direct_primitives.h): instead of passing chunks around a ring in
// 2(n-1) steps, every rank reads what it needs from its peers, in rounds
// whose pieces fit the staging areas.
//
// Prims members (offsets and counts in elements of the datatype):
//   roundElems(blocks, oneWay)      elements per piece a round may stage (oneWay:
//                                   only one side publishes, the others read)
//   gatherRoundElems()              the same when every rank reads every
//                                   rank's piece
//   exchange(pieces, contribute, readsFrom)
//                                   stage this rank's pieces (those peers
//                                   read: not pieces.skip*, nor its own piece
//                                   with ownPieceUnstaged), announce them,
//                                   and wait for the peers read this round
//   reduce(src, dst, n, publish)    output[dst..] = (+) over ranks of input_r[src..]
//                                   (publish: for peers to copy, or, buffers
//                                   shared in place, written into theirs)
//   copyFrom(peer, side, src, dst, n)   peer's input/result [src..] -> output[dst..]
//   copyTo(peer, side, src, dst, n) input/output[src..] -> peer's output[dst..]
//                                   (buffers shared in place only)
//   sharesBuffers()                 peers' buffers are reached in place (one round)
//   inPlaceAt(r)                    rank r's input is its output
//   barrier()                       meet again
//   finish()                        end the operation
#pragma once

#include "collectives/algorithm_common.h"

namespace chorus {

// Calls body(base, m) for consecutive rounds [base, base + m) of `count`
// elements, `round` at most each; stops at the first failure.
template <typename Body>
ncclResult_t forEachRound(size_t count, size_t round, Body body) {
  for (size_t base = 0; base < count; base += round)
    CHORUS_PRIM(body(base, minSize(round, count - base)));
  return ncclSuccess;
}

// One-shot: every rank reduces the whole round (one meeting, n-fold reads;
// for small messages). Otherwise rank r reduces block r of the round and
// publishes it, and every rank copies the other finished blocks: each byte
// is read once per rank that needs it. Where ranks reach each other's
// buffers in place (one round), rank r instead writes each piece of its
// block into every peer's output as soon as it is reduced, still in cache:
// no meeting between the halves, and no block read back from memory (2
// threads: 1 MiB 180 -> 53 us, 64 MiB 17.9 -> 12.0 ms; 2 processes
// through the kernel: 1 MiB 150 -> 118-133 us).
template <typename Prims>
ncclResult_t directAllReduce(Prims& prims, int rank, int nranks, size_t count, size_t align,
                             bool oneShot) {
  CHORUS_PRIM(forEachRound(count, prims.roundElems(1), [&](size_t base, size_t m) {
    if (oneShot) {
      CHORUS_PRIM(prims.exchange({base, m, 1, 0}, true, Prims::kAllPeers));
      return prims.reduce(base, base, m, false);
    }
    const ChannelSlice mine = channelSlice(m, nranks, rank, align);
    if (prims.sharesBuffers()) {
      CHORUS_PRIM(prims.exchange({base, m, 1, 0}, true, Prims::kAllPeers));
      return prims.reduce(base + mine.offset, base + mine.offset, mine.count, true);
    }
    // Our own block is read only by us: it is not staged.
    CHORUS_PRIM(prims.exchange({base, m, 1, 0, base + mine.offset, base + mine.offset + mine.count}, true, Prims::kAllPeers));
    CHORUS_PRIM(prims.reduce(base + mine.offset, base + mine.offset, mine.count, true));
    CHORUS_PRIM(prims.barrier());
    for (int step = 1; step < nranks; ++step) {
      const int owner = (rank + step) % nranks;
      const ChannelSlice block = channelSlice(m, nranks, owner, align);
      CHORUS_PRIM(prims.copyFrom(owner, Prims::Side::Output, base + block.offset,
                                 base + block.offset, block.count));
    }
    return ncclSuccess;
  }));
  return prims.finish();
}

// Every rank's input lands in its place in every output. Staged, every
// rank copies every rank's piece of a round: it reads nranks pieces a
// round, so pieces are smaller than the other collectives' (4 ranks on 2
// cores, 4 MiB: pieces of 1 MiB took 568 us, of 256 KiB 368 us).
template <typename Prims>
ncclResult_t directAllGather(Prims& prims, int rank, int nranks, size_t count) {
  if (prims.sharesBuffers()) {
    // Buffers reached in place: each rank writes its input into every
    // peer's output instead of reading theirs. The input it reads is the
    // one it has just copied into its own output, still in its cache,
    // and a rank's caches then hold its input and the blocks it writes,
    // not its peers' inputs as well (2 processes through the kernel, 1 MiB:
    // 48-51 -> 40-48 us, 2 MiB 146-159 -> 130-150; 4 processes on 2 cores,
    // 2 MiB 394-446 -> 308-390; 2 threads, 1 MiB 37-68 -> 30-32; alike at
    // the other sizes).
    CHORUS_PRIM(prims.exchange({0, count, 1, 0}, true, Prims::kAllPeers));
    const size_t own = static_cast<size_t>(rank) * count;
    CHORUS_PRIM(prims.copyFrom(rank, Prims::Side::Input, 0, own, count));
    for (int step = 1; step < nranks; ++step)
      CHORUS_PRIM(prims.copyTo((rank + step) % nranks, Prims::Side::Input, 0, own, count));
    return prims.finish();
  }
  CHORUS_PRIM(forEachRound(count, prims.gatherRoundElems(), [&](size_t base, size_t m) {
    CHORUS_PRIM(prims.exchange({base, m, 1, 0}, true, Prims::kAllPeers));
    for (int step = 0; step < nranks; ++step) {
      const int owner = (rank + step) % nranks;
      CHORUS_PRIM(prims.copyFrom(owner, Prims::Side::Input, base,
                                 static_cast<size_t>(owner) * count + base, m));
    }
    return ncclSuccess;
  }));
  return prims.finish();
}

// Rank r reduces block r (count elements) of every rank's input; a round
// stages the same piece of the other nranks - 1 blocks. (Rounds are sized
// for nranks pieces: 4 ranks, 4 MiB, rounds for 3 were 4 % slower.)
template <typename Prims>
ncclResult_t directReduceScatter(Prims& prims, int rank, int nranks, size_t count) {
  const size_t blocks = static_cast<size_t>(nranks);
  CHORUS_PRIM(forEachRound(count, prims.roundElems(blocks), [&](size_t base, size_t m) {
    const size_t own = static_cast<size_t>(rank) * count + base;
    // Our own piece is read only by us: it takes no place in the staging.
    const bool ownPieceUnstaged = true;
    CHORUS_PRIM(prims.exchange({base, m, blocks, count, 0, 0, ownPieceUnstaged}, true,
                               Prims::kAllPeers));
    return prims.reduce(own, base, m, false);
  }));
  return prims.finish();
}

// Every rank copies the root's input. Where ranks reach each other's
// buffers in place and the root broadcasts in place, it would stay idle
// while its readers copy: it writes block r of n into reader r's output
// instead, and each reader reads the other blocks, so every rank copies
// (n-1)/n of the message (2 processes through the kernel, against readers
// copying it all: 1 MiB 128 -> 41 us; 2 threads, 2 MiB 178 -> 57 us). Out
// of place, the root's own copy is as long as a reader's: it writes
// nothing (2 processes, 2 MiB: 188 against 356 us).
template <typename Prims>
ncclResult_t directBroadcast(Prims& prims, int rank, int nranks, int root, size_t count,
                             size_t align) {
  if (prims.sharesBuffers()) {
    const bool rootWrites = rank == root ? prims.inPlaceAt(root) : false;
    CHORUS_PRIM(prims.exchange({0, count, 1, 0}, true,
                               rank != root ? root : rootWrites ? Prims::kAllPeers : Prims::kNoPeer));
    // Readers learn from the root's record whether it is in place.
    if (!prims.inPlaceAt(root)) {
      CHORUS_PRIM(prims.copyFrom(root, Prims::Side::Input, 0, 0, count));
      return prims.finish();
    }
    for (int b = 0; b < nranks; ++b) {
      const ChannelSlice block = channelSlice(count, nranks, b, align);
      if (rank == root && b != root)
        CHORUS_PRIM(prims.copyTo(b, Prims::Side::Input, block.offset, block.offset, block.count));
      else if (rank != root && b != rank)
        CHORUS_PRIM(prims.copyFrom(root, Prims::Side::Input, block.offset, block.offset, block.count));
    }
    return prims.finish();
  }
  CHORUS_PRIM(forEachRound(count, prims.roundElems(1, true), [&](size_t base, size_t m) {
    CHORUS_PRIM(prims.exchange({base, m, 1, 0}, rank == root, rank == root ? Prims::kNoPeer : root));
    return prims.copyFrom(root, Prims::Side::Input, base, base, m);
  }));
  return prims.finish();
}

// The root reduces every rank's input.
template <typename Prims>
ncclResult_t directReduce(Prims& prims, int rank, int root, size_t count) {
  CHORUS_PRIM(forEachRound(count, prims.roundElems(1, true), [&](size_t base, size_t m) {
    CHORUS_PRIM(prims.exchange({base, m, 1, 0}, rank != root,
                               rank == root ? Prims::kAllPeers : Prims::kNoPeer));
    return rank == root ? prims.reduce(base, base, m, false) : ncclSuccess;
  }));
  return prims.finish();
}

}  // namespace chorus
