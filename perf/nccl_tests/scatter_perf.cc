// scatter_perf: ncclScatter. The root sends block p of its buffer to rank p;
// every rank (the root too) receives its block.
//   count = bytes / eltSize / n (whole 16-byte units);  size = n * count * eltSize
//   busbw = algbw * (n-1)/n
//   scatter_perf -b 8 -e 128M -f 2 -t 2 [-r all]
#include "collective.h"

namespace {

perf::Layout layout(size_t count, size_t eltSize, int n) {
  perf::Layout l;
  l.paramCount = l.recvCount = perf::blockCount(count, eltSize, n);
  l.sendCount = l.recvCount * n;
  l.recvInplaceOffset = l.recvCount;
  return l;
}

ncclResult_t run(const perf::Call& c) {
  return ncclScatter(c.send, c.recv, c.count, c.type, c.root, c.comm, c.stream);
}

perf::Want expected(const perf::Expect& e, size_t i) {
  const size_t block = e.layout.recvCount;
  const size_t mine = static_cast<size_t>(e.rank) * block;
  if (!e.inPlace) return e.input(e.root, mine + i);
  // In place every rank's buffer starts as its own (unused unless root) input;
  // our block then receives the root's.
  return i >= mine && i < mine + block ? e.input(e.root, i) : e.input(e.rank, i);
}

}  // namespace

int main(int argc, char** argv) {
  perf::Collective c{"Scatter", false, true, perf::InPlace::Checked, layout, perf::blockBusFactor,
                     run, expected};
  return perf::perfMain(argc, argv, c);
}
