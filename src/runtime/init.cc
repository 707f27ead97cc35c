#include "runtime/init.h"

#include <unistd.h>

#include <cstring>
#include <mutex>
#include <string>

#include "bootstrap/interfaces.h"
#include "bootstrap/root.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"
#include "runtime/connect.h"
#include "runtime/device.h"
#include "runtime/device_queue.h"
#include "runtime/group.h"
#include "topology/host_identity.h"
#include "transport/shm/cross_memory.h"

namespace chorus {
namespace {

void printVersionOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (logEnabled(LogLevel::Version, kLogInit))
      logMessage(LogLevel::Version, kLogInit, __FILE__, __LINE__, "NCCL version %d.%d.%d+chorus",
                 NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
  });
}

// With NCCL_COMM_ID, rank 0 serves as root on the named port, on every local
// address of its family (the name may resolve to any of them).
ncclResult_t startRootFromEnv(const BootstrapId& id) {
  SocketAddress any{};
  any.sa.sa_family = id.root.sa.sa_family;
  if (any.sa.sa_family == AF_INET) any.sin.sin_addr.s_addr = htonl(INADDR_ANY);
  else any.sin6.sin6_addr = in6addr_any;
  setAddressPort(&any, addressPort(id.root));
  SocketAddress bound{};
  return startRoot(any, id.magic, &bound);
}

}  // namespace

ncclResult_t bringUpComm(ncclComm* comm, const InitRequest& request) {
  setLogRank(comm->rank);
  printVersionOnce();
  CHORUS_CHECK(useDevice(comm->cudaDev));
  const bool servesRoot = request.startRootFromEnv && comm->rank == 0;
  if (servesRoot) CHORUS_CHECK(startRootFromEnv(request.roots[0]));
  const ncclResult_t joined = Bootstrap::create(request.roots, comm->rank, comm->nranks,
                                                &comm->abortFlag, &comm->bootstrap);
  // The root this rank started would otherwise wait for ranks forever,
  // holding the port (a retry could not listen there).
  if (joined != ncclSuccess && servesRoot)
    stopLocalRoot(request.roots[0].magic,
                  "rank 0, which serves as the bootstrap root (NCCL_COMM_ID), failed to join it: " +
                      lastError());
  CHORUS_CHECK(joined);
  // Before peers learn where to try (agreed_settings.cc).
  if (settingString("CHORUS_CMA") != "0") allowPeersToReachThisProcess();
  comm->peers.assign(comm->nranks, PeerInfo{});
  comm->peers[comm->rank] =
      PeerInfo{comm->rank, comm->cudaDev, hostIdentity(), static_cast<int64_t>(getpid()),
               pidNamespace(), processToken(), crossMemoryProbeAddress()};
  CHORUS_CHECK(comm->bootstrap->allGather(comm->peers.data(), sizeof(PeerInfo)));
  // The magic only: NCCL_COMM_ID lets ranks spell the root's address apart.
  comm->commHash = hashBytes(&request.roots[0].magic, sizeof(request.roots[0].magic));
  CHORUS_CHECK(setupDataPath(comm));
  if (!comm->onHost()) CHORUS_CHECK(DeviceQueue::create(comm, &comm->deviceQueue));
  INFO(kLogInit, "comm %p rank %d nRanks %d cudaDev %d%s commHash 0x%llx - Init COMPLETE",
       static_cast<void*>(comm), comm->rank, comm->nranks, comm->cudaDev,
       comm->onHost() ? " (host)" : "", static_cast<unsigned long long>(comm->commHash));
  return ncclSuccess;
}

ncclResult_t newCommWithConfig(const CommConfig& config, ncclComm** out) {
  ncclComm* comm = new ncclComm();
  comm->cudaDev = deviceForNewComm();
  comm->config = config;
  *out = comm;
  return ncclSuccess;
}

ncclResult_t createRoot(const SocketAddress& near, BootstrapId* out) {
  SocketAddress addr = near;
  setAddressPort(&addr, 0);
  out->magic = randomMagic();
  return startRoot(addr, out->magic, &out->root);
}

ncclResult_t getUniqueId(ncclUniqueId* out) {
  BootstrapId id;
  std::string env = settingString("NCCL_COMM_ID");
  if (!env.empty()) {
    CHORUS_CHECK(idFromCommIdEnv(env.c_str(), &id));
  } else {
    std::vector<NetInterface> interfaces;
    CHORUS_CHECK(findInterfaces(&interfaces));
    CHORUS_CHECK(createRoot(interfaces[0].addr, &id));
  }
  encodeId(id, out);
  return ncclSuccess;
}

ncclResult_t commInitRank(ncclComm_t* out, int nranks, int rank, InitRequest request,
                          const ncclConfig_t* config) {
  CommConfig parsed;
  CHORUS_CHECK(parseConfig(config, &parsed));
  ncclComm* comm = nullptr;
  CHORUS_CHECK(newCommWithConfig(parsed, &comm));
  comm->rank = rank;
  comm->nranks = nranks;
  *out = comm;
  ncclResult_t result = runCommJob(comm, [comm, request] { return bringUpComm(comm, request); });
  if (result != ncclSuccess && result != ncclInProgress && comm->config.blocking && !inGroup()) {
    freeComm(comm);
    *out = nullptr;
  }
  return result;
}

ncclResult_t commInitAll(ncclComm_t* comms, int ndev, const int* devlist) {
  ncclUniqueId uid;
  BootstrapId id;
  std::vector<NetInterface> interfaces;
  CHORUS_CHECK(findInterfaces(&interfaces));
  CHORUS_CHECK(createRoot(interfaces[0].addr, &id));
  encodeId(id, &uid);
  const int gpus = deviceForNewComm() < 0 ? 0 : cudaDeviceCount();
  int original = -1;
#ifdef CHORUS_HAVE_CUDA
  if (gpus > 0) original = deviceForNewComm();
#endif
  for (int i = 0; i < ndev; ++i) comms[i] = nullptr;
  CHORUS_CHECK(groupStart());
  ncclResult_t result = ncclSuccess;
  for (int i = 0; i < ndev && result == ncclSuccess; ++i) {
    // Ranks beyond the GPU count share GPUs round-robin (Chorus allows it).
    if (gpus > 0) result = useDevice(devlist ? devlist[i] : i % gpus);
    if (result == ncclSuccess)
      result = commInitRank(&comms[i], ndev, i, InitRequest{{id}, false}, nullptr);
  }
  if (original >= 0) useDevice(original);
  ncclResult_t end = groupEnd();
  if (result == ncclSuccess) result = end;
  if (result != ncclSuccess) {
    std::string message = lastError();
    for (int i = 0; i < ndev; ++i) {
      if (comms[i] != nullptr) freeComm(comms[i]);
      comms[i] = nullptr;
    }
    setLastError(message);
  }
  return result;
}

}  // namespace chorus
