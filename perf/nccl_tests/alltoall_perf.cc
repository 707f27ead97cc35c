// alltoall_perf: ncclAlltoAll. Every rank sends block p of its buffer to
// rank p and receives rank p's block into slot p.
//   count = bytes / eltSize / n (whole 16-byte units);  size = n * count * eltSize
//   busbw = algbw * (n-1)/n
// In place is skipped: Chorus rejects ncclAlltoAll with sendbuff == recvbuff.
//   alltoall_perf -b 8 -e 128M -f 2 -t 2
#include "collective.h"

namespace {

perf::Layout layout(size_t count, size_t eltSize, int n) {
  perf::Layout l;
  l.paramCount = perf::blockCount(count, eltSize, n);
  l.sendCount = l.recvCount = l.paramCount * n;
  return l;
}

ncclResult_t run(const perf::Call& c) {
  return ncclAlltoAll(c.send, c.recv, c.count, c.type, c.comm, c.stream);
}

perf::Want expected(const perf::Expect& e, size_t i) {
  const size_t block = e.layout.paramCount;
  const int from = static_cast<int>(i / block);
  return e.input(from, static_cast<size_t>(e.rank) * block + i % block);
}

}  // namespace

int main(int argc, char** argv) {
  perf::Collective c{"AlltoAll", false, false, perf::InPlace::Skipped, layout, perf::blockBusFactor,
                     run, expected};
  return perf::perfMain(argc, argv, c);
}
