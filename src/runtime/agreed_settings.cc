#include "runtime/agreed_settings.h"

#include <sched.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"
#include "runtime/comm.h"
#include "runtime/device_direct.h"
#include "runtime/lent_registrations.h"
#include "transport/shm/cross_memory.h"
#include "transport/fifo.h"

namespace chorus {
namespace {

constexpr int64_t kMaxBuffSize = int64_t{1} << 31;
constexpr int64_t kMaxChannels = 32;
constexpr int64_t kMaxStageBytes = int64_t{256} << 20;

int usableCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

ncclResult_t readInRange(const char* name, int64_t low, int64_t high, int64_t* out) {
  *out = settingInt(name);
  if (*out < low || *out > high)
    CHORUS_FAIL(ncclInvalidArgument, "%s=%lld: must be between %lld and %lld", name,
                static_cast<long long>(*out), static_cast<long long>(low),
                static_cast<long long>(high));
  return ncclSuccess;
}

// A size in bytes: any count that is not negative.
ncclResult_t readByteCount(const char* name, size_t* out) {
  const int64_t value = settingInt(name);
  if (value < 0)
    CHORUS_FAIL(ncclInvalidArgument, "%s=%lld: must not be negative", name,
                static_cast<long long>(value));
  *out = static_cast<size_t>(value);
  return ncclSuccess;
}

// Whether this rank can read and write the memory of every peer in another
// process (all on this host): the kernel must let it, and the pid must name
// the peer here (the same pid namespace).
bool canReadEveryPeer(const ncclComm* comm) {
  const PeerInfo& self = comm->peers[comm->rank];
  for (const PeerInfo& peer : comm->peers) {
    if (sameProcess(peer, self)) continue;
    const pid_t pid = probeablePid(peer, self);
    std::string why = "its pid is in another pid namespace";
    if (pid == 0 || !canReachProcess(pid, peer.crossMemoryProbe, &why)) {
      INFO(kLogInit, "rank %d cannot reach rank %d's memory (%s): collectives go through "
           "staging", comm->rank, peer.rank, why.c_str());
      return false;
    }
  }
  return true;
}

// This rank's settings, checked; the first invalid one is the error.
ncclResult_t readSettings(const ncclComm* comm, AgreedSettings* out) {
  int64_t buffSize = 0;
  CHORUS_CHECK(readInRange("NCCL_BUFFSIZE", kSteps * 64, kMaxBuffSize, &buffSize));
  // Slots hold whole 64-byte lines, so that every datatype divides them.
  out->slotSize = static_cast<size_t>(buffSize / kSteps) / 64 * 64;
  out->shmDisabled = settingInt("NCCL_SHM_DISABLE") != 0;
  const int64_t minChannels = std::max<int64_t>(1, settingInt("NCCL_MIN_NCHANNELS"));
  const int64_t maxChannels = std::max(minChannels, settingInt("NCCL_MAX_NCHANNELS"));
  out->nChannels = static_cast<int>(std::min(maxChannels, kMaxChannels));

  const std::string algo = settingString("CHORUS_HOST_ALGO");
  if (algo != "auto" && algo != "ring")
    CHORUS_FAIL(ncclInvalidArgument, "CHORUS_HOST_ALGO=%s: must be auto or ring", algo.c_str());
  CHORUS_CHECK(readByteCount("CHORUS_ONESHOT_BYTES", &out->oneShotBytes));
  int64_t stage = 0, deviceStage = 0;
  CHORUS_CHECK(readInRange("CHORUS_STAGE_BYTES", 64, kMaxStageBytes, &stage));
  CHORUS_CHECK(readInRange("CHORUS_DEVICE_STAGE_BYTES", 64, kMaxStageBytes, &deviceStage));
  out->direct = algo != "ring" && !out->shmDisabled && everyRankWithUs(comm, false);
  out->device = !comm->onHost();
  out->p2p = out->device && deviceP2pEnabled();
  // Device buffers are lent only between GPUs that map each other's memory;
  // host blocks wherever peers may map them (runtime/host_blocks.h).
  out->lendRegistered = (out->p2p || !out->device) && localRegistrationEnabled();
  out->stageBytes = static_cast<size_t>(out->device ? deviceStage : stage);
  out->coreEach = comm->nranks <= usableCpus();
  out->atMostTwoRanksPerCore = comm->nranks <= 2 * usableCpus();
  const std::string cma = settingString("CHORUS_CMA");
  if (cma != "auto" && cma != "0" && cma != "1")
    CHORUS_FAIL(ncclInvalidArgument, "CHORUS_CMA=%s: must be auto, 0 or 1", cma.c_str());
  out->cma = cma == "auto" ? kCmaAuto : cma == "1" ? kCmaOn : kCmaOff;
  CHORUS_CHECK(readByteCount("CHORUS_CMA_BYTES", &out->cmaBytes));
  CHORUS_CHECK(readByteCount("CHORUS_CMA_ONE_WAY_BYTES", &out->cmaOneWayBytes));
  CHORUS_CHECK(readByteCount("CHORUS_CMA_REDUCE_MAX_BYTES", &out->cmaReduceMaxBytes));
  CHORUS_CHECK(readByteCount("CHORUS_CMA_SHARED_CORES_BYTES", &out->cmaSharedCoresBytes));
  CHORUS_CHECK(readByteCount("CHORUS_CMA_SHARED_CORES_MAX_BYTES", &out->cmaSharedCoresMaxBytes));
  CHORUS_CHECK(readByteCount("CHORUS_STREAM_BYTES", &out->streamBytes));
  out->crossMemory = out->direct && !out->device && out->cma != kCmaOff &&
                     !everyRankWithUs(comm, true) && canReadEveryPeer(comm);
  // Timed only where `auto` may use it (direct_mode.cc).
  if (out->crossMemory && out->cma == kCmaAuto && out->atMostTwoRanksPerCore) {
    const double slowdown = kernelCopySlowdown();
    out->kernelCopiesPay = slowdown < kKernelCopyBreakEven;
    INFO(kLogInit, "rank %d: a copy through the kernel takes %.2fx a memcpy's time: "
         "collectives %s", comm->rank, slowdown,
         out->kernelCopiesPay ? "may copy through the kernel" : "stay staged");
  }
  return ncclSuccess;
}

// What one rank sends its peers: its settings and whether they were valid
// (if not, its own log says why).
struct SettingsRecord {
  int64_t valid;
  int64_t slotSize, shmDisabled, nChannels;
  int64_t direct, device, p2p, lendRegistered, oneShotBytes, stageBytes, coreEach,
      atMostTwoRanksPerCore;
  int64_t cma, cmaBytes, cmaOneWayBytes, cmaReduceMaxBytes, cmaSharedCoresBytes,
      cmaSharedCoresMaxBytes, crossMemory, kernelCopiesPay;
};

SettingsRecord recordOf(const AgreedSettings& s, bool valid) {
  return SettingsRecord{valid, static_cast<int64_t>(s.slotSize), s.shmDisabled, s.nChannels,
                        s.direct, s.device, s.p2p, s.lendRegistered,
                        static_cast<int64_t>(s.oneShotBytes), static_cast<int64_t>(s.stageBytes),
                        s.coreEach, s.atMostTwoRanksPerCore, s.cma,
                        static_cast<int64_t>(s.cmaBytes),
                        static_cast<int64_t>(s.cmaOneWayBytes),
                        static_cast<int64_t>(s.cmaReduceMaxBytes),
                        static_cast<int64_t>(s.cmaSharedCoresBytes),
                        static_cast<int64_t>(s.cmaSharedCoresMaxBytes), s.crossMemory,
                        s.kernelCopiesPay};
}

// Which peers a setting must match.
enum class Among {
  Everyone,   // the ring's shape
  SameHost,   // how ranks of one host connect (ranks on other hosts use sockets)
  Direct,     // only when the direct algorithms run (every rank on one host)
};

struct Field {
  int64_t SettingsRecord::*value;
  const char* what;
  Among among;
};

// In the order they are checked: a difference explains those after it.
const Field kSameOnEveryRank[] = {
    {&SettingsRecord::slotSize, "ring slot bytes (NCCL_BUFFSIZE / 8)", Among::Everyone},
    {&SettingsRecord::nChannels, "ring channels (NCCL_MIN_NCHANNELS, NCCL_MAX_NCHANNELS)", Among::Everyone},
    {&SettingsRecord::shmDisabled, "NCCL_SHM_DISABLE", Among::SameHost},
    // Differs only with CHORUS_HOST_ALGO: its other inputs are compared above
    // or the same everywhere (whether every rank is on one host).
    {&SettingsRecord::direct, "direct algorithms on (CHORUS_HOST_ALGO)", Among::Everyone},
    {&SettingsRecord::device, "bound to a GPU (CHORUS_DEVICE)", Among::Direct},
    {&SettingsRecord::p2p, "GPU memory mapped between ranks (NCCL_P2P_DISABLE)", Among::Direct},
    {&SettingsRecord::oneShotBytes, "CHORUS_ONESHOT_BYTES", Among::Direct},
    {&SettingsRecord::stageBytes, "CHORUS_STAGE_BYTES (CHORUS_DEVICE_STAGE_BYTES on GPUs)", Among::Direct},
    {&SettingsRecord::cma, "CHORUS_CMA (2: auto)", Among::Direct},
    {&SettingsRecord::cmaBytes, "CHORUS_CMA_BYTES", Among::Direct},
    {&SettingsRecord::cmaOneWayBytes, "CHORUS_CMA_ONE_WAY_BYTES", Among::Direct},
    {&SettingsRecord::cmaReduceMaxBytes, "CHORUS_CMA_REDUCE_MAX_BYTES", Among::Direct},
    {&SettingsRecord::cmaSharedCoresBytes, "CHORUS_CMA_SHARED_CORES_BYTES", Among::Direct},
    {&SettingsRecord::cmaSharedCoresMaxBytes, "CHORUS_CMA_SHARED_CORES_MAX_BYTES", Among::Direct},
};

bool mustMatch(const Field& field, const ncclComm* comm, int peer, bool direct) {
  switch (field.among) {
    case Among::Everyone: return true;
    case Among::SameHost: return comm->peers[peer].hostHash == comm->peers[comm->rank].hostHash;
    case Among::Direct: return direct;
  }
  return true;
}

}  // namespace

ncclResult_t agreeOnSettings(ncclComm* comm, AgreedSettings* out) {
  *out = AgreedSettings{};
  const ncclResult_t read = readSettings(comm, out);
  if (comm->nranks == 1) return read;
  // Every rank learns whether every rank's settings were valid: one that
  // failed alone would leave its peers waiting for it.
  std::vector<SettingsRecord> all(comm->nranks);
  const SettingsRecord mine = recordOf(*out, read == ncclSuccess);
  all[comm->rank] = mine;
  CHORUS_CHECK(comm->bootstrap->allGather(all.data(), sizeof(SettingsRecord)));
  if (read != ncclSuccess) return read;
  for (int r = 0; r < comm->nranks; ++r) {
    const SettingsRecord& peer = all[r];
    if (!peer.valid)
      CHORUS_FAIL(ncclInvalidUsage, "rank %d has invalid settings (its log says which)", r);
    for (const Field& field : kSameOnEveryRank) {
      if (!mustMatch(field, comm, r, out->direct)) continue;
      if (peer.*field.value != mine.*field.value)
        CHORUS_FAIL(ncclInvalidUsage, "rank %d and rank %d differ in %s: %lld against %lld; "
                    "every rank of a communicator needs the same", comm->rank, r, field.what,
                    static_cast<long long>(mine.*field.value),
                    static_cast<long long>(peer.*field.value));
    }
    // Not errors: a rank without a core of its own makes every rank pace
    // its waits for shared cores; a rank that lends nothing (it maps no
    // peer's registrations either) makes lending pointless for all; a rank
    // that cannot reach a peer's memory, or finds kernel copies slow, needs
    // every rank to stage.
    out->coreEach = out->coreEach && peer.coreEach != 0;
    out->atMostTwoRanksPerCore = out->atMostTwoRanksPerCore && peer.atMostTwoRanksPerCore != 0;
    out->lendRegistered = out->lendRegistered && peer.lendRegistered != 0;
    out->crossMemory = out->crossMemory && peer.crossMemory != 0;
    out->kernelCopiesPay = out->kernelCopiesPay && peer.kernelCopiesPay != 0;
  }
  return ncclSuccess;
}

}  // namespace chorus
