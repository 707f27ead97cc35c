// all_gather_perf: ncclAllGather. Every rank sends a block of `count`
// elements; every rank receives all n blocks, in rank order.
//   count = bytes / eltSize / n (whole 16-byte units);  size = n * count * eltSize
//   busbw = algbw * (n-1)/n
//   all_gather_perf -b 8 -e 128M -f 2 -t 2
#include "collective.h"

namespace {

perf::Layout layout(size_t count, size_t eltSize, int n) {
  perf::Layout l;
  l.paramCount = l.sendCount = perf::blockCount(count, eltSize, n);
  l.recvCount = l.sendCount * n;
  l.sendInplaceOffset = l.sendCount;  // in place, each rank's block sits at its slot
  return l;
}

ncclResult_t run(const perf::Call& c) {
  return ncclAllGather(c.send, c.recv, c.count, c.type, c.comm, c.stream);
}

perf::Want expected(const perf::Expect& e, size_t i) {
  const size_t block = e.layout.sendCount;
  return e.input(static_cast<int>(i / block), i % block);
}

}  // namespace

int main(int argc, char** argv) {
  perf::Collective c{"AllGather", false, false, perf::InPlace::Checked, layout,
                     perf::blockBusFactor, run, expected};
  return perf::perfMain(argc, argv, c);
}
