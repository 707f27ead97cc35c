#include "runtime/direct_setup.h"

#include <algorithm>

#include "common/log.h"
#include "common/result.h"
#include "runtime/comm.h"
#include "runtime/device_direct.h"
#include "runtime/direct_mode.h"
#include "runtime/host_blocks.h"
#include "runtime/lent_registrations.h"

namespace chorus {
namespace {

// Pieces of a reduction are folded in an accumulator this big: it stays in
// a core's cache.
constexpr size_t kDirectChunkBytes = 64 * 1024;
// Staged host operations lend registered blocks from these sizes per rank:
// below, the wait that lending needs at the end costs a lender more than
// the staged copies it saves. 2 ranks, lent against staged: AllGather 2 KiB
// 0.87-1.15 against 0.98-1.13 us, 4 KiB 0.87-1.05 against 1.6-1.9. One-way
// messages (Broadcast, Reduce) of up to 64 KiB run as slotted rounds, the
// publisher ahead of its readers, which that wait stops (8 KiB 1.02-1.07
// against 0.75-0.92), and the arrival every rank then adds costs those
// that lend nothing (16 KiB, nothing registered: 1.4-2.1 against 1.2-1.5):
// they lend only from 128 KiB. With more ranks than cores each wait costs
// context switches (4 ranks on 2 cores: AllGather 16 KiB 8.9-9.2 against
// 6.8-7.6 us, 64 KiB 11.4-13.6 against 15.3-17.3; AllReduce 256 KiB 67-81
// against 158-165).
constexpr size_t kLendStagedBytes = 4 * 1024;
constexpr size_t kLendStagedOneWayBytes = 128 * 1024;
constexpr size_t kLendStagedSharedCoresBytes = 64 * 1024;
// Waits in a meeting when every rank has a core: poll for tens of
// microseconds, then yield (the peer may share our core after all) for about
// a millisecond, then sleep.
constexpr int kLongSpins = 2048;
constexpr int kLongYields = 2000;
// With more ranks than cores a waiter's peer needs the core it holds: hand
// it over at once and keep handing it over (tens of milliseconds) before
// sleeping, since a futex wake-up costs several microseconds and a
// scheduler round. 4 ranks on 2 cores, 8 bytes: Broadcast 5-15 -> 2.3 us,
// AllReduce 15-40 -> 10 us against 256 polls and 4 yields.
constexpr int kSharedSpins = 16;
constexpr int kSharedYields = 20000;

// Whether every rank of this process is bound to this rank's device.
bool oneDeviceInThisProcess(const ncclComm* comm) {
  const PeerInfo& self = comm->peers[comm->rank];
  for (const PeerInfo& peer : comm->peers)
    if (sameProcess(peer, self) && peer.cudaDev != self.cudaDev)
      return false;
  return true;
}

}  // namespace

ncclResult_t setupDirect(ncclComm* comm, const AgreedSettings& settings) {
  if (!settings.direct) return ncclSuccess;

  DirectState& state = comm->direct;
  const bool device = settings.device;
  const bool p2p = settings.p2p;
  // Ranks of one process read each other's buffers (on devices: only when
  // they share one, so no peer access is needed); they stage only one-shot
  // AllReduce messages.
  state.allInThisProcess = everyRankWithUs(comm, true) && (!device || oneDeviceInThisProcess(comm));
  const size_t oneShotBytes = settings.oneShotBytes;
  const size_t stageBytes = state.allInThisProcess && !device
                                ? std::max<size_t>(oneShotBytes, 64) : settings.stageBytes;
  // One-shot reads the whole message from staging: it must fit.
  comm->oneShotBytes = std::min(oneShotBytes, stageBytes);
  // Device staging in GPU memory leaves the arena only its lines.
  const size_t arenaStageBytes = p2p ? 64 : stageBytes;
  // Small rounds travel in the lines' slots with host memory only (a device
  // copy does not reach the arena synchronously); ranks of one process stage
  // only one-shot AllReduce, where every rank publishes.
  const size_t slotBytes = device ? 0
                           : state.allInThisProcess ? kArenaMeetingSlotBytes : kArenaSlotBytes;
  CHORUS_CHECK(NodeArena::open(*comm->bootstrap, comm->rank, comm->nranks, arenaStageBytes,
                               slotBytes, &comm->arena));

  state.arena = comm->arena.get();
  state.stageBytes = comm->arena->stageBytes();
  state.waits.resize(comm->nranks);
  state.seenPhase.assign(comm->nranks, 0);
  state.peerInput.assign(comm->nranks, nullptr);
  state.peerOutput.assign(comm->nranks, nullptr);
  // With a core per rank, meetings are cheap and smaller rounds let one
  // rank fill a staging area while another empties the previous one; with
  // fewer cores, each meeting costs context switches: fewer, larger rounds.
  // Rounds in which only one side publishes (Broadcast, Reduce) stay small:
  // there the publisher waits for no one but the release of an area, so it
  // fills the next one while its readers empty this one, cores or not
  // (4 ranks on 2 cores: Broadcast 4.5 -> 7.7 GB/s at 1 MiB).
  const bool coreEach = settings.coreEach;
  const int spins = coreEach ? kLongSpins : kSharedSpins;
  const int yields = coreEach ? kLongYields : kSharedYields;
  const size_t smallRound = std::max<size_t>(stageBytes / 4, 64);
  state.roundBytes = coreEach ? smallRound : stageBytes;
  state.oneWayRoundBytes = smallRound;
  // What a round reads stays within a staging area's size, the round of
  // AllReduce and ReduceScatter with fewer cores than ranks.
  state.roundReadBytes = stageBytes;
  state.readersStepBack = coreEach;
  for (int r = 0; r < comm->nranks; ++r) {
    WaitContext& wait = state.waits[r];
    wait.abort = &comm->abortFlag;
    wait.timeoutSeconds = comm->timeoutSeconds;
    wait.selfRank = comm->rank;
    wait.peerRank = r;
    wait.spins = spins;
    wait.yields = yields;
    wait.peerPid = probeablePid(comm->peers[r], comm->peers[comm->rank]);
    wait.peerFailure = &comm->arena->slot(r).failure;
  }
  setKernelCopyLimits(settings, &state);
  // Device buffers: their movers copy as they do anyway.
  state.streamBytes = device ? 0 : settings.streamBytes;
  // Zero-filled, so its pages are faulted in now rather than mid-operation.
  // With kernel copies, two more chunks hold peers' pieces being reduced.
  comm->directScratch.assign(kDirectChunkBytes * (state.crossMemory ? 3 : 1), 0);
  state.scratch = comm->directScratch.data();
  state.chunkBytes = kDirectChunkBytes;
  if (state.crossMemory) state.peerCopies = state.scratch + kDirectChunkBytes;
  // Between processes, registered host blocks are lent: peers map them and
  // reach them in place, where they would otherwise copy them through the
  // kernel or read staged copies (those of operations large enough).
  if (!device && !state.allInThisProcess && settings.lendRegistered) {
    comm->lentRegistrations = std::make_unique<LentRegistrations>(comm, hostBlockMemory());
    state.registered = comm->lentRegistrations.get();
    state.lendStagedBytes = coreEach ? kLendStagedBytes : kLendStagedSharedCoresBytes;
    state.lendStagedOneWayBytes = kLendStagedOneWayBytes;
  }
#if defined(CHORUS_HAVE_CUDA)
  if (device) CHORUS_CHECK(setupDeviceDirect(comm, stageBytes, p2p, settings.lendRegistered));
#endif
  INFO(kLogInit, "rank %d: direct algorithms on (%s, one-shot AllReduce up to %zu bytes)",
       comm->rank, state.allInThisProcess ? "shared buffers" : "staged rounds",
       comm->oneShotBytes);
  if (state.crossMemory)
    INFO(kLogInit, "rank %d: collectives through the kernel from %zu bytes of output per rank "
         "(Broadcast, Reduce: %zu) up to %zu (reductions: up to %zu bytes of input)", comm->rank,
         state.cmaBytes, state.cmaOneWayBytes, state.cmaMaxBytes, state.cmaReduceMaxBytes);
  return ncclSuccess;
}

}  // namespace chorus
