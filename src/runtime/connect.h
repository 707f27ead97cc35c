// Opening connections between ranks through the transports.
//
// Ring connections (one send end to the next rank and one receive end from
// the previous rank per channel) open at init. Point-to-point connections
// open on first use, inside the group that needs them: both ranks of a
// Send/Recv pair post it in the same group, so both take part.
//
// The transport is chosen the same way on both sides: shm between ranks of
// one host unless NCCL_SHM_DISABLE=1, the socket transport otherwise.
#pragma once

#include <memory>
#include <vector>

#include "nccl.h"
#include "transport/transport.h"

struct ncclComm;

namespace chorus {

// Channel number used for point-to-point connections.
constexpr int kP2pChannel = 255;

// Opens this rank's send ends to `sendPeers` and receive ends from
// `recvPeers` on `channel`. Every named peer must make the matching call
// (with this rank among its receive/send peers) at the same time.
ncclResult_t connectPeers(ncclComm* comm, int channel, const std::vector<int>& sendPeers,
                          const std::vector<int>& recvPeers,
                          std::vector<std::unique_ptr<SendConnection>>* sends,
                          std::vector<std::unique_ptr<RecvConnection>>* recvs);

// Creates the transports and the ring connections of every channel.
ncclResult_t setupDataPath(ncclComm* comm);

}  // namespace chorus
