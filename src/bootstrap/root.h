// The bootstrap root: a background thread that meets the ranks of one range
// and tells each its ring successor's address.
//
// With one root (ncclCommInitRank) the range is every rank. With nroots roots
// (ncclCommInitRankScalable) root k serves ranks [k*n/nroots, (k+1)*n/nroots);
// the first rank of each range also registers with the previous root, so that
// every root knows the successor of its last rank. Nothing else passes
// through the roots: ranks then form the ring and allgather the rest.
//
// The root waits for the first rank as long as it takes, then at most
// CHORUS_TIMEOUT seconds for the others; after that it answers every rank
// that did arrive with an error naming the ranks that did not.
#pragma once

#include <cstdint>
#include <string>

#include "bootstrap/socket_address.h"
#include "nccl.h"

namespace chorus {

// Listens on `addr` (port 0 picks one) and serves in a detached thread until
// its ranks are served or the deadline passes. `bound` gets the address taken.
ncclResult_t startRoot(const SocketAddress& addr, uint64_t magic, SocketAddress* bound);

// When this process runs the root for `magic`, waits (at most `seconds`)
// until it has answered every rank. A rank told that init failed calls this
// before returning, so that its process, which may exit at once, does not
// take the root down before the other ranks have heard why.
void awaitLocalRoot(uint64_t magic, double seconds);

// Stops the root for `magic` that this process serves, if it still waits
// for ranks: those that arrived are told `reason`, and its port is free when
// this returns. For the rank that started it when its own init fails
// (NCCL_COMM_ID), so that the root does not hold the port forever.
void stopLocalRoot(uint64_t magic, const std::string& reason);

// The range of ranks root `rootIndex` serves: [*first, *last).
void rootRange(int nranks, int nroots, int rootIndex, int* first, int* last);
// The root that serves `rank`.
int rootOfRank(int nranks, int nroots, int rank);

}  // namespace chorus
