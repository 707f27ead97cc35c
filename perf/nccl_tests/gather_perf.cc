// gather_perf: ncclGather. Every rank sends a block of `count` elements; the
// root receives all n blocks in rank order. Other ranks' receive buffers stay
// untouched.
//   count = bytes / eltSize / n (whole 16-byte units);  size = n * count * eltSize
//   busbw = algbw * (n-1)/n
//   gather_perf -b 8 -e 128M -f 2 -t 2 [-r all]
#include "collective.h"

namespace {

perf::Layout layout(size_t count, size_t eltSize, int n) {
  perf::Layout l;
  l.paramCount = l.sendCount = perf::blockCount(count, eltSize, n);
  l.recvCount = l.sendCount * n;
  l.sendInplaceOffset = l.sendCount;
  return l;
}

ncclResult_t run(const perf::Call& c) {
  return ncclGather(c.send, c.recv, c.count, c.type, c.root, c.comm, c.stream);
}

perf::Want expected(const perf::Expect& e, size_t i) {
  const size_t block = e.layout.sendCount;
  const size_t mine = static_cast<size_t>(e.rank) * block;
  if (e.rank == e.root) return e.input(static_cast<int>(i / block), i % block);
  // A non-root's buffer holds, in place, its own block (which it sends) and nothing else.
  if (e.inPlace && i >= mine && i < mine + block) return e.input(e.rank, i - mine);
  return e.untouched();
}

}  // namespace

int main(int argc, char** argv) {
  perf::Collective c{"Gather", false, true, perf::InPlace::Checked, layout, perf::blockBusFactor,
                     run, expected};
  return perf::perfMain(argc, argv, c);
}
