// The command line, as nccl-tests spells it (see docs/perf_tools.md).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "nccl.h"

namespace perf {

// A reduction as the benchmarks name it: a built-in ncclRedOp_t, or
// PreMulSum (made per communicator with ncclRedOpCreatePreMulSum).
enum class Reduction { Sum, Prod, Max, Min, Avg, PreMulSum };
const char* reductionName(Reduction r);  // "sum" ... "mulsum" (nccl-tests' names)

struct Options {
  int nThreads = 1;
  int nGpus = 1;
  size_t minBytes = 32u << 20;
  size_t maxBytes = 32u << 20;
  size_t stepBytes = 1u << 20;
  size_t stepFactor = 1;  // > 1: multiply; otherwise add stepBytes
  int iters = 20;
  int warmupIters = 5;
  int checkIters = 1;     // -c: 0 turns checking off
  int aggIters = 1;
  int runCycles = 1;      // 0: forever
  std::vector<Reduction> ops{Reduction::Sum};
  std::vector<ncclDataType_t> types{ncclFloat32};
  int root = 0;           // -1: every rank in turn
  bool blocking = false;  // -z
  int average = 1;        // -a: 0 rank 0, 1 mean, 2 min, 3 max
  int timeoutSec = 0;     // -T: 0 waits forever (CHORUS_TIMEOUT still applies)
  bool localRegister = false;  // -R 1: ncclCommRegister the benchmark buffers
  std::string jsonPath;   // -J
  std::vector<std::string> argv;  // as given, for the JSON file
};

// Parses argv into *options. Returns -1 to go on; otherwise the exit code
// (0 after -h, 1 after a bad argument, with the message already printed).
int parseOptions(int argc, char** argv, Options* options);

// "1", "64K", "1.5M", "2G": bytes; false for anything else.
bool parseSize(const char* text, size_t* bytes);

}  // namespace perf
