#include "bootstrap/socket_address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/result.h"
#include "common/settings.h"

namespace chorus {

socklen_t addressLength(const SocketAddress& addr) {
  switch (addr.sa.sa_family) {
    case AF_INET: return sizeof(sockaddr_in);
    case AF_INET6: return sizeof(sockaddr_in6);
    default: return 0;
  }
}

int addressPort(const SocketAddress& addr) {
  switch (addr.sa.sa_family) {
    case AF_INET: return ntohs(addr.sin.sin_port);
    case AF_INET6: return ntohs(addr.sin6.sin6_port);
    default: return 0;
  }
}

void setAddressPort(SocketAddress* addr, int port) {
  if (addr->sa.sa_family == AF_INET) addr->sin.sin_port = htons(static_cast<uint16_t>(port));
  if (addr->sa.sa_family == AF_INET6) addr->sin6.sin6_port = htons(static_cast<uint16_t>(port));
}

bool sameAddress(const SocketAddress& a, const SocketAddress& b) {
  if (a.sa.sa_family != b.sa.sa_family) return false;
  if (a.sa.sa_family == AF_INET) {
    return a.sin.sin_port == b.sin.sin_port && a.sin.sin_addr.s_addr == b.sin.sin_addr.s_addr;
  }
  if (a.sa.sa_family == AF_INET6) {
    return a.sin6.sin6_port == b.sin6.sin6_port && a.sin6.sin6_scope_id == b.sin6.sin6_scope_id &&
           memcmp(&a.sin6.sin6_addr, &b.sin6.sin6_addr, sizeof(in6_addr)) == 0;
  }
  return a.sa.sa_family == AF_UNSPEC;  // two unset addresses are the same
}

std::string addressToString(const SocketAddress& addr) {
  char host[INET6_ADDRSTRLEN] = {};
  if (addr.sa.sa_family == AF_INET) {
    inet_ntop(AF_INET, &addr.sin.sin_addr, host, sizeof(host));
    return std::string(host) + ":" + std::to_string(addressPort(addr));
  }
  if (addr.sa.sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &addr.sin6.sin6_addr, host, sizeof(host));
    std::string text = std::string("[") + host;
    if (addr.sin6.sin6_scope_id != 0) {
      // The interface name when it still exists, its index otherwise: both
      // parse back with parseHostPort.
      char ifName[IF_NAMESIZE] = {};
      if (if_indextoname(addr.sin6.sin6_scope_id, ifName) != nullptr) {
        text += std::string("%") + ifName;
      } else {
        text += "%" + std::to_string(addr.sin6.sin6_scope_id);
      }
    }
    return text + "]:" + std::to_string(addressPort(addr));
  }
  return "<no address>";
}

namespace {

// Port text must be 1..5 decimal digits naming 1..65535 ("+80", "0x50" and
// " 80" are refused rather than half-parsed).
ncclResult_t parsePort(const char* text, const std::string& port, int* out) {
  if (port.empty()) CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': missing port after ':'", text);
  if (port.find_first_not_of("0123456789") != std::string::npos) {
    CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': port '%s' is not a number", text, port.c_str());
  }
  long value = port.size() > 5 ? 100000 : strtol(port.c_str(), nullptr, 10);
  if (value < 1 || value > 65535) {
    CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': port %s is out of range 1..65535", text,
                port.c_str());
  }
  *out = static_cast<int>(value);
  return ncclSuccess;
}

// "fe80::1%eth0" or "::1": numeric only, so a bracketed name is an error
// instead of a DNS lookup.
ncclResult_t parseIpv6(const char* text, const std::string& host, SocketAddress* out) {
  addrinfo hints = {};
  hints.ai_family = AF_INET6;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': '%s' is not an IPv6 address (%s)", text,
                host.c_str(), gai_strerror(rc));
  }
  memcpy(&out->sin6, result->ai_addr, sizeof(sockaddr_in6));
  freeaddrinfo(result);
  return ncclSuccess;
}

// A numeric IPv4 address or a host name. A name that resolves to both
// families gives its first IPv4 address, or its first IPv6 address when
// NCCL_SOCKET_FAMILY=AF_INET6; a name with only one family gives that one.
ncclResult_t parseHostName(const char* text, const std::string& host, SocketAddress* out) {
  if (inet_pton(AF_INET, host.c_str(), &out->sin.sin_addr) == 1) {
    out->sin.sin_family = AF_INET;
    return ncclSuccess;
  }
  // Digits and dots that inet_pton refused ("256.1.1.1", "1.2.3") are a
  // mistyped address; getaddrinfo would accept some of them in inet_aton's
  // old shorthand and connect somewhere unexpected.
  if (host.find_first_not_of("0123456789.") == std::string::npos) {
    CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': '%s' is not a valid IPv4 address", text,
                host.c_str());
  }
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || result == nullptr) {
    CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': cannot resolve host '%s' (%s)", text,
                host.c_str(), rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
  }
  int preferred = settingString("NCCL_SOCKET_FAMILY") == "AF_INET6" ? AF_INET6 : AF_INET;
  const addrinfo* chosen = nullptr;
  for (const addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    if (chosen == nullptr || (ai->ai_family == preferred && chosen->ai_family != preferred)) chosen = ai;
  }
  if (chosen != nullptr) {
    memcpy(out, chosen->ai_addr, chosen->ai_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
  }
  freeaddrinfo(result);
  if (chosen == nullptr) {
    CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': host '%s' has no IPv4 or IPv6 address", text,
                host.c_str());
  }
  return ncclSuccess;
}

}  // namespace

ncclResult_t parseHostPort(const char* text, SocketAddress* out) {
  if (text == nullptr || text[0] == '\0') {
    CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '': expected host:port or [ipv6]:port");
  }
  std::string s(text);
  std::string host;
  std::string port;
  bool bracketed = s[0] == '[';
  if (bracketed) {
    size_t close = s.find(']');
    if (close == std::string::npos) CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': '[' without ']'", text);
    host = s.substr(1, close - 1);
    if (host.find_first_of("[]") != std::string::npos) {
      CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': unbalanced brackets", text);
    }
    if (close + 1 == s.size()) CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': missing ':port'", text);
    if (s[close + 1] != ':') {
      CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': expected ':port' after ']', found '%s'", text,
                  s.c_str() + close + 1);
    }
    port = s.substr(close + 2);
  } else {
    if (s.find_first_of("[]") != std::string::npos) {
      CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': unbalanced brackets", text);
    }
    size_t colon = s.rfind(':');
    if (colon == std::string::npos) CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': missing ':port'", text);
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': an IPv6 address needs brackets, as in [%s]:port",
                  text, host.c_str());
    }
  }
  if (host.empty()) CHORUS_FAIL(ncclInvalidArgument, "cannot parse address '%s': empty host", text);
  int portNumber = 0;
  CHORUS_CHECK(parsePort(text, port, &portNumber));

  SocketAddress addr;
  memset(&addr, 0, sizeof(addr));
  if (bracketed) {
    CHORUS_CHECK(parseIpv6(text, host, &addr));
  } else {
    CHORUS_CHECK(parseHostName(text, host, &addr));
  }
  setAddressPort(&addr, portNumber);
  *out = addr;
  return ncclSuccess;
}

}  // namespace chorus
