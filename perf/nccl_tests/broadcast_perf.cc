// broadcast_perf: ncclBroadcast. The root sends `count` elements; every rank
// receives them.
//   size  = count * eltSize;  busbw = algbw
//   broadcast_perf -b 8 -e 128M -f 2 -t 2 [-r all]
#include "collective.h"

namespace {

ncclResult_t run(const perf::Call& c) {
  return ncclBroadcast(c.send, c.recv, c.count, c.type, c.root, c.comm, c.stream);
}

perf::Want expected(const perf::Expect& e, size_t i) { return e.input(e.root, i); }

}  // namespace

int main(int argc, char** argv) {
  perf::Collective c{"Broadcast", false, true, perf::InPlace::Checked, perf::sameCountLayout,
                     perf::unitBusFactor, run, expected};
  return perf::perfMain(argc, argv, c);
}
