// sendrecv_perf: ncclSend/ncclRecv in one group. Rank r sends `count`
// elements to r+1 and receives as many from r-1 (modulo n).
//   size  = count * eltSize;  busbw = algbw
// In place (send and receive in the same buffer) runs but is not checked: the
// result depends on whether the send leaves before the receive lands.
//   sendrecv_perf -b 8 -e 128M -f 2 -t 2
#include "collective.h"

namespace {

ncclResult_t run(const perf::Call& c) {
  const int next = (c.rank + 1) % c.nranks, prev = (c.rank + c.nranks - 1) % c.nranks;
  ncclResult_t r = ncclGroupStart();
  if (r != ncclSuccess) return r;
  ncclResult_t s = ncclSend(c.send, c.count, c.type, next, c.comm, c.stream);
  if (s == ncclSuccess) s = ncclRecv(c.recv, c.count, c.type, prev, c.comm, c.stream);
  r = ncclGroupEnd();
  return s != ncclSuccess ? s : r;
}

perf::Want expected(const perf::Expect& e, size_t i) {
  return e.input((e.rank + e.nranks - 1) % e.nranks, i);
}

}  // namespace

int main(int argc, char** argv) {
  perf::Collective c{"SendRecv", false, false, perf::InPlace::Unchecked, perf::sameCountLayout,
                     perf::unitBusFactor, run, expected};
  return perf::perfMain(argc, argv, c);
}
