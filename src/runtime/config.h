// A communicator's configuration, read from the caller's ncclConfig_t.
//
// Programs built against older nccl.h versions pass a shorter ncclConfig_t:
// its `size` says how many bytes are theirs, and only those are read; fields
// past it, and fields left at NCCL_CONFIG_UNDEF_*, take Chorus's defaults.
#pragma once

#include <string>

#include "nccl.h"

namespace chorus {

struct CommConfig {
  bool blocking = true;
  int cgaClusterSize = 4;
  int minCTAs = 1;
  int maxCTAs = 32;
  std::string netName;
  bool splitShare = false;
  int trafficClass = 0;
  std::string commName;
  bool collnetEnable = false;
  int ctaPolicy = NCCL_CTA_POLICY_DEFAULT;
  bool shrinkShare = false;
  int nvlsCTAs = 0;
  int nChannelsPerNetPeer = 0;
  bool nvlinkCentricSched = false;
};

// NULL gives the defaults. A wrong magic, a size too small to hold
// `blocking`, or a value out of range is ncclInvalidArgument naming the field.
ncclResult_t parseConfig(const ncclConfig_t* config, CommConfig* out);

}  // namespace chorus
