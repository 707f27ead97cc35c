// reduce_perf: ncclReduce. Every rank sends `count` elements; the root
// receives their reduction. Other ranks' receive buffers stay untouched.
//   size  = count * eltSize;  busbw = algbw
//   reduce_perf -b 8 -e 128M -f 2 -t 2 [-r all] [-o all]
#include "collective.h"

namespace {

ncclResult_t run(const perf::Call& c) {
  return ncclReduce(c.send, c.recv, c.count, c.type, c.op, c.root, c.comm, c.stream);
}

perf::Want expected(const perf::Expect& e, size_t i) {
  if (e.rank == e.root) return e.reduced(i);
  // In place a non-root's buffer is its own input, which it only sends.
  return e.inPlace ? e.input(e.rank, i) : e.untouched();
}

}  // namespace

int main(int argc, char** argv) {
  perf::Collective c{"Reduce", true, true, perf::InPlace::Checked, perf::sameCountLayout,
                     perf::unitBusFactor, run, expected};
  return perf::perfMain(argc, argv, c);
}
