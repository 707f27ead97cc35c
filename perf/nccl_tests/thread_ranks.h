// The ranks one thread drives: one communicator each (-g of them), with its
// memory, stream and buffers. Every NCCL call a thread makes goes through
// here, so that groups, completion, timeouts and errors are handled once.
//
// Errors end the process (die): a benchmark has nothing sensible to do after
// a failed operation, and peers in other processes see the closed
// connections. With -T, communicators are non-blocking and every wait polls
// against the deadline; on expiry this thread aborts its communicators
// (ncclCommAbort) and the process exits with kExitTimeout.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "launch.h"
#include "memory.h"
#include "options.h"

namespace perf {

struct Slot {
  int rank = 0;
  ncclComm_t comm = nullptr;
  std::unique_ptr<Memory> memory;
  void* send = nullptr;  // benchmark buffers, Options::maxBytes each
  void* recv = nullptr;
  void* ctlSend = nullptr;  // control buffers for exchange()
  void* ctlRecv = nullptr;
  void* sendHandle = nullptr;  // ncclCommRegister handles (-R 1)
  void* recvHandle = nullptr;
  ncclRedOp_t op = ncclSum;  // the operator of the current sweep
  bool opIsUser = false;     // made by ncclRedOpCreatePreMulSum
};

class ThreadRanks {
 public:
  ThreadRanks(const World& world, const Options& options, int thread);
  ~ThreadRanks();

  // Creates the communicators (one group), then memory and buffers.
  void init();
  std::vector<Slot>& slots() { return slots_; }
  int thread() const { return thread_; }

  // Calls fn for every slot inside one group (when there is more than one
  // slot or `group` asks for it); fn returns the NCCL result of its calls.
  void issue(const char* what, const std::function<ncclResult_t(Slot&)>& fn, bool group = false);
  void groupStart();
  void groupEnd(const char* what);
  // Waits until every slot's operations have finished (stream and, for
  // non-blocking communicators, the communicator's state).
  void finish(const char* what);

  // All-gathers one fixed-size record per rank over the communicators: on
  // return all[r * recordBytes ...] is rank r's record. mine[k] is slot k's.
  void exchange(const std::vector<std::string>& mine, size_t recordBytes, std::vector<char>* all);
  void barrier();

  // For reporting: fails the process with NCCL's error text.
  [[noreturn]] void fail(int code, const std::string& message);
  void check(ncclResult_t result, const char* what, ncclComm_t comm);
  void checkMemory(bool ok, const std::string& error);

 private:
  void abortAll();

  const World& world_;
  const Options& options_;
  int thread_;
  bool nonBlocking_;
  std::vector<Slot> slots_;
  size_t ctlBytes_ = 0;  // capacity of each control buffer
};

}  // namespace perf
