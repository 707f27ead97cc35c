// Socket addresses (IPv4 and IPv6) and their text forms.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "nccl.h"

namespace chorus {

union SocketAddress {
  sockaddr sa;
  sockaddr_in sin;
  sockaddr_in6 sin6;
};

// Length to pass to bind/connect for the address's family (0 if unset).
socklen_t addressLength(const SocketAddress& addr);
int addressPort(const SocketAddress& addr);
void setAddressPort(SocketAddress* addr, int port);
bool sameAddress(const SocketAddress& a, const SocketAddress& b);

// "10.0.0.1:5000" or "[fe80::1%eth0]:5000".
std::string addressToString(const SocketAddress& addr);

// Parses "host:port", "ipv4:port" or "[ipv6]:port" (hostnames are resolved).
// A missing or out-of-range port, an empty host or a name that does not
// resolve is ncclInvalidArgument with a message naming the text. A name that
// resolves to both families gives its first IPv4 address (its first IPv6 one
// when NCCL_SOCKET_FAMILY=AF_INET6); brackets take numeric IPv6 only, with an
// optional %scope (interface name or index). An IPv6 address without
// brackets and dotted digits that are not a valid IPv4 address are refused.
ncclResult_t parseHostPort(const char* text, SocketAddress* out);

}  // namespace chorus
