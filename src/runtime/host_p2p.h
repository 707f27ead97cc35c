// Point-to-point operations of one group on a host communicator.
//
// Sends to and receives from one peer are matched in the order they were
// posted; operations with different peers progress together, polling every
// connection that can move, so no posting order deadlocks. Connections to
// peers not yet reached open first (runtime/connect.h). Operations with
// this rank as peer are copies.
#pragma once

#include <vector>

#include "nccl.h"
#include "runtime/op.h"

struct ncclComm;

namespace chorus {

ncclResult_t runHostP2p(ncclComm* comm, const std::vector<Op>& ops);

}  // namespace chorus
