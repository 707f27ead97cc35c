// perf/compare backend for Chorus, through the public API (nccl.h) only.
// Launched as one process per rank with RANK, WORLD_SIZE and either
// NCCL_COMM_ID=host:port or MASTER_ADDR/MASTER_PORT (docs/launching.md), so
// every rank derives the same unique id and rank 0 serves the root. The
// compare script sets CHORUS_DEVICE=host: the buffers are host memory
// (with --register, ncclMemAlloc blocks registered with the communicator).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "bench_core.h"
#include "nccl.h"

namespace {

int envInt(const char* name) {
  const char* v = getenv(name);
  return v != nullptr ? atoi(v) : -1;
}

class ChorusBackend : public compare::Backend {
 public:
  const char* name() const override { return "chorus"; }

  std::string version() const override {
    int v = 0;
    ncclGetVersion(&v);
    return "Chorus (NCCL API " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
           std::to_string(v % 100) + ")";
  }

  bool init(int* rank, int* nranks) override {
    *rank = envInt("RANK");
    *nranks = envInt("WORLD_SIZE");
    const char* addr = getenv("MASTER_ADDR");
    const char* port = getenv("MASTER_PORT");
    if (getenv("NCCL_COMM_ID") == nullptr && addr != nullptr && port != nullptr) {
      std::string host = addr;
      if (host.find(':') != std::string::npos) host = "[" + host + "]";  // IPv6
      setenv("NCCL_COMM_ID", (host + ":" + port).c_str(), 1);
    }
    if (*rank < 0 || *nranks < 1 || *rank >= *nranks || getenv("NCCL_COMM_ID") == nullptr) {
      fprintf(stderr, "compare_chorus: set RANK, WORLD_SIZE and NCCL_COMM_ID=host:port (or MASTER_ADDR/PORT)\n");
      return false;
    }
    ncclUniqueId id;
    if (!check(ncclGetUniqueId(&id), "ncclGetUniqueId")) return false;
    return check(ncclCommInitRank(&comm_, *nranks, id, *rank), "ncclCommInitRank");
  }

  bool run(compare::Op op, const float* send, float* recv, size_t count) override {
    switch (op) {
      case compare::Op::AllReduce:
        return check(ncclAllReduce(send, recv, count, ncclFloat, ncclSum, comm_, nullptr), "ncclAllReduce");
      case compare::Op::AllGather:
        return check(ncclAllGather(send, recv, count, ncclFloat, comm_, nullptr), "ncclAllGather");
      case compare::Op::ReduceScatter:
        return check(ncclReduceScatter(send, recv, count, ncclFloat, ncclSum, comm_, nullptr), "ncclReduceScatter");
      case compare::Op::Broadcast:
        return check(ncclBroadcast(recv, recv, count, ncclFloat, 0, comm_, nullptr), "ncclBroadcast");
    }
    return false;
  }

  // ncclMemAlloc gives host blocks that peers in other processes may map:
  // registered, they read and write them in place.
  float* allocateRegistered(size_t bytes) override {
    void* buffer = nullptr;
    void* handle = nullptr;
    if (!check(ncclMemAlloc(&buffer, bytes), "ncclMemAlloc")) return nullptr;
    memset(buffer, 0, bytes);
    if (!check(ncclCommRegister(comm_, buffer, bytes, &handle), "ncclCommRegister")) {
      ncclMemFree(buffer);
      return nullptr;
    }
    registrations_[buffer] = handle;
    return static_cast<float*>(buffer);
  }

  void freeRegistered(float* buffer) override {
    auto it = registrations_.find(buffer);
    if (it == registrations_.end()) return;
    check(ncclCommDeregister(comm_, it->second), "ncclCommDeregister");
    check(ncclMemFree(buffer), "ncclMemFree");
    registrations_.erase(it);
  }

  bool maxOverRanks(double* value) override {
    return check(ncclAllReduce(value, value, 1, ncclDouble, ncclMax, comm_, nullptr), "ncclAllReduce(max)");
  }

  void finalize() override {
    if (comm_ != nullptr) {
      check(ncclCommFinalize(comm_), "ncclCommFinalize");
      check(ncclCommDestroy(comm_), "ncclCommDestroy");
      comm_ = nullptr;
    }
  }

 private:
  // On a host communicator a collective has completed when the call returns,
  // so a result code is all there is to check.
  static bool check(ncclResult_t r, const char* what) {
    if (r == ncclSuccess) return true;
    fprintf(stderr, "compare_chorus: %s: %s (%s)\n", what, ncclGetErrorString(r), ncclGetLastError(nullptr));
    return false;
  }

  ncclComm_t comm_ = nullptr;
  std::map<void*, void*> registrations_;  // buffer -> ncclCommRegister handle
};

}  // namespace

int main(int argc, char** argv) {
  ChorusBackend backend;
  return compare::benchMain(backend, argc, argv);
}
