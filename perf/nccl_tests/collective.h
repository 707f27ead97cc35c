// What one benchmark program describes about its collective: how buffer
// sizes follow from the byte size, how to call it, what every rank's
// receive buffer must hold afterwards, and how bandwidth is counted.
// Everything else (options, launch, buffers, timing, checking, output) is
// shared, in perf_main.cc and the files it uses.
#pragma once

#include <cstddef>

#include "nccl.h"
#include "pattern.h"

namespace perf {

class Memory;

// Element counts, as nccl-tests' GetCollByteCount gives them.
struct Layout {
  size_t sendCount = 0;          // elements of the send buffer the call reads
  size_t recvCount = 0;          // elements of the receive buffer it writes
  size_t paramCount = 0;         // the count argument (also the "count" column)
  size_t sendInplaceOffset = 0;  // in place, the send pointer is recv + this * rank
  size_t recvInplaceOffset = 0;  // in place, the receive pointer is recv + this * rank
};

// Per-rank block for collectives with one block per rank: count / nranks,
// rounded down to whole 16-byte units as nccl-tests does.
inline size_t blockCount(size_t count, size_t eltSize, int nranks) {
  return (count / static_cast<size_t>(nranks)) & ~(16 / eltSize - 1);
}

// The layout of collectives whose send, receive and count are all `count`
// (AllReduce, Broadcast, Reduce, SendRecv).
inline Layout sameCountLayout(size_t count, size_t, int) {
  Layout l;
  l.sendCount = l.recvCount = l.paramCount = count;
  return l;
}

// busbw = algbw (Broadcast, Reduce, SendRecv, HyperCube).
inline double unitBusFactor(int) { return 1; }

// busbw = algbw * (n-1)/n: every rank moves all but its own block
// (AllGather, ReduceScatter, AlltoAll, Gather, Scatter).
inline double blockBusFactor(int n) { return static_cast<double>(n - 1) / n; }

// One call on one communicator.
struct Call {
  const void* send;
  void* recv;
  size_t count;  // Layout::paramCount
  ncclDataType_t type;
  ncclRedOp_t op;
  int root;
  int rank, nranks;
  ncclComm_t comm;
  cudaStream_t stream;
  Memory* memory;  // for local copies (hypercube)
  int step;        // for multi-step collectives: 0 .. steps-1
};

// What one element of a buffer must hold after the call, and how far from
// it a result may be (0 except floating avg, see pattern.h).
struct Want {
  double value;
  double tolerance;
};

// What rank `rank`'s buffer must hold after the call. Out of place the view
// is the receive buffer [0, recvCount); in place it is the whole buffer
// [0, max(sendCount, recvCount)), which also held this rank's input at
// sendInplaceOffset * rank before the call. Elements the call must not touch
// still hold the sentinel every buffer starts with.
struct Expect {
  const Pattern& pattern;
  Layout layout;
  int rank, nranks, root;
  bool inPlace;
  double sentinel;

  // Element k of the reduction over all ranks.
  Want reduced(size_t k) const { return {pattern.reduced(k), pattern.tolerance(k)}; }
  // Element k of rank r's input.
  Want input(int r, size_t k) const { return {pattern.input(r, k), 0}; }
  // Not written by the call.
  Want untouched() const { return {sentinel, 0}; }
};

enum class InPlace {
  Checked,    // run and check in place
  Unchecked,  // run in place, do not check ("N/A" in #wrong): the result is not defined
  Skipped,    // do not run in place (the library rejects it)
};

struct Collective {
  const char* name;  // "AllReduce"
  bool reduces;      // takes a reduction operator (-o)
  bool rooted;       // takes a root (-r)
  InPlace inPlace;
  Layout (*layout)(size_t count, size_t eltSize, int nranks);
  double (*busFactor)(int nranks);
  ncclResult_t (*run)(const Call& call);
  Want (*expected)(const Expect& e, size_t i);
  // Bytes for algbw; nullptr: the "size" column, max(send, recv) bytes.
  double (*algBytes)(const Layout& l, size_t eltSize, int nranks) = nullptr;
  // Calls per operation, each in its own group (hypercube's stages); nullptr: 1.
  int (*steps)(int nranks) = nullptr;
  // Why this rank count cannot run, or nullptr.
  const char* (*unsupported)(int nranks) = nullptr;
};

// The whole program: options, launch, the sweep, the report. Returns the exit code.
int perfMain(int argc, char** argv, const Collective& collective);

}  // namespace perf
