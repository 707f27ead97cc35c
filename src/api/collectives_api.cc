// Collective and point-to-point entry points, and user reduction operators.
// Every argument is checked here, on the calling rank, before anything is
// posted: a rejected call moves no data to or from any rank.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "api/api_export.h"
#include "collectives/datatypes.h"
#include "collectives/reduce_ops.h"
#include "common/result.h"
#include "runtime/comm.h"
#include "runtime/device.h"
#include "runtime/group.h"

using namespace chorus;

namespace {

ncclResult_t checkReady(ncclComm* comm, const char* caller) {
  CHORUS_CHECK(checkComm(comm, caller));
  // Failed earlier: refuse. Still initialising (non-blocking): the operation
  // queues behind the init on the communicator's background thread.
  ncclResult_t state = comm->asyncResult.load(std::memory_order_acquire);
  if (state != ncclSuccess)
    CHORUS_FAIL(ncclInvalidUsage, "%s: the communicator has failed earlier (%s): %s", caller,
                ncclGetErrorString(state), comm->asyncErrorText.c_str());
  return ncclSuccess;
}

ncclResult_t checkType(ncclDataType_t type, const char* caller) {
  if (static_cast<int>(type) < 0 || type >= ncclNumTypes)
    CHORUS_FAIL(ncclInvalidArgument, "%s: datatype %d is not an ncclDataType_t", caller,
                static_cast<int>(type));
  return ncclSuccess;
}

// A buffer the operation reads or writes (count > 0): not NULL, and on a
// device communicator, memory its device reaches.
ncclResult_t checkBuffer(const ncclComm* comm, const void* buffer, size_t count, const char* caller,
                         const char* name) {
  if (count == 0) return ncclSuccess;
  if (buffer == nullptr)
    CHORUS_FAIL(ncclInvalidArgument, "%s: %s is NULL with count %zu", caller, name, count);
  if (!comm->onHost()) return checkDeviceBuffer(comm->cudaDev, buffer, caller, name);
  return ncclSuccess;
}

ncclResult_t checkRank(ncclComm* comm, int rank, const char* caller, const char* name) {
  if (rank < 0 || rank >= comm->nranks)
    CHORUS_FAIL(ncclInvalidArgument, "%s: %s %d is outside 0..%d", caller, name, rank,
                comm->nranks - 1);
  return ncclSuccess;
}

// count * factor elements of `type` must fit in a buffer: at most
// PTRDIFF_MAX bytes, as no object is larger (and offsets into it stay
// clear of wrapping; count = SIZE_MAX of a 1-byte type wrapped and did
// nothing, reporting success).
ncclResult_t checkSize(size_t count, size_t factor, ncclDataType_t type, const char* caller) {
  constexpr size_t kMaxBytes = static_cast<size_t>(PTRDIFF_MAX);
  // Multiplied, not divided: two divisions cost a small operation ~15 ns.
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, factor, &bytes) ||
      __builtin_mul_overflow(bytes, elementSize(type), &bytes) || bytes > kMaxBytes)
    CHORUS_FAIL(ncclInvalidArgument, "%s: count %zu overflows the buffer size", caller, count);
  return ncclSuccess;
}

// What every operation checks first: a live, healthy communicator, a real
// datatype, and a size (count elements, times nranks for collectives whose
// buffers hold one block per rank) that fits in memory.
enum class Blocks { One, PerRank };
ncclResult_t checkCall(ncclComm* comm, const char* caller, ncclDataType_t type, size_t count,
                       Blocks blocks) {
  CHORUS_CHECK(checkReady(comm, caller));
  CHORUS_CHECK(checkType(type, caller));
  const size_t factor = blocks == Blocks::PerRank ? static_cast<size_t>(comm->nranks) : 1;
  return checkSize(count, factor, type, caller);
}

ncclResult_t resolveRedOp(ncclComm* comm, ncclRedOp_t op, ncclDataType_t type, const char* caller,
                          RedOpArgs* out, const void** scalarSource) {
  const int value = static_cast<int>(op);
  if (value >= 0 && value < ncclNumOps) {
    *out = builtinRedOp(op, type, comm->nranks);
    return ncclSuccess;
  }
  const size_t index = static_cast<size_t>(value) - ncclNumOps;
  if (value < ncclNumOps || index >= comm->userOps.size() || !comm->userOps[index].live)
    CHORUS_FAIL(ncclInvalidArgument, "%s: reduction operator %d is not valid on this communicator",
                caller, value);
  const UserRedOp& user = comm->userOps[index];
  if (user.type != type)
    CHORUS_FAIL(ncclInvalidArgument, "%s: operator %d was made for datatype %d, not %d", caller,
                value, static_cast<int>(user.type), static_cast<int>(type));
  // A "device" scalar on a host communicator is host memory, read now; on
  // a device communicator it is read when the operation runs.
  *out = user.args;
  if (user.residence == ncclScalarDevice) {
    if (comm->onHost()) *out = preMulSumOp(type, user.scalar);
    else *scalarSource = user.scalar;
  }
  return ncclSuccess;
}

Op makeOp(OpKind kind, const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t type,
          cudaStream_t stream) {
  Op op{};
  op.stream = stream;
  op.kind = kind;
  op.sendbuff = sendbuff;
  op.recvbuff = recvbuff;
  op.count = count;
  op.type = type;
  op.redop.type = type;
  return op;
}

const char* at(const void* base, size_t elements, ncclDataType_t type) {
  return static_cast<const char*>(base) + elements * elementSize(type);
}

// Posts point-to-point operations as one group, so they progress together.
ncclResult_t postGroup(ncclComm* comm, const std::vector<Op>& ops) {
  CHORUS_CHECK(groupStart());
  ncclResult_t result = ncclSuccess;
  for (const Op& op : ops)
    if (result == ncclSuccess) result = enqueueOp(comm, op);
  ncclResult_t end = groupEnd();
  return result != ncclSuccess ? result : end;
}

// An argument check of a collective or point-to-point call: a failure
// inside a group also fails the group (refuseInGroup).
#define REFUSE_CHECK(call)                                            \
  do {                                                                \
    const ncclResult_t refused_ = (call);                             \
    if (refused_ != ncclSuccess) return refuseInGroup(refused_);      \
  } while (0)

uintptr_t address(const void* p) { return reinterpret_cast<uintptr_t>(p); }

// The send and receive buffers either do not overlap or are laid out in
// place as NCCL defines it (sendbuff at `inPlaceSend`; 0 where the call has
// no in-place form). Any other overlap is refused: the operation would read
// what it has already written.
ncclResult_t checkOverlap(const void* sendbuff, size_t sendBytes, const void* recvbuff,
                          size_t recvBytes, uintptr_t inPlaceSend, const char* caller) {
  const uintptr_t send = address(sendbuff), recv = address(recvbuff);
  if (sendBytes == 0 || recvBytes == 0 || send == 0 || recv == 0) return ncclSuccess;
  const bool apart = send < recv ? recv - send >= sendBytes : send - recv >= recvBytes;
  if (apart || (inPlaceSend != 0 && send == inPlaceSend)) return ncclSuccess;
  if (inPlaceSend == 0)
    CHORUS_FAIL(ncclInvalidArgument,
                "%s: sendbuff [%p, +%zu bytes) and recvbuff [%p, +%zu bytes) overlap (this "
                "operation has no in-place form)", caller, sendbuff, sendBytes, recvbuff, recvBytes);
  CHORUS_FAIL(ncclInvalidArgument,
              "%s: sendbuff [%p, +%zu bytes) and recvbuff [%p, +%zu bytes) overlap but are not "
              "in place (in place, sendbuff would be %p)",
              caller, sendbuff, sendBytes, recvbuff, recvBytes, reinterpret_cast<void*>(inPlaceSend));
}

// Bytes of `count` elements of `type` times `blocks`.
size_t bytesOf(size_t count, ncclDataType_t type, size_t blocks = 1) {
  return count * elementSize(type) * blocks;
}

}  // namespace

NCCL_API(ncclResult_t, ncclAllReduce, const void* sendbuff, void* recvbuff, size_t count,
         ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  const char* caller = "ncclAllReduce";
  REFUSE_CHECK(checkCall(comm, caller, datatype, count, Blocks::One));
  REFUSE_CHECK(checkBuffer(comm, sendbuff, count, caller, "sendbuff"));
  REFUSE_CHECK(checkBuffer(comm, recvbuff, count, caller, "recvbuff"));
  Op o = makeOp(OpKind::AllReduce, sendbuff, recvbuff, count, datatype, stream);
  REFUSE_CHECK(resolveRedOp(comm, op, datatype, caller, &o.redop, &o.scalarSource));
  REFUSE_CHECK(checkOverlap(sendbuff, bytesOf(count, datatype), recvbuff, bytesOf(count, datatype),
                            address(recvbuff), caller));
  return enqueueOp(comm, o);
}

NCCL_API(ncclResult_t, ncclBroadcast, const void* sendbuff, void* recvbuff, size_t count,
         ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream) {
  const char* caller = "ncclBroadcast";
  REFUSE_CHECK(checkCall(comm, caller, datatype, count, Blocks::One));
  REFUSE_CHECK(checkRank(comm, root, caller, "root"));
  if (comm->rank == root) REFUSE_CHECK(checkBuffer(comm, sendbuff, count, caller, "sendbuff"));
  REFUSE_CHECK(checkBuffer(comm, recvbuff, count, caller, "recvbuff"));
  if (comm->rank == root)
    REFUSE_CHECK(checkOverlap(sendbuff, bytesOf(count, datatype), recvbuff, bytesOf(count, datatype),
                              address(recvbuff), caller));
  Op o = makeOp(OpKind::Broadcast, sendbuff, recvbuff, count, datatype, stream);
  o.root = root;
  return enqueueOp(comm, o);
}

NCCL_API(ncclResult_t, ncclBcast, void* buff, size_t count, ncclDataType_t datatype, int root,
         ncclComm_t comm, cudaStream_t stream) {
  return pncclBroadcast(buff, buff, count, datatype, root, comm, stream);
}

NCCL_API(ncclResult_t, ncclReduce, const void* sendbuff, void* recvbuff, size_t count,
         ncclDataType_t datatype, ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream) {
  const char* caller = "ncclReduce";
  REFUSE_CHECK(checkCall(comm, caller, datatype, count, Blocks::One));
  REFUSE_CHECK(checkRank(comm, root, caller, "root"));
  REFUSE_CHECK(checkBuffer(comm, sendbuff, count, caller, "sendbuff"));
  if (comm->rank == root) REFUSE_CHECK(checkBuffer(comm, recvbuff, count, caller, "recvbuff"));
  Op o = makeOp(OpKind::Reduce, sendbuff, recvbuff, count, datatype, stream);
  o.root = root;
  REFUSE_CHECK(resolveRedOp(comm, op, datatype, caller, &o.redop, &o.scalarSource));
  if (comm->rank == root)
    REFUSE_CHECK(checkOverlap(sendbuff, bytesOf(count, datatype), recvbuff, bytesOf(count, datatype),
                              address(recvbuff), caller));
  return enqueueOp(comm, o);
}

NCCL_API(ncclResult_t, ncclAllGather, const void* sendbuff, void* recvbuff, size_t sendcount,
         ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) {
  const char* caller = "ncclAllGather";
  REFUSE_CHECK(checkCall(comm, caller, datatype, sendcount, Blocks::PerRank));
  REFUSE_CHECK(checkBuffer(comm, sendbuff, sendcount, caller, "sendbuff"));
  REFUSE_CHECK(checkBuffer(comm, recvbuff, sendcount, caller, "recvbuff"));
  REFUSE_CHECK(checkOverlap(sendbuff, bytesOf(sendcount, datatype), recvbuff,
                            bytesOf(sendcount, datatype, comm->nranks),
                            address(recvbuff) + bytesOf(sendcount, datatype, comm->rank), caller));
  return enqueueOp(comm,
                   makeOp(OpKind::AllGather, sendbuff, recvbuff, sendcount, datatype, stream));
}

NCCL_API(ncclResult_t, ncclReduceScatter, const void* sendbuff, void* recvbuff, size_t recvcount,
         ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
  const char* caller = "ncclReduceScatter";
  REFUSE_CHECK(checkCall(comm, caller, datatype, recvcount, Blocks::PerRank));
  REFUSE_CHECK(checkBuffer(comm, sendbuff, recvcount, caller, "sendbuff"));
  REFUSE_CHECK(checkBuffer(comm, recvbuff, recvcount, caller, "recvbuff"));
  Op o = makeOp(OpKind::ReduceScatter, sendbuff, recvbuff, recvcount, datatype, stream);
  REFUSE_CHECK(resolveRedOp(comm, op, datatype, caller, &o.redop, &o.scalarSource));
  REFUSE_CHECK(checkOverlap(sendbuff, bytesOf(recvcount, datatype, comm->nranks), recvbuff,
                            bytesOf(recvcount, datatype),
                            address(recvbuff) - bytesOf(recvcount, datatype, comm->rank), caller));
  return enqueueOp(comm, o);
}

NCCL_API(ncclResult_t, ncclSend, const void* sendbuff, size_t count, ncclDataType_t datatype,
         int peer, ncclComm_t comm, cudaStream_t stream) {
  const char* caller = "ncclSend";
  REFUSE_CHECK(checkCall(comm, caller, datatype, count, Blocks::One));
  REFUSE_CHECK(checkRank(comm, peer, caller, "peer"));
  REFUSE_CHECK(checkBuffer(comm, sendbuff, count, caller, "sendbuff"));
  Op o = makeOp(OpKind::Send, sendbuff, nullptr, count, datatype, stream);
  o.peer = peer;
  return enqueueOp(comm, o);
}

NCCL_API(ncclResult_t, ncclRecv, void* recvbuff, size_t count, ncclDataType_t datatype, int peer,
         ncclComm_t comm, cudaStream_t stream) {
  const char* caller = "ncclRecv";
  REFUSE_CHECK(checkCall(comm, caller, datatype, count, Blocks::One));
  REFUSE_CHECK(checkRank(comm, peer, caller, "peer"));
  REFUSE_CHECK(checkBuffer(comm, recvbuff, count, caller, "recvbuff"));
  Op o = makeOp(OpKind::Recv, nullptr, recvbuff, count, datatype, stream);
  o.peer = peer;
  return enqueueOp(comm, o);
}

NCCL_API(ncclResult_t, ncclAlltoAll, const void* sendbuff, void* recvbuff, size_t count,
         ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) {
  const char* caller = "ncclAlltoAll";
  REFUSE_CHECK(checkCall(comm, caller, datatype, count, Blocks::PerRank));
  REFUSE_CHECK(checkBuffer(comm, sendbuff, count, caller, "sendbuff"));
  REFUSE_CHECK(checkBuffer(comm, recvbuff, count, caller, "recvbuff"));
  // In place only with one rank, where AlltoAll is a copy to itself (with
  // more, a rank would overwrite blocks it has yet to send).
  REFUSE_CHECK(checkOverlap(sendbuff, bytesOf(count, datatype, comm->nranks), recvbuff,
                            bytesOf(count, datatype, comm->nranks),
                            comm->nranks == 1 ? address(recvbuff) : 0, caller));
  std::vector<Op> ops;
  for (int p = 0; p < comm->nranks; ++p) {
    Op s = makeOp(OpKind::Send, at(sendbuff, p * count, datatype), nullptr, count, datatype,
                  stream);
    Op r = makeOp(OpKind::Recv, nullptr, const_cast<char*>(at(recvbuff, p * count, datatype)), count,
                  datatype, stream);
    s.peer = r.peer = p;
    ops.push_back(s);
    ops.push_back(r);
  }
  return postGroup(comm, ops);
}

NCCL_API(ncclResult_t, ncclGather, const void* sendbuff, void* recvbuff, size_t count,
         ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream) {
  const char* caller = "ncclGather";
  REFUSE_CHECK(checkCall(comm, caller, datatype, count, Blocks::PerRank));
  REFUSE_CHECK(checkRank(comm, root, caller, "root"));
  REFUSE_CHECK(checkBuffer(comm, sendbuff, count, caller, "sendbuff"));
  if (comm->rank == root) {
    REFUSE_CHECK(checkBuffer(comm, recvbuff, count, caller, "recvbuff"));
    REFUSE_CHECK(checkOverlap(sendbuff, bytesOf(count, datatype), recvbuff,
                              bytesOf(count, datatype, comm->nranks),
                              address(recvbuff) + bytesOf(count, datatype, root), caller));
  }
  std::vector<Op> ops;
  Op s = makeOp(OpKind::Send, sendbuff, nullptr, count, datatype, stream);
  s.peer = root;
  ops.push_back(s);
  if (comm->rank == root) {
    for (int p = 0; p < comm->nranks; ++p) {
      Op r = makeOp(OpKind::Recv, nullptr, const_cast<char*>(at(recvbuff, p * count, datatype)),
                    count, datatype, stream);
      r.peer = p;
      ops.push_back(r);
    }
  }
  return postGroup(comm, ops);
}

NCCL_API(ncclResult_t, ncclScatter, const void* sendbuff, void* recvbuff, size_t count,
         ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream) {
  const char* caller = "ncclScatter";
  REFUSE_CHECK(checkCall(comm, caller, datatype, count, Blocks::PerRank));
  REFUSE_CHECK(checkRank(comm, root, caller, "root"));
  if (comm->rank == root) REFUSE_CHECK(checkBuffer(comm, sendbuff, count, caller, "sendbuff"));
  REFUSE_CHECK(checkBuffer(comm, recvbuff, count, caller, "recvbuff"));
  if (comm->rank == root)
    REFUSE_CHECK(checkOverlap(sendbuff, bytesOf(count, datatype, comm->nranks), recvbuff,
                              bytesOf(count, datatype),
                              address(recvbuff) - bytesOf(count, datatype, root), caller));
  std::vector<Op> ops;
  if (comm->rank == root) {
    for (int p = 0; p < comm->nranks; ++p) {
      Op s = makeOp(OpKind::Send, at(sendbuff, p * count, datatype), nullptr, count, datatype,
                    stream);
      s.peer = p;
      ops.push_back(s);
    }
  }
  Op r = makeOp(OpKind::Recv, nullptr, recvbuff, count, datatype, stream);
  r.peer = root;
  ops.push_back(r);
  return postGroup(comm, ops);
}

NCCL_API(ncclResult_t, ncclRedOpCreatePreMulSum, ncclRedOp_t* op, void* scalar,
         ncclDataType_t datatype, ncclScalarResidence_t residence, ncclComm_t comm) {
  const char* caller = "ncclRedOpCreatePreMulSum";
  CHORUS_CHECK(checkComm(comm, caller));
  CHORUS_CHECK(checkType(datatype, caller));
  if (op == nullptr) CHORUS_FAIL(ncclInvalidArgument, "%s: op is NULL", caller);
  if (scalar == nullptr) CHORUS_FAIL(ncclInvalidArgument, "%s: scalar is NULL", caller);
  if (residence != ncclScalarDevice && residence != ncclScalarHostImmediate)
    CHORUS_FAIL(ncclInvalidArgument, "%s: residence %d is not an ncclScalarResidence_t", caller,
                static_cast<int>(residence));
  UserRedOp user;
  user.live = true;
  user.type = datatype;
  user.residence = residence;
  user.scalar = scalar;
  if (residence == ncclScalarHostImmediate) user.args = preMulSumOp(datatype, scalar);
  size_t index = 0;
  while (index < comm->userOps.size() && comm->userOps[index].live) ++index;
  if (index == comm->userOps.size()) comm->userOps.push_back(user);
  else comm->userOps[index] = user;
  *op = static_cast<ncclRedOp_t>(ncclNumOps + static_cast<int>(index));
  return ncclSuccess;
}

NCCL_API(ncclResult_t, ncclRedOpDestroy, ncclRedOp_t op, ncclComm_t comm) {
  const char* caller = "ncclRedOpDestroy";
  CHORUS_CHECK(checkComm(comm, caller));
  const int value = static_cast<int>(op);
  const size_t index = static_cast<size_t>(value) - ncclNumOps;
  if (value < ncclNumOps || index >= comm->userOps.size() || !comm->userOps[index].live)
    CHORUS_FAIL(ncclInvalidArgument, "%s: operator %d was not created on this communicator", caller,
                value);
  comm->userOps[index].live = false;
  return ncclSuccess;
}
