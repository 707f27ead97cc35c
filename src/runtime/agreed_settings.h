// The settings every rank of a communicator must share, agreed at init.
//
// Each process reads its own environment, so ranks can be started with
// different values. A rank whose ring slots, channel count, transport or
// node-arena rounds differ from its peers' would build connections they do
// not expect: it waits until CHORUS_TIMEOUT, maps a segment of the wrong
// size (SIGBUS), or reads the wrong bytes. So the ranks gather what they
// read once, before any connection opens, and all fail alike when it
// differs: ncclInvalidUsage naming the setting and both values. A rank whose
// own settings are invalid fails with its own error (with one rank too),
// and its peers learn which rank it was instead of waiting for it. Four
// choices are combined instead of compared: a core per rank, lending of
// registered buffers, reaching peers' memory through the kernel, and
// whether that pays on this machine, hold only where they hold on every
// rank.
//
// The ring kernel on devices agrees on its own settings when it is created
// (runtime/device_ring.cc).
#pragma once

#include <cstddef>

#include "nccl.h"

struct ncclComm;

namespace chorus {

enum { kCmaOff = 0, kCmaOn = 1, kCmaAuto = 2 };

struct AgreedSettings {
  // Every communicator.
  size_t slotSize = 0;       // ring FIFO slot: NCCL_BUFFSIZE / kSteps, whole 64-byte lines
  bool shmDisabled = false;  // NCCL_SHM_DISABLE
  int nChannels = 1;         // NCCL_MIN_NCHANNELS / NCCL_MAX_NCHANNELS, at most 32
  // The direct algorithms (runtime/direct_setup.h); the rest is unused
  // without them.
  bool direct = false;        // every rank on this host, shared memory allowed, not CHORUS_HOST_ALGO=ring
  bool device = false;        // bound to a CUDA device, not the host
  bool p2p = false;           // device staging mapped between GPUs (NCCL_P2P_DISABLE)
  bool lendRegistered = false;  // registered buffers lent to peers (NCCL_LOCAL_REGISTER on
                                // every rank; device buffers only with p2p)
  size_t oneShotBytes = 0;    // CHORUS_ONESHOT_BYTES
  size_t stageBytes = 0;      // CHORUS_STAGE_BYTES, or CHORUS_DEVICE_STAGE_BYTES on devices
  bool coreEach = false;      // a core per rank: follows each process's affinity, true only
                              // when true on every rank (a difference is no error)
  bool atMostTwoRanksPerCore = false;  // the same for at most two ranks per core
  int cma = 0;                // CHORUS_CMA: kCmaAuto, kCmaOn or kCmaOff
  size_t cmaBytes = 0;        // CHORUS_CMA_BYTES
  size_t cmaOneWayBytes = 0;  // CHORUS_CMA_ONE_WAY_BYTES
  size_t cmaReduceMaxBytes = 0;  // CHORUS_CMA_REDUCE_MAX_BYTES
  size_t cmaSharedCoresBytes = 0;     // CHORUS_CMA_SHARED_CORES_BYTES
  size_t cmaSharedCoresMaxBytes = 0;  // CHORUS_CMA_SHARED_CORES_MAX_BYTES
  bool crossMemory = false;   // host ranks in several processes, CHORUS_CMA not 0, and every
                              // rank can reach every peer's process (transport/shm/cross_memory.h):
                              // true only when true on every rank (a difference is no error)
  bool kernelCopiesPay = false;  // CHORUS_CMA=auto: this machine copies through the kernel
                                 // fast enough (kernelCopySlowdown); combined as crossMemory
  size_t streamBytes = 0;     // CHORUS_STREAM_BYTES: this rank's own, not compared
};

// Reads this rank's settings, checks them, and (with more than one rank)
// compares them with every peer's through the bootstrap. Every rank of the
// communicator must call it at the same point of init.
ncclResult_t agreeOnSettings(ncclComm* comm, AgreedSettings* out);

}  // namespace chorus
