#include "bootstrap/unique_id.h"

#include <cstring>
#include <random>
#include <string>

#include "common/hash.h"
#include "common/result.h"

namespace chorus {
namespace {
constexpr char kSignature[4] = {'C', 'H', 'R', '1'};
constexpr size_t kMagicOffset = 8;
constexpr size_t kAddressOffset = 16;
static_assert(kAddressOffset + sizeof(SocketAddress) <= NCCL_UNIQUE_ID_BYTES, "id too small");
}  // namespace

void encodeId(const BootstrapId& id, ncclUniqueId* out) {
  memset(out, 0, sizeof(*out));
  memcpy(out->internal, kSignature, sizeof(kSignature));
  memcpy(out->internal + kMagicOffset, &id.magic, sizeof(id.magic));
  memcpy(out->internal + kAddressOffset, &id.root, sizeof(id.root));
}

ncclResult_t decodeId(const ncclUniqueId& in, BootstrapId* out) {
  if (memcmp(in.internal, kSignature, sizeof(kSignature)) != 0)
    CHORUS_FAIL(ncclInvalidArgument,
                "the unique id is malformed (no Chorus signature): pass the id returned by "
                "ncclGetUniqueId on one rank to every rank");
  BootstrapId id;
  memcpy(&id.magic, in.internal + kMagicOffset, sizeof(id.magic));
  memcpy(&id.root, in.internal + kAddressOffset, sizeof(id.root));
  int family = id.root.sa.sa_family;
  if ((family != AF_INET && family != AF_INET6) || addressPort(id.root) == 0)
    CHORUS_FAIL(ncclInvalidArgument, "the unique id is malformed (bad root address)");
  *out = id;
  return ncclSuccess;
}

uint64_t randomMagic() {
  std::random_device device;
  uint64_t magic = (static_cast<uint64_t>(device()) << 32) ^ device();
  return magic == 0 ? 1 : magic;
}

ncclResult_t idFromCommIdEnv(const char* value, BootstrapId* out) {
  SocketAddress addr{};
  if (parseHostPort(value, &addr) != ncclSuccess)
    CHORUS_FAIL(ncclInvalidArgument, "NCCL_COMM_ID=%s: %s", value, lastError().c_str());
  out->root = addr;
  // Every rank derives the same magic however it spells the root's host
  // (127.0.0.1, localhost, the host's name or address): from the port. Rank
  // 0's root listens on that port on every local address, so another job
  // cannot be there at the same time.
  const char kTag[] = "NCCL_COMM_ID port ";
  const std::string text = kTag + std::to_string(addressPort(addr));
  out->magic = hashBytes(text.data(), text.size());
  if (out->magic == 0) out->magic = 1;
  return ncclSuccess;
}

}  // namespace chorus
