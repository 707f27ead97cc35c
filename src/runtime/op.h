// One operation as the runtime carries it from the API to an executor.
// AlltoAll, Gather and Scatter arrive as groups of Send/Recv ops.
#pragma once

#include <cstddef>

#include "collectives/reduce_ops.h"
#include "nccl.h"

namespace chorus {

enum class OpKind { AllReduce, Broadcast, Reduce, AllGather, ReduceScatter, Send, Recv };

struct Op {
  OpKind kind;
  const void* sendbuff;
  void* recvbuff;
  size_t count;  // per rank: AllGather's send count, ReduceScatter's receive count
  ncclDataType_t type;
  RedOpArgs redop;
  int root;  // Broadcast and Reduce
  int peer;  // Send and Recv
  void* stream;  // the call's cudaStream_t (device communicators)
  // PreMulSum whose scalar lives in device memory: read when the operation
  // runs (redop.scalar is filled in then); null otherwise.
  const void* scalarSource;
};

inline bool isPointToPoint(const Op& op) { return op.kind == OpKind::Send || op.kind == OpKind::Recv; }

const char* opName(OpKind kind);

}  // namespace chorus
