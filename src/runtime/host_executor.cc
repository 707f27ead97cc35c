#include "runtime/host_executor.h"

#include "collectives/datatypes.h"
#include "collectives/direct_collectives.h"
#include "collectives/direct_primitives.h"
#include "collectives/host_primitives.h"
#include "collectives/ring_collective.h"
#include "common/log.h"
#include "common/result.h"
#include "runtime/comm.h"
#include "runtime/direct_mode.h"
#include "runtime/host_p2p.h"

namespace chorus {

const char* opName(OpKind kind) {
  switch (kind) {
    case OpKind::AllReduce: return "AllReduce";
    case OpKind::Broadcast: return "Broadcast";
    case OpKind::Reduce: return "Reduce";
    case OpKind::AllGather: return "AllGather";
    case OpKind::ReduceScatter: return "ReduceScatter";
    case OpKind::Send: return "Send";
    case OpKind::Recv: return "Recv";
  }
  return "?";
}

namespace {

// Bytes of `op`'s input or output on this rank.
size_t bufferBytes(const Op& op, int nranks, bool input) {
  const bool perRank = input ? op.kind == OpKind::ReduceScatter : op.kind == OpKind::AllGather;
  return op.count * elementSize(op.type) * (perRank ? static_cast<size_t>(nranks) : 1);
}

static_assert(static_cast<int>(OpKind::AllReduce) == static_cast<int>(RingCollective::AllReduce) &&
                  static_cast<int>(OpKind::ReduceScatter) ==
                      static_cast<int>(RingCollective::ReduceScatter),
              "the ring names collectives as OpKind does");

// Ranks of one host read each other's data directly (direct_collectives.h);
// the ring is for communicators that span hosts or may not share memory.
ncclResult_t runDirect(ncclComm* comm, const Op& op) {
  const int rank = comm->rank, nranks = comm->nranks;
  const bool oneShot =
      op.kind == OpKind::AllReduce && op.count * elementSize(op.type) <= comm->oneShotBytes;
  const DirectOpShape shape{static_cast<int>(op.kind), op.count, op.type, op.root, op.redop.kind};
  const size_t inputBytes = bufferBytes(op, nranks, true);
  const size_t outputBytes = bufferBytes(op, nranks, false);
  const DirectMode mode = directModeFor(comm->direct, op.kind, inputBytes, outputBytes, oneShot);
  DirectPrims prims(&comm->direct, rank, nranks, mode, shape, op.sendbuff, op.recvbuff, op.redop);
  const size_t streamBytes = comm->direct.streamBytes;
  if (streamBytes > 0 && outputBytes >= streamBytes) prims.writeOutputPastCache();
  if (lendsBuffers(comm->direct, op.kind, mode, inputBytes, outputBytes)) {
    RegisteredBuffers& registered = *comm->direct.registered;
    const LentSides sides = lentSides(oneShot, op.sendbuff == op.recvbuff);
    prims.shareBuffers(sides.input ? registered.find(op.sendbuff, inputBytes) : ArenaBufferRef{},
                       sides.output ? registered.find(op.recvbuff, outputBytes) : ArenaBufferRef{});
  }
  switch (op.kind) {
    case OpKind::AllReduce:
      return directAllReduce(prims, rank, nranks, op.count, ringSliceAlign(elementSize(op.type)), oneShot);
    case OpKind::AllGather: return directAllGather(prims, rank, nranks, op.count);
    case OpKind::ReduceScatter: return directReduceScatter(prims, rank, nranks, op.count);
    case OpKind::Broadcast:
      return directBroadcast(prims, rank, nranks, op.root, op.count, ringSliceAlign(elementSize(op.type)));
    case OpKind::Reduce: return directReduce(prims, rank, op.root, op.count);
    default: CHORUS_FAIL(ncclInternalError, "%s is not a collective", opName(op.kind));
  }
}

ncclResult_t runCollective(ncclComm* comm, const Op& op) {
  if (comm->arena != nullptr && op.count > 0) return runDirect(comm, op);
  const int rank = comm->rank, nranks = comm->nranks;
  const int next = (rank + 1) % nranks, prev = (rank + nranks - 1) % nranks;
  const int nChannels = static_cast<int>(comm->channels.size());
  if (static_cast<int>(op.kind) > static_cast<int>(OpKind::ReduceScatter))
    CHORUS_FAIL(ncclInternalError, "%s is not a collective", opName(op.kind));
  for (int c = 0; c < nChannels; ++c) {
    Channel& channel = comm->channels[c];
    HostPrimitives prims(channel.toNext ? &channel.toNext->fifo : nullptr,
                         channel.fromPrev ? &channel.fromPrev->fifo : nullptr, op.sendbuff,
                         op.recvbuff, op.redop, rank, next, prev);
    // One slot per chunk keeps kSteps chunks in flight on every link.
    CHORUS_CHECK(runRingChannel(prims, static_cast<RingCollective>(op.kind), rank, nranks,
                                op.root, op.count, elementSize(op.type), nChannels, c));
  }
  return ncclSuccess;
}

}  // namespace

ncclResult_t executeHostOps(ncclComm* comm, const Op* ops, size_t nOps) {
  setLogRank(comm->rank);
  std::vector<Op> p2p;
  for (size_t i = 0; i < nOps; ++i) {
    const Op& op = ops[i];
    if (isPointToPoint(op)) {
      p2p.push_back(op);
      continue;
    }
    TRACE(kLogColl, "%s count %zu type %d root %d", opName(op.kind), op.count, op.type, op.root);
    CHORUS_CHECK(runCollective(comm, op));
  }
  if (!p2p.empty()) CHORUS_CHECK(runHostP2p(comm, p2p));
  return ncclSuccess;
}

}  // namespace chorus
