// Runs a batch of operations (one group, or one call) of a host
// communicator to completion on the calling thread.
//
// Collectives run in the order they were posted, each channel over its own
// ring with the shared algorithm templates (src/collectives/ring_*.h) over
// HostPrimitives. Point-to-point operations then progress together, so
// Send/Recv pairs posted in any order inside a group cannot deadlock.
#pragma once

#include <cstddef>

#include "nccl.h"
#include "runtime/op.h"

struct ncclComm;

namespace chorus {

ncclResult_t executeHostOps(ncclComm* comm, const Op* ops, size_t nOps);

}  // namespace chorus
