#include "runtime/device_host_staging.h"

#if defined(CHORUS_HAVE_CUDA)
#include <cstdlib>
#include <vector>

#include "collectives/datatypes.h"
#include "common/result.h"
#include "runtime/comm.h"
#include "runtime/host_executor.h"

namespace chorus {
namespace {

constexpr size_t kAlign = 64;

size_t alignUp(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Elements an operation reads from sendbuff and writes to recvbuff on this rank.
struct Extent {
  size_t in = 0;
  size_t out = 0;
};

Extent extentOf(const Op& op, int rank, int nranks) {
  const size_t n = static_cast<size_t>(nranks);
  switch (op.kind) {
    case OpKind::AllReduce: return {op.count, op.count};
    case OpKind::Broadcast: return {rank == op.root ? op.count : 0, op.count};
    case OpKind::Reduce: return {op.count, rank == op.root ? op.count : 0};
    case OpKind::AllGather: return {op.count, op.count * n};
    case OpKind::ReduceScatter: return {op.count * n, op.count};
    case OpKind::Send: return {op.count, 0};
    case OpKind::Recv: return {0, op.count};
  }
  return {};
}

}  // namespace

HostBounceBuffer::~HostBounceBuffer() { free(data_); }

ncclResult_t HostBounceBuffer::reserve(size_t bytes, char** data) {
  if (bytes > bytes_) {
    free(data_);
    bytes_ = alignUp(bytes);
    data_ = static_cast<char*>(aligned_alloc(kAlign, bytes_));
    if (data_ == nullptr) {
      bytes_ = 0;
      CHORUS_FAIL(ncclSystemError, "out of host memory: %zu bytes of staging for device buffers",
                  bytes);
    }
  }
  *data = data_;
  return ncclSuccess;
}

ncclResult_t runThroughHostMemory(ncclComm* comm, const Op* ops, size_t n, DataMover& mover,
                                  HostBounceBuffer& bounce) {
  std::vector<Extent> extents(n);
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    extents[i] = extentOf(ops[i], comm->rank, comm->nranks);
    const size_t size = elementSize(ops[i].type);
    total += alignUp(extents[i].in * size) + alignUp(extents[i].out * size);
  }
  char* base = nullptr;
  CHORUS_CHECK(bounce.reserve(total, &base));
  // Host twins of the operations: separate input and output copies (an
  // in-place operation gives the same result out of place).
  std::vector<Op> hostOps(ops, ops + n);
  char* next = base;
  for (size_t i = 0; i < n; ++i) {
    const size_t size = elementSize(ops[i].type);
    const size_t inBytes = extents[i].in * size, outBytes = extents[i].out * size;
    hostOps[i].sendbuff = inBytes > 0 ? next : nullptr;
    next += alignUp(inBytes);
    hostOps[i].recvbuff = outBytes > 0 ? next : nullptr;
    next += alignUp(outBytes);
    if (inBytes > 0) CHORUS_CHECK(mover.copy(const_cast<void*>(hostOps[i].sendbuff), ops[i].sendbuff, inBytes));
  }
  CHORUS_CHECK(mover.settle());
  CHORUS_CHECK(executeHostOps(comm, hostOps.data(), n));
  for (size_t i = 0; i < n; ++i) {
    const size_t outBytes = extents[i].out * elementSize(ops[i].type);
    if (outBytes > 0) CHORUS_CHECK(mover.copy(ops[i].recvbuff, hostOps[i].recvbuff, outBytes));
  }
  return mover.settle();
}

}  // namespace chorus
#endif  // CHORUS_HAVE_CUDA
