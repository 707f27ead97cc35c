#include "runtime/direct_mode.h"

#include <algorithm>
#include <cstdint>

namespace chorus {
namespace {

// Rounds where one side publishes and the others only read.
bool oneWay(OpKind kind) { return kind == OpKind::Broadcast || kind == OpKind::Reduce; }

}  // namespace

void setKernelCopyLimits(const AgreedSettings& settings, DirectState* state) {
  // The kernel reads a peer in the process its waits probe (the same pid,
  // agreed reachable at init). `auto` only where its copy is not much
  // slower than memcpy (kernelCopiesPay), and with at most two ranks per
  // core: with more, the one round loses to staged rounds at every size
  // (2 cores, kernel against staged: 6 ranks, AllReduce 1 MiB 972 against
  // 819 us, AllGather 1 MiB 407 against 342; 8 ranks, AllReduce 4 MiB 5.2
  // against 3.8 ms; 5 ranks are mixed: AllReduce 512 KiB 328 against 325,
  // 1 MiB 626 against 685).
  const bool autoPays = settings.kernelCopiesPay &&
                        (settings.coreEach || settings.atMostTwoRanksPerCore);
  state->crossMemory = settings.crossMemory && (settings.cma == kCmaOn || autoPays);
  state->cmaReduceMaxBytes = settings.cmaReduceMaxBytes;
  if (settings.coreEach) {
    state->cmaBytes = settings.cmaBytes;
    state->cmaOneWayBytes = settings.cmaOneWayBytes;
    state->cmaMaxBytes = SIZE_MAX;
    return;
  }
  // With more ranks than cores, kernel copies pay only in a window of
  // sizes. 4 ranks on 2 cores, kernel against staged, output per rank:
  // AllReduce 512 KiB 155 against 185 us, 4 MiB 1.32 against 1.43 ms,
  // 16 MiB 8.0 against 5.7 ms; AllGather 256 KiB 31 against 29 us, 1 MiB
  // 149 against 170 us; ReduceScatter 256 KiB 44 against 40 us; Broadcast
  // 32 KiB 9.2 against 3.8 us, 8 MiB 1.31 against 1.21 ms.
  state->cmaBytes = settings.cmaSharedCoresBytes;
  state->cmaOneWayBytes = settings.cmaSharedCoresBytes;
  state->cmaMaxBytes = settings.cmaSharedCoresMaxBytes;
}

DirectMode directModeFor(const DirectState& state, OpKind kind, size_t inputBytes,
                         size_t outputBytes, bool oneShot) {
  if (oneShot) return DirectMode::Staged;
  if (state.allInThisProcess) return DirectMode::Shared;
  if (!state.crossMemory) return DirectMode::Staged;
  const size_t smallest = oneWay(kind) ? state.cmaOneWayBytes : state.cmaBytes;
  if (outputBytes < smallest || outputBytes > state.cmaMaxBytes) return DirectMode::Staged;
  const bool copiesOnly = kind == OpKind::AllGather || kind == OpKind::Broadcast;
  if (!copiesOnly && inputBytes > state.cmaReduceMaxBytes) return DirectMode::Staged;
  return DirectMode::CrossMemory;
}

bool lendsBuffers(const DirectState& state, OpKind kind, DirectMode mode, size_t inputBytes,
                  size_t outputBytes) {
  if (state.registered == nullptr) return false;
  if (mode == DirectMode::CrossMemory) return true;
  const size_t smallest = oneWay(kind) ? state.lendStagedOneWayBytes : state.lendStagedBytes;
  return mode == DirectMode::Staged && std::max(inputBytes, outputBytes) >= smallest;
}

LentSides lentSides(bool oneShot, bool inPlace) {
  if (!oneShot) return {};
  return {!inPlace, false};
}

}  // namespace chorus
