// Bringing communicators up: unique ids, init by rank, init of all ranks in
// one process, and split.
#pragma once

#include "nccl.h"
#include "runtime/comm.h"

namespace chorus {

// ncclGetUniqueId: starts a root on this host and describes it; with
// NCCL_COMM_ID set, only describes the address it names.
ncclResult_t getUniqueId(ncclUniqueId* out);

// Starts a root reachable at the address of `near` (any port) and returns its
// id; used where the id must be fresh whatever the environment says (split).
ncclResult_t createRoot(const SocketAddress& near, BootstrapId* out);

// Allocates *out bound to the current device and brings it up as `rank` of
// `nranks` meeting at `roots` (blocking, grouped or in the background, as
// config and group state say). A blocking failure frees the communicator and
// sets *out to null.
ncclResult_t commInitRank(ncclComm_t* out, int nranks, int rank, InitRequest request,
                          const ncclConfig_t* config);

// ncclCommInitAll: ndev ranks as threads of this process.
ncclResult_t commInitAll(ncclComm_t* comms, int ndev, const int* devlist);

// A communicator bound to the current device, not yet brought up.
ncclResult_t newCommWithConfig(const CommConfig& config, ncclComm** out);
// The body of every init: meet the other ranks (bootstrap) and learn about
// them (PeerInfo). Runs on whichever thread runCommJob chose.
ncclResult_t bringUpComm(ncclComm* comm, const InitRequest& request);

// ncclCommSplit.
ncclResult_t commSplit(ncclComm* parent, int color, int key, ncclComm_t* out,
                       const ncclConfig_t* config);

}  // namespace chorus
