// all_reduce_perf: ncclAllReduce. Every rank sends `count` elements and
// receives their reduction over all ranks.
//   size  = count * eltSize;  busbw = algbw * 2(n-1)/n
//   all_reduce_perf -b 8 -e 128M -f 2 -t 2 [-o all] [-d all]
#include "collective.h"

namespace {

double busFactor(int n) { return 2.0 * (n - 1) / n; }

ncclResult_t run(const perf::Call& c) {
  return ncclAllReduce(c.send, c.recv, c.count, c.type, c.op, c.comm, c.stream);
}

perf::Want expected(const perf::Expect& e, size_t i) { return e.reduced(i); }

}  // namespace

int main(int argc, char** argv) {
  perf::Collective c{"AllReduce", true, false, perf::InPlace::Checked, perf::sameCountLayout,
                     busFactor, run, expected};
  return perf::perfMain(argc, argv, c);
}
