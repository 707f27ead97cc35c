// hypercube_perf: an all-gather built from ncclSend/ncclRecv over a
// hypercube. In stage k (k = 0 .. log2(n)-1) rank r exchanges with r ^ 2^k
// everything it has gathered so far, 2^k blocks. Needs a power-of-two rank
// count; other counts print a note and run nothing.
//   count = bytes / eltSize / n (whole 16-byte units);  size = n * count * eltSize
//   algbw counts the (n-1) blocks each rank receives;  busbw = algbw
// Each stage is its own group (also with -g > 1 and -m > 1), so a stage sends
// only what the previous stages delivered.
//   hypercube_perf -b 8 -e 128M -f 2 -t 4
#include <cstdio>
#include <string>

#include "collective.h"
#include "memory.h"

namespace {

perf::Layout layout(size_t count, size_t eltSize, int n) {
  perf::Layout l;
  l.paramCount = l.sendCount = perf::blockCount(count, eltSize, n);
  l.recvCount = l.sendCount * n;
  l.sendInplaceOffset = l.sendCount;
  return l;
}

double algBytes(const perf::Layout& l, size_t eltSize, int n) {
  return static_cast<double>(l.paramCount) * eltSize * (n - 1);
}

int steps(int n) {
  int k = 0;
  while ((1 << k) < n) ++k;
  return k > 0 ? k : 1;  // one rank: stage 0 only copies its own block
}

const char* unsupported(int n) {
  return (n & (n - 1)) == 0 ? nullptr : "the rank count is not a power of 2";
}

size_t typeSize(ncclDataType_t type) { return perf::typeInfo(type).size; }

ncclResult_t run(const perf::Call& c) {
  const size_t blockBytes = c.count * typeSize(c.type);
  char* recv = static_cast<char*>(c.recv);
  if (c.step == 0 && recv + c.rank * blockBytes != c.send) {
    std::string error;
    if (!c.memory->copy(recv + c.rank * blockBytes, c.send, blockBytes, &error)) {
      fprintf(stderr, "hypercube_perf: rank %d: %s\n", c.rank, error.c_str());
      return ncclUnhandledCudaError;
    }
  }
  const int mask = 1 << c.step;
  if (mask >= c.nranks) return ncclSuccess;
  const int peer = c.rank ^ mask;
  const int mineFrom = c.rank & ~(mask - 1);  // first block of what we hold now
  const int theirsFrom = mineFrom ^ mask;
  const size_t n = c.count * static_cast<size_t>(mask);
  ncclResult_t r = ncclGroupStart();
  if (r != ncclSuccess) return r;
  ncclResult_t s = ncclSend(recv + mineFrom * blockBytes, n, c.type, peer, c.comm, c.stream);
  if (s == ncclSuccess) s = ncclRecv(recv + theirsFrom * blockBytes, n, c.type, peer, c.comm, c.stream);
  r = ncclGroupEnd();
  return s != ncclSuccess ? s : r;
}

perf::Want expected(const perf::Expect& e, size_t i) {
  const size_t block = e.layout.sendCount;
  return e.input(static_cast<int>(i / block), i % block);
}

}  // namespace

int main(int argc, char** argv) {
  perf::Collective c{"HyperCube", false, false, perf::InPlace::Checked, layout, perf::unitBusFactor,
                     run, expected, algBytes, steps, unsupported};
  return perf::perfMain(argc, argv, c);
}
