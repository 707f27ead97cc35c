#include "runtime/config.h"

#include <cstddef>
#include <cstring>

#include "common/result.h"

namespace chorus {
namespace {

constexpr unsigned kConfigMagic = 0xcafebeef;

// Reads an int field when the caller's struct is long enough to hold it and
// the caller set it.
bool readInt(size_t size, size_t offset, int value, int* out) {
  if (offset + sizeof(int) > size || value == NCCL_CONFIG_UNDEF_INT) return false;
  *out = value;
  return true;
}

bool readString(size_t size, size_t offset, const char* value,
                std::string* out) {
  if (offset + sizeof(const char*) > size || value == NCCL_CONFIG_UNDEF_PTR) return false;
  *out = value;
  return true;
}

ncclResult_t checkBool(const char* field, int value) {
  if (value != 0 && value != 1)
    CHORUS_FAIL(ncclInvalidArgument, "ncclConfig_t.%s = %d: must be 0 or 1", field, value);
  return ncclSuccess;
}

}  // namespace

ncclResult_t parseConfig(const ncclConfig_t* config, CommConfig* out) {
  *out = CommConfig{};
  if (config == nullptr) return ncclSuccess;
  if (config->magic != kConfigMagic)
    CHORUS_FAIL(ncclInvalidArgument,
                "ncclConfig_t has magic 0x%x, expected 0x%x: initialise it with "
                "NCCL_CONFIG_INITIALIZER",
                config->magic, kConfigMagic);
  const size_t minimum = offsetof(ncclConfig_t, blocking) + sizeof(int);
  if (config->size < minimum)
    CHORUS_FAIL(ncclInvalidArgument, "ncclConfig_t.size = %zu is too small (at least %zu)",
                config->size, minimum);
  // Only the bytes the caller's header knew about are read.
  ncclConfig_t c;
  memset(&c, 0, sizeof(c));
  const size_t size = config->size < sizeof(c) ? config->size : sizeof(c);
  memcpy(&c, config, size);

  int v = 0;
#define CHORUS_INT_FIELD(field) readInt(size, offsetof(ncclConfig_t, field), c.field, &v)
  if (CHORUS_INT_FIELD(blocking)) {
    CHORUS_CHECK(checkBool("blocking", v));
    out->blocking = v == 1;
  }
  if (CHORUS_INT_FIELD(cgaClusterSize)) {
    if (v < 0 || v > 8)
      CHORUS_FAIL(ncclInvalidArgument, "ncclConfig_t.cgaClusterSize = %d: must be 0..8", v);
    out->cgaClusterSize = v;
  }
  if (CHORUS_INT_FIELD(minCTAs)) {
    if (v < 1) CHORUS_FAIL(ncclInvalidArgument, "ncclConfig_t.minCTAs = %d: must be >= 1", v);
    out->minCTAs = v;
  }
  if (CHORUS_INT_FIELD(maxCTAs)) {
    if (v < 1) CHORUS_FAIL(ncclInvalidArgument, "ncclConfig_t.maxCTAs = %d: must be >= 1", v);
    out->maxCTAs = v;
  }
  if (out->minCTAs > out->maxCTAs)
    CHORUS_FAIL(ncclInvalidArgument, "ncclConfig_t.minCTAs = %d exceeds maxCTAs = %d",
                out->minCTAs, out->maxCTAs);
  readString(size, offsetof(ncclConfig_t, netName), c.netName, &out->netName);
  if (CHORUS_INT_FIELD(splitShare)) {
    CHORUS_CHECK(checkBool("splitShare", v));
    out->splitShare = v == 1;
  }
  if (CHORUS_INT_FIELD(trafficClass)) out->trafficClass = v;
  readString(size, offsetof(ncclConfig_t, commName), c.commName, &out->commName);
  if (CHORUS_INT_FIELD(collnetEnable)) {
    CHORUS_CHECK(checkBool("collnetEnable", v));
    out->collnetEnable = v == 1;
  }
  if (CHORUS_INT_FIELD(CTAPolicy)) {
    if (v != NCCL_CTA_POLICY_DEFAULT && v != NCCL_CTA_POLICY_EFFICIENCY && v != NCCL_CTA_POLICY_ZERO)
      CHORUS_FAIL(ncclInvalidArgument, "ncclConfig_t.CTAPolicy = %d: unknown policy", v);
    out->ctaPolicy = v;
  }
  if (CHORUS_INT_FIELD(shrinkShare)) {
    CHORUS_CHECK(checkBool("shrinkShare", v));
    out->shrinkShare = v == 1;
  }
  if (CHORUS_INT_FIELD(nvlsCTAs)) {
    if (v < 0) CHORUS_FAIL(ncclInvalidArgument, "ncclConfig_t.nvlsCTAs = %d: must be >= 0", v);
    out->nvlsCTAs = v;
  }
  if (CHORUS_INT_FIELD(nChannelsPerNetPeer)) {
    if (v < 0)
      CHORUS_FAIL(ncclInvalidArgument, "ncclConfig_t.nChannelsPerNetPeer = %d: must be >= 0", v);
    out->nChannelsPerNetPeer = v;
  }
  if (CHORUS_INT_FIELD(nvlinkCentricSched)) {
    CHORUS_CHECK(checkBool("nvlinkCentricSched", v));
    out->nvlinkCentricSched = v == 1;
  }
#undef CHORUS_INT_FIELD
  return ncclSuccess;
}

}  // namespace chorus
