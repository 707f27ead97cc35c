// Brings up the direct algorithms (collectives/direct_collectives.h) when
// every rank of a host communicator lives on this host and may share
// memory: opens the node arena the ranks meet in. All ranks reach the same
// decision, since they share its inputs (peers' hosts and processes, and
// settings).
#pragma once

#include "nccl.h"
#include "runtime/agreed_settings.h"

struct ncclComm;

namespace chorus {

ncclResult_t setupDirect(ncclComm* comm, const AgreedSettings& settings);

}  // namespace chorus
