// reduce_scatter_perf: ncclReduceScatter. Every rank sends n blocks of
// `count` elements; rank r receives the reduction of everyone's block r.
//   count = bytes / eltSize / n (whole 16-byte units);  size = n * count * eltSize (send buffer)
//   busbw = algbw * (n-1)/n
//   reduce_scatter_perf -b 8 -e 128M -f 2 -t 2 [-o all]
#include "collective.h"

namespace {

perf::Layout layout(size_t count, size_t eltSize, int n) {
  perf::Layout l;
  l.paramCount = l.recvCount = perf::blockCount(count, eltSize, n);
  l.sendCount = l.recvCount * n;
  l.recvInplaceOffset = l.recvCount;  // in place, rank r's result lands on its own block
  return l;
}

ncclResult_t run(const perf::Call& c) {
  return ncclReduceScatter(c.send, c.recv, c.count, c.type, c.op, c.comm, c.stream);
}

perf::Want expected(const perf::Expect& e, size_t i) {
  const size_t block = e.layout.recvCount;
  const size_t mine = static_cast<size_t>(e.rank) * block;
  if (!e.inPlace) return e.reduced(mine + i);
  // In place the buffer is the send buffer: our block gets the result, the rest stays input.
  return i >= mine && i < mine + block ? e.reduced(i) : e.input(e.rank, i);
}

}  // namespace

int main(int argc, char** argv) {
  perf::Collective c{"ReduceScatter", true, false, perf::InPlace::Checked, layout,
                     perf::blockBusFactor, run, expected};
  return perf::perfMain(argc, argv, c);
}
