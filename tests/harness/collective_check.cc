#include "harness/collective_check.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "collectives/datatypes.h"

namespace chorus::test {
namespace {

// Every integer 0..limit is exact in the type (capped: int64 sums stay small).
double exactLimit(ncclDataType_t type) {
  switch (type) {
    case ncclInt8: return 127;
    case ncclUint8: return 255;
    case ncclFloat16: return 2048;
    case ncclBfloat16: return 256;
    case ncclFloat8e4m3: return 16;
    case ncclFloat8e5m2: return 8;
    default: return 1 << 20;
  }
}

double epsilon(ncclDataType_t type) {
  switch (type) {
    case ncclFloat16: return std::ldexp(1.0, -10);
    case ncclBfloat16: return std::ldexp(1.0, -7);
    case ncclFloat8e4m3: return std::ldexp(1.0, -3);
    case ncclFloat8e5m2: return std::ldexp(1.0, -2);
    case ncclFloat32: return std::ldexp(1.0, -23);
    case ncclFloat64: return std::ldexp(1.0, -52);
    default: return 0;
  }
}

bool isFloat(ncclDataType_t type) { return epsilon(type) > 0; }

struct Store {
  void* p;
  size_t i;
  double v;
  template <typename T>
  void operator()() {
    T value;
    if constexpr (kIsNarrowFloat<T>) value = T::fromFloat(static_cast<float>(v));
    else value = static_cast<T>(v);
    memcpy(static_cast<char*>(p) + i * sizeof(T), &value, sizeof(T));
  }
};

struct Load {
  const void* p;
  size_t i;
  template <typename T>
  double operator()() {
    T value;
    memcpy(&value, static_cast<const char*>(p) + i * sizeof(T), sizeof(T));
    if constexpr (kIsNarrowFloat<T>) return value.toFloat();
    else return static_cast<double>(value);
  }
};

// Element i of `rank`'s contribution.
double inputValue(const CollCase& c, int nranks, int rank, size_t i) {
  const double limit = exactLimit(c.type);
  const size_t spread = static_cast<size_t>(rank) * 3 + i;
  if (!isReduction(c.coll)) return static_cast<double>((rank * 7 + i) % static_cast<size_t>(std::min(limit, 97.0)));
  switch (c.op) {
    case ncclProd:
      return (rank + i) % static_cast<size_t>(nranks) == 0 ? 2 : 1;
    case ncclMax:
    case ncclMin:
      return static_cast<double>((rank * 5 + i * 3) % static_cast<size_t>(std::min(limit, 17.0)));
    default: {  // sums: keep every partial sum exact
      const double budget = c.op == kPreMulSumTwo ? limit / 2 : limit;
      const size_t k = static_cast<size_t>(budget / nranks);
      if (k >= 1) return static_cast<double>(spread % (k + 1));
      return rank < budget ? static_cast<double>(spread % 2) : 0;
    }
  }
}

// PreMulSum's scalar on `rank`: each rank scales only its own input, by its
// own scalar (2 on even ranks, 1 on odd ones); 1 for other operators.
double preMulScalar(const CollCase& c, int rank) {
  return c.op == kPreMulSumTwo && rank % 2 == 0 ? 2.0 : 1.0;
}

// The reduction of element i over all ranks, in double.
double reduced(const CollCase& c, int nranks, size_t i) {
  double acc = inputValue(c, nranks, 0, i) * preMulScalar(c, 0);
  for (int r = 1; r < nranks; ++r) {
    double v = inputValue(c, nranks, r, i) * preMulScalar(c, r);
    if (c.op == ncclProd) acc *= v;
    else if (c.op == ncclMax) acc = std::max(acc, v);
    else if (c.op == ncclMin) acc = std::min(acc, v);
    else acc += v;
  }
  if (c.op == ncclAvg) acc = isFloat(c.type) ? acc / nranks : std::trunc(acc / nranks);
  return acc;
}

bool close(const CollCase& c, int nranks, double got, double want) {
  if (c.op == ncclAvg && isFloat(c.type))  // 1/nranks is rounded: not exact
    return std::fabs(got - want) <= (nranks + 2) * epsilon(c.type) * std::max(1.0, std::fabs(want));
  return got == want;
}

void fill(const CollCase& c, int nranks, int rank, void* buffer, size_t offset, size_t count) {
  for (size_t i = 0; i < count; ++i)
    dispatchType(c.type, Store{buffer, offset + i, inputValue(c, nranks, rank, i)});
}

// Checks `count` elements of `buffer` from `offset` against want(i).
template <typename Want>
void expect(RankContext& ctx, const CollCase& c, int nranks, const void* buffer, size_t offset,
            size_t count, const char* what, Want want) {
  for (size_t i = 0; i < count; ++i) {
    double got = dispatchType(c.type, Load{buffer, offset + i});
    double w = want(i);
    if (!close(c, nranks, got, w)) {
      ctx.fail(describe(c) + ": " + what + " element " + std::to_string(i) + " is " +
               std::to_string(got) + ", expected " + std::to_string(w));
      return;
    }
  }
}

}  // namespace

const char* collName(Coll coll) {
  static const char* names[] = {"AllReduce", "Broadcast",     "Reduce", "AllGather",
                                "ReduceScatter", "AlltoAll", "Gather", "Scatter"};
  return names[static_cast<int>(coll)];
}

bool isReduction(Coll coll) {
  return coll == Coll::AllReduce || coll == Coll::Reduce || coll == Coll::ReduceScatter;
}

std::string describe(const CollCase& c) {
  std::string op = c.op == kPreMulSumTwo ? "premulsum(2,1,..)"
                   : c.op == ncclSum    ? "sum"
                   : c.op == ncclProd   ? "prod"
                   : c.op == ncclMax    ? "max"
                   : c.op == ncclMin    ? "min"
                                        : "avg";
  return std::string(collName(c.coll)) + " " + dataTypeName(c.type) +
         (isReduction(c.coll) ? " " + op : "") + " count " + std::to_string(c.count) + " root " +
         std::to_string(c.root) + (c.inPlace ? " in-place" : " out-of-place");
}

void runAndCheck(RankContext& ctx, ncclComm_t comm, const CollCase& c, const GivenBuffers* given) {
  const int n = ctx.nranks, rank = ctx.rank;
  const size_t es = elementSize(c.type), count = c.count;
  const size_t total = count * static_cast<size_t>(n);
  if (given != nullptr && !ctx.check(std::max<size_t>(total, 1) * es <= given->bytes,
                                     describe(c) + " does not fit the buffers given"))
    return;
  std::vector<char> sendStore, recvStore;
  void* send = nullptr;
  void* recv = nullptr;
  auto buffer = [&](std::vector<char>& store, size_t elements) {
    const size_t bytes = std::max<size_t>(elements, 1) * es;
    if (given == nullptr) {
      store.assign(bytes, static_cast<char>(0x5a));
      return static_cast<void*>(store.data());
    }
    void* at = &store == &sendStore ? given->send : given->recv;
    memset(at, 0x5a, bytes);
    return at;
  };
  auto element = [&](void* base, size_t i) { return static_cast<char*>(base) + i * es; };

  ncclRedOp_t op = static_cast<ncclRedOp_t>(c.op);
  bool madeOp = false;
  if (c.op == kPreMulSumTwo) {
    std::vector<char> scalar(es);
    dispatchType(c.type, Store{scalar.data(), 0, preMulScalar(c, rank)});
    if (!ctx.checkNccl(ncclRedOpCreatePreMulSum(&op, scalar.data(), c.type, ncclScalarHostImmediate, comm),
                       "ncclRedOpCreatePreMulSum"))
      return;
    madeOp = true;
  }

  ncclResult_t r = ncclSuccess;
  switch (c.coll) {
    case Coll::AllReduce:
      send = buffer(sendStore, count);
      recv = c.inPlace ? send : buffer(recvStore, count);
      fill(c, n, rank, send, 0, count);
      r = ncclAllReduce(send, recv, count, c.type, op, comm, nullptr);
      if (r == ncclSuccess) expect(ctx, c, n, recv, 0, count, "output", [&](size_t i) { return reduced(c, n, i); });
      break;
    case Coll::Reduce:
      send = buffer(sendStore, count);
      recv = c.inPlace ? send : buffer(recvStore, count);
      fill(c, n, rank, send, 0, count);
      r = ncclReduce(send, recv, count, c.type, op, c.root, comm, nullptr);
      if (r == ncclSuccess && rank == c.root)
        expect(ctx, c, n, recv, 0, count, "root output", [&](size_t i) { return reduced(c, n, i); });
      break;
    case Coll::Broadcast:
      send = buffer(sendStore, count);
      recv = c.inPlace ? send : buffer(recvStore, count);
      if (rank == c.root) fill(c, n, rank, send, 0, count);
      r = ncclBroadcast(send, recv, count, c.type, c.root, comm, nullptr);
      if (r == ncclSuccess)
        expect(ctx, c, n, recv, 0, count, "output", [&](size_t i) { return inputValue(c, n, c.root, i); });
      break;
    case Coll::AllGather:
      recv = buffer(recvStore, total);
      send = c.inPlace ? element(recv, rank * count) : buffer(sendStore, count);
      fill(c, n, rank, send, 0, count);
      r = ncclAllGather(send, recv, count, c.type, comm, nullptr);
      for (int b = 0; r == ncclSuccess && b < n; ++b)
        expect(ctx, c, n, recv, b * count, count, "block", [&](size_t i) { return inputValue(c, n, b, i); });
      break;
    case Coll::ReduceScatter: {
      send = buffer(sendStore, total);
      recv = c.inPlace ? element(send, rank * count) : buffer(recvStore, count);
      // Block b of every rank's input is that rank's contribution to rank b,
      // shifted by b*count so that blocks differ.
      for (int b = 0; b < n; ++b)
        for (size_t i = 0; i < count; ++i)
          dispatchType(c.type, Store{send, b * count + i, inputValue(c, n, rank, i + b * count)});
      r = ncclReduceScatter(send, recv, count, c.type, op, comm, nullptr);
      if (r == ncclSuccess)
        expect(ctx, c, n, recv, 0, count, "output", [&](size_t i) { return reduced(c, n, i + rank * count); });
      break;
    }
    case Coll::AlltoAll:
      send = buffer(sendStore, total);
      recv = buffer(recvStore, total);
      for (int b = 0; b < n; ++b) fill(c, n, rank * n + b, send, b * count, count);
      r = ncclAlltoAll(send, recv, count, c.type, comm, nullptr);
      for (int b = 0; r == ncclSuccess && b < n; ++b)
        expect(ctx, c, n, recv, b * count, count, "block", [&](size_t i) { return inputValue(c, n, b * n + rank, i); });
      break;
    case Coll::Gather:
      recv = buffer(recvStore, total);
      send = c.inPlace && rank == c.root ? element(recv, rank * count) : buffer(sendStore, count);
      fill(c, n, rank, send, 0, count);
      r = ncclGather(send, recv, count, c.type, c.root, comm, nullptr);
      for (int b = 0; r == ncclSuccess && rank == c.root && b < n; ++b)
        expect(ctx, c, n, recv, b * count, count, "block", [&](size_t i) { return inputValue(c, n, b, i); });
      break;
    case Coll::Scatter:
      send = buffer(sendStore, total);
      recv = c.inPlace && rank == c.root ? element(send, rank * count) : buffer(recvStore, count);
      if (rank == c.root)
        for (int b = 0; b < n; ++b) fill(c, n, b, send, b * count, count);
      r = ncclScatter(send, recv, count, c.type, c.root, comm, nullptr);
      if (r == ncclSuccess) expect(ctx, c, n, recv, 0, count, "output", [&](size_t i) { return inputValue(c, n, rank, i); });
      break;
  }
  ctx.checkNccl(r, describe(c));
  if (madeOp) ctx.checkNccl(ncclRedOpDestroy(op, comm), "ncclRedOpDestroy");
}

}  // namespace chorus::test
