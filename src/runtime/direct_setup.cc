#include "runtime/direct_setup.h"

#include <sched.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"
#include "runtime/comm.h"
#include "runtime/device_direct.h"

namespace chorus {
namespace {

// Pieces of a reduction are folded in an accumulator this big: it stays in
// a core's cache.
constexpr size_t kDirectChunkBytes = 64 * 1024;
constexpr int64_t kMaxStageBytes = int64_t{256} << 20;
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

int usableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

// Whether every rank of this process is bound to this rank's device.
bool oneDeviceInThisProcess(const ncclComm* comm) {
  const PeerInfo& self = comm->peers[comm->rank];
  for (const PeerInfo& peer : comm->peers)
    if (sameProcess(peer, self) && peer.cudaDev != self.cudaDev)
      return false;
  return true;
}

// Whether every rank shares this rank's host (and, with `process`, its process).
bool everyRankWithUs(const ncclComm* comm, bool process) {
  const PeerInfo& self = comm->peers[comm->rank];
  for (const PeerInfo& peer : comm->peers)
    if (peer.hostHash != self.hostHash || (process && !sameProcess(peer, self))) return false;
  return true;
}

// The direct algorithms' settings, as this rank's environment gives them.
struct DirectSettings {
  std::string algo;
  int64_t oneShot = 0, stage = 0, deviceStage = 0;
};

ncclResult_t readDirectSettings(DirectSettings* out) {
  out->algo = settingString("CHORUS_HOST_ALGO");
  if (out->algo != "auto" && out->algo != "ring")
    CHORUS_FAIL(ncclInvalidArgument, "CHORUS_HOST_ALGO=%s: must be auto or ring", out->algo.c_str());
  out->oneShot = settingInt("CHORUS_ONESHOT_BYTES");
  if (out->oneShot < 0)
    CHORUS_FAIL(ncclInvalidArgument, "CHORUS_ONESHOT_BYTES=%lld: must not be negative",
                static_cast<long long>(out->oneShot));
  out->stage = settingInt("CHORUS_STAGE_BYTES");
  if (out->stage < 64 || out->stage > kMaxStageBytes)
    CHORUS_FAIL(ncclInvalidArgument, "CHORUS_STAGE_BYTES=%lld: must be between 64 and %lld",
                static_cast<long long>(out->stage), static_cast<long long>(kMaxStageBytes));
  out->deviceStage = settingInt("CHORUS_DEVICE_STAGE_BYTES");
  if (out->deviceStage < 64 || out->deviceStage > kMaxStageBytes)
    CHORUS_FAIL(ncclInvalidArgument, "CHORUS_DEVICE_STAGE_BYTES=%lld: must be between 64 and %lld",
                static_cast<long long>(out->deviceStage), static_cast<long long>(kMaxStageBytes));
  return ncclSuccess;
}

// What every rank must decide alike: a rank that ran a ring while its peers
// met in the arena, or staged rounds of another size, would leave them
// waiting or reading the wrong bytes. Settings come from each process's
// environment, so they can differ.
struct DirectChoices {
  int64_t settingsValid;  // this rank's settings were valid (if not, its log says why)
  int64_t direct;         // run the direct algorithms
  int64_t device;         // bound to a CUDA device, not the host
  int64_t p2p;            // device staging mapped between GPUs
  int64_t oneShotBytes;
  int64_t stageBytes;
  int64_t coreEach;       // a core per rank (affinity): not an error, the ranks agree on "no"
};

// Gathers every rank's choices; fails on every rank alike when a rank's
// settings were invalid (with `read`, its own error) or differ from ours.
ncclResult_t agreeOnDirectChoices(ncclComm* comm, ncclResult_t read, DirectChoices* mine) {
  std::vector<DirectChoices> all(comm->nranks);
  all[comm->rank] = *mine;
  CHORUS_CHECK(comm->bootstrap->allGather(all.data(), sizeof(DirectChoices)));
  if (read != ncclSuccess) return read;
  struct Field {
    int64_t DirectChoices::*value;
    const char* what;
  };
  static const Field kSameEverywhere[] = {
      {&DirectChoices::direct, "direct algorithms on (CHORUS_HOST_ALGO, NCCL_SHM_DISABLE)"},
      {&DirectChoices::device, "bound to a GPU (CHORUS_DEVICE)"},
      {&DirectChoices::p2p, "GPU memory mapped between ranks (NCCL_P2P_DISABLE)"},
      {&DirectChoices::oneShotBytes, "CHORUS_ONESHOT_BYTES"},
      {&DirectChoices::stageBytes, "CHORUS_STAGE_BYTES (CHORUS_DEVICE_STAGE_BYTES on GPUs)"},
  };
  for (int r = 0; r < comm->nranks; ++r) {
    const DirectChoices& peer = all[r];
    if (!peer.settingsValid)
      CHORUS_FAIL(ncclInvalidUsage, "rank %d has invalid settings (its log says which)", r);
    for (const Field& field : kSameEverywhere) {
      // Without direct algorithms nothing else is used.
      if (field.value != &DirectChoices::direct && !mine->direct) break;
      if (peer.*field.value != mine->*field.value)
        CHORUS_FAIL(ncclInvalidUsage, "rank %d and rank %d differ in %s: %lld against %lld; "
                    "every rank of a communicator needs the same", comm->rank, r, field.what,
                    static_cast<long long>(mine->*field.value),
                    static_cast<long long>(peer.*field.value));
    }
    mine->coreEach = mine->coreEach && peer.coreEach;
  }
  return ncclSuccess;
}

}  // namespace

ncclResult_t setupDirect(ncclComm* comm) {
  DirectSettings settings;
  const ncclResult_t read = readDirectSettings(&settings);
  if (comm->nranks == 1) return read;
  DirectChoices mine{};
  mine.settingsValid = read == ncclSuccess;
  mine.direct = read == ncclSuccess && settings.algo != "ring" && !comm->shmDisabled &&
                everyRankWithUs(comm, false);
  mine.device = !comm->onHost();
  mine.p2p = mine.device && deviceP2pEnabled();
  mine.oneShotBytes = settings.oneShot;
  mine.stageBytes = mine.device ? settings.deviceStage : settings.stage;
  mine.coreEach = comm->nranks <= usableCpus();
  // Every rank learns whether every setting was valid: one that fails alone
  // would leave its peers waiting for it in the arena.
  CHORUS_CHECK(agreeOnDirectChoices(comm, read, &mine));
  if (!mine.direct) return ncclSuccess;

  DirectState& state = comm->direct;
  const bool device = mine.device != 0;
  const bool p2p = mine.p2p != 0;
  // Ranks of one process read each other's buffers (on devices: only when
  // they share one, so no peer access is needed); they stage only one-shot
  // AllReduce messages.
  state.allInThisProcess = everyRankWithUs(comm, true) && (!device || oneDeviceInThisProcess(comm));
  const size_t oneShotBytes = static_cast<size_t>(settings.oneShot);
  size_t stageBytes = state.allInThisProcess ? std::max<size_t>(oneShotBytes, 64)
                                             : static_cast<size_t>(settings.stage);
  if (device) stageBytes = static_cast<size_t>(settings.deviceStage);
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
  const bool coreEach = mine.coreEach != 0;
  const int spins = coreEach ? kLongSpins : kSharedSpins;
  const int yields = coreEach ? kLongYields : kSharedYields;
  const size_t smallRound = std::max<size_t>(stageBytes / 4, 64);
  state.roundBytes = coreEach ? smallRound : stageBytes;
  state.oneWayRoundBytes = smallRound;
  state.readersStepBack = coreEach;
  for (int r = 0; r < comm->nranks; ++r) {
    WaitContext& wait = state.waits[r];
    wait.abort = &comm->abortFlag;
    wait.timeoutSeconds = comm->timeoutSeconds;
    wait.selfRank = comm->rank;
    wait.peerRank = r;
    wait.spins = spins;
    wait.yields = yields;
    wait.peerPid = sameProcess(comm->peers[r], comm->peers[comm->rank])
                       ? 0 : static_cast<pid_t>(comm->peers[r].pid);
  }
  // Zero-filled, so its pages are faulted in now rather than mid-operation.
  comm->directScratch.assign(kDirectChunkBytes, 0);
  state.scratch = comm->directScratch.data();
  state.chunkBytes = kDirectChunkBytes;
#if defined(CHORUS_HAVE_CUDA)
  if (device) CHORUS_CHECK(setupDeviceDirect(comm, stageBytes, p2p));
#endif
  INFO(kLogInit, "rank %d: direct algorithms on (%s, one-shot AllReduce up to %zu bytes)",
       comm->rank, state.allInThisProcess ? "shared buffers" : "staged rounds",
       comm->oneShotBytes);
  return ncclSuccess;
}

}  // namespace chorus
