// What an ncclUniqueId holds: the root's listening address and a random
// 64-bit magic that every bootstrap connection must present.
//
// Layout of the 128 bytes: "CHR1" signature, 4 reserved bytes, the magic,
// then the socket address; the rest is zero. The signature lets a malformed
// or uninitialised id be rejected with a clear message.
#pragma once

#include <cstdint>

#include "bootstrap/socket_address.h"
#include "nccl.h"

namespace chorus {

struct BootstrapId {
  uint64_t magic = 0;
  SocketAddress root{};
};

void encodeId(const BootstrapId& id, ncclUniqueId* out);
// A wrong signature, an unknown address family or port 0 is
// ncclInvalidArgument.
ncclResult_t decodeId(const ncclUniqueId& in, BootstrapId* out);

uint64_t randomMagic();

// The id every rank derives from NCCL_COMM_ID=host:port: the root's address
// and a magic hashed from the variable's text, so ranks agree without
// exchanging anything. ncclInvalidArgument when the value does not parse.
ncclResult_t idFromCommIdEnv(const char* value, BootstrapId* out);

}  // namespace chorus
