#include "collectives/reduce_ops.h"

#include <cstring>

namespace chorus {

namespace {

// The bits of 1/nranks as a value of T, rounded the way NCCL rounds it:
// double for double, float(1.0/n) for float and, through that float, the
// narrow types (so half gets __float2half(float(1.0/n))).
struct Reciprocal {
  int nranks;
  template <typename T>
  uint64_t operator()() const {
    const double r = 1.0 / double(nranks);
    if constexpr (std::is_same<T, double>::value) {
      return valueToBits<double>(r);
    } else if constexpr (std::is_integral<T>::value) {
      return 0;  // integers average with SumPostDiv, not a scalar
    } else {
      return valueToBits<T>(fromCompute<T>(float(r)));
    }
  }
};

// Copies a scalar of T from memory into RedOpArgs::scalar's representation.
struct LoadScalar {
  const void* p;
  template <typename T>
  uint64_t operator()() const {
    T v;
    std::memcpy(&v, p, sizeof v);
    return valueToBits<T>(v);
  }
};

}  // namespace

RedOpArgs builtinRedOp(ncclRedOp_t op, ncclDataType_t type, int nranks) {
  if (nranks < 1) nranks = 1;
  RedOpArgs args;
  args.type = type;
  switch (op) {
    case ncclProd: args.kind = RedOpKind::Prod; break;
    case ncclMax: args.kind = RedOpKind::Max; break;
    case ncclMin: args.kind = RedOpKind::Min; break;
    case ncclAvg:
      switch (type) {
        case ncclInt8: case ncclUint8: case ncclInt32:
        case ncclUint32: case ncclInt64: case ncclUint64:
          args.kind = RedOpKind::SumPostDiv;
          args.scalar = uint64_t(nranks);
          break;
        default:
          // Note: for E4M3, 1/nranks underflows to 0 from 1024 ranks on
          // (2^-10 is a tie that rounds to even, 0), as it does in NCCL.
          args.kind = RedOpKind::PreMulSum;
          args.scalar = dispatchType(type, Reciprocal{nranks});
          break;
      }
      break;
    case ncclSum:
    default: args.kind = RedOpKind::Sum; break;
  }
  return args;
}

RedOpArgs preMulSumOp(ncclDataType_t type, const void* scalar) {
  RedOpArgs args;
  args.kind = RedOpKind::PreMulSum;
  args.type = type;
  args.scalar = dispatchType(type, LoadScalar{scalar});
  return args;
}

const char* redOpKindName(RedOpKind kind) {
  switch (kind) {
    case RedOpKind::Sum: return "sum";
    case RedOpKind::Prod: return "prod";
    case RedOpKind::Max: return "max";
    case RedOpKind::Min: return "min";
    case RedOpKind::PreMulSum: return "premulsum";
    case RedOpKind::SumPostDiv: return "sumpostdiv";
  }
  return "invalid";
}

}  // namespace chorus
