#include "bootstrap/interfaces.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "common/log.h"
#include "common/result.h"
#include "common/settings.h"

namespace chorus {

namespace {

std::string trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

bool startsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool isLinkLocal6(const SocketAddress& a) {
  return a.sa.sa_family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&a.sin6.sin6_addr);
}

bool isLoopbackAddress(const SocketAddress& a) {
  if (a.sa.sa_family == AF_INET) return (ntohl(a.sin.sin_addr.s_addr) >> 24) == 127;
  if (a.sa.sa_family == AF_INET6) return IN6_IS_ADDR_LOOPBACK(&a.sin6.sin6_addr);
  return false;
}

bool isLoopbackInterface(const InterfaceAddress& entry) { return entry.loopback || entry.name == "lo"; }

// Address bytes of an AF_INET/AF_INET6 address (4 or 16).
const uint8_t* addressBytes(const SocketAddress& a, int* size) {
  if (a.sa.sa_family == AF_INET) {
    *size = 4;
    return reinterpret_cast<const uint8_t*>(&a.sin.sin_addr);
  }
  *size = 16;
  return reinterpret_cast<const uint8_t*>(&a.sin6.sin6_addr);
}

// Number of one bits in the netmask; -1 when `remote` is outside the subnet of
// `entry` (or of another family).
int subnetPrefix(const InterfaceAddress& entry, const SocketAddress& remote) {
  if (entry.addr.sa.sa_family != remote.sa.sa_family) return -1;
  int size = 0;
  const uint8_t* local = addressBytes(entry.addr, &size);
  const uint8_t* far = addressBytes(remote, &size);
  // A netmask of another family, or none, is read as the address alone (/32,
  // /128): some point-to-point links have no netmask.
  bool hasMask = entry.netmask.sa.sa_family == remote.sa.sa_family;
  const uint8_t* mask = hasMask ? addressBytes(entry.netmask, &size) : nullptr;
  int bits = 0;
  for (int i = 0; i < size; ++i) {
    uint8_t m = hasMask ? mask[i] : 0xff;
    if ((local[i] & m) != (far[i] & m)) return -1;
    bits += __builtin_popcount(m);
  }
  return bits;
}

// Without NCCL_SOCKET_IFNAME: tier 0 is every interface but loopback and
// docker*, tier 1 docker*, tier 2 loopback; the best non-empty tier is used.
int defaultTier(const InterfaceAddress& entry) {
  if (isLoopbackInterface(entry)) return 2;
  if (startsWith(entry.name, "docker")) return 1;
  return 0;
}

bool usable(const InterfaceAddress& entry, int family) {
  int f = entry.addr.sa.sa_family;
  if (f != AF_INET && f != AF_INET6) return false;
  if (family != AF_UNSPEC && f != family) return false;
  return !isLinkLocal6(entry.addr);
}

// The addresses that the rules allow, in the order of `up`.
std::vector<InterfaceAddress> allowedAddresses(const std::vector<InterfaceAddress>& up, const std::string& rules,
                                               int family) {
  std::vector<InterfaceAddress> out;
  if (!rules.empty()) {
    for (const InterfaceAddress& entry : up) {
      if (usable(entry, family) && interfaceMatches(entry.name, rules)) out.push_back(entry);
    }
    return out;
  }
  for (int tier = 0; tier <= 2 && out.empty(); ++tier) {
    for (const InterfaceAddress& entry : up) {
      if (usable(entry, family) && defaultTier(entry) == tier) out.push_back(entry);
    }
  }
  return out;
}

// One entry per interface: its first IPv4 address when it has one, else its
// first IPv6 address. Interfaces with IPv4 come first, then IPv6-only ones,
// each group in the order of `addresses`.
std::vector<NetInterface> onePerInterface(const std::vector<InterfaceAddress>& addresses) {
  std::vector<NetInterface> result;
  for (int f : {AF_INET, AF_INET6}) {
    for (const InterfaceAddress& entry : addresses) {
      if (entry.addr.sa.sa_family != f) continue;
      bool seen = false;
      for (const NetInterface& known : result) seen = seen || known.name == entry.name;
      if (!seen) result.push_back(NetInterface{entry.name, entry.addr});
    }
  }
  return result;
}

// "eth0:10.0.0.1<0>", NCCL's way of printing an interface and its address.
std::string describe(const NetInterface& itf) {
  char host[INET6_ADDRSTRLEN] = {};
  if (itf.addr.sa.sa_family == AF_INET) inet_ntop(AF_INET, &itf.addr.sin.sin_addr, host, sizeof(host));
  if (itf.addr.sa.sa_family == AF_INET6) inet_ntop(AF_INET6, &itf.addr.sin6.sin6_addr, host, sizeof(host));
  return itf.name + ":" + host + "<" + std::to_string(addressPort(itf.addr)) + ">";
}

ncclResult_t readEnvironment(int* family, std::string* rules) {
  CHORUS_CHECK(parseSocketFamily(settingString("NCCL_SOCKET_FAMILY"), family));
  *rules = trim(settingString("NCCL_SOCKET_IFNAME"));
  return ncclSuccess;
}

ncclResult_t reportNoInterface(int family, const std::string& rules) {
  const char* familyText = family == AF_INET ? " with an IPv4 address (NCCL_SOCKET_FAMILY=AF_INET)"
                           : family == AF_INET6 ? " with an IPv6 address (NCCL_SOCKET_FAMILY=AF_INET6)"
                                                : " with an IPv4 or IPv6 address";
  if (!rules.empty()) {
    CHORUS_FAIL(ncclSystemError, "no interface matches NCCL_SOCKET_IFNAME=%s among those that are up%s",
                rules.c_str(), familyText);
  }
  CHORUS_FAIL(ncclSystemError, "no network interface is up%s", familyText);
}

}  // namespace

bool interfaceMatches(const std::string& name, const std::string& rules) {
  std::string list = trim(rules);
  bool exclude = false;
  bool exact = false;
  if (!list.empty() && list[0] == '^') {
    exclude = true;
    list.erase(0, 1);
  }
  if (!list.empty() && list[0] == '=') {
    exact = true;
    list.erase(0, 1);
  }
  bool listed = false;
  bool anyItem = false;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    // Items are trimmed ("eth0, eth1") and empty ones ignored: an empty
    // prefix would match every name.
    std::string item = trim(list.substr(start, comma - start));
    start = comma + 1;
    if (item.empty()) continue;
    anyItem = true;
    if (exact ? name == item : startsWith(name, item)) listed = true;
  }
  if (!anyItem) return true;  // "", "^", "=" put no restriction
  return exclude ? !listed : listed;
}

ncclResult_t parseSocketFamily(const std::string& value, int* family) {
  std::string v = trim(value);
  if (v.empty()) {
    *family = AF_UNSPEC;
  } else if (v == "AF_INET") {
    *family = AF_INET;
  } else if (v == "AF_INET6") {
    *family = AF_INET6;
  } else {
    CHORUS_FAIL(ncclInvalidArgument, "NCCL_SOCKET_FAMILY=%s is not valid: expected AF_INET or AF_INET6",
                value.c_str());
  }
  return ncclSuccess;
}

ncclResult_t listInterfaceAddresses(std::vector<InterfaceAddress>* out) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) CHORUS_FAIL(ncclSystemError, "getifaddrs failed: %s", strerror(errno));
  std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> guard(list, freeifaddrs);
  out->clear();
  for (const ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || !(ifa->ifa_flags & IFF_UP)) continue;
    int f = ifa->ifa_addr->sa_family;
    if (f != AF_INET && f != AF_INET6) continue;
    size_t length = f == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    InterfaceAddress entry;
    memset(&entry.addr, 0, sizeof(entry.addr));
    memset(&entry.netmask, 0, sizeof(entry.netmask));
    memcpy(&entry.addr, ifa->ifa_addr, length);
    setAddressPort(&entry.addr, 0);
    if (ifa->ifa_netmask != nullptr) {
      memcpy(&entry.netmask, ifa->ifa_netmask, length);
      entry.netmask.sa.sa_family = static_cast<sa_family_t>(f);  // netmasks may carry family 0
    }
    entry.name = ifa->ifa_name;
    entry.loopback = (ifa->ifa_flags & IFF_LOOPBACK) != 0;
    out->push_back(entry);
  }
  return ncclSuccess;
}

std::vector<NetInterface> chooseInterfaces(const std::vector<InterfaceAddress>& up, const std::string& rules,
                                           int family) {
  return onePerInterface(allowedAddresses(up, rules, family));
}

bool chooseInterfaceFor(const std::vector<InterfaceAddress>& up, const std::string& rules, int family,
                        const SocketAddress& remote, NetInterface* out) {
  std::vector<InterfaceAddress> allowed = allowedAddresses(up, rules, family);
  if (allowed.empty()) return false;

  // A loopback remote (NCCL_COMM_ID=127.0.0.1:port) can only be a root on
  // this host, so every rank is here too and lo reaches them all: under the
  // default rules lo joins the candidates for the subnet match. Explicit
  // NCCL_SOCKET_IFNAME rules are obeyed as written.
  std::vector<InterfaceAddress> candidates = allowed;
  bool loAlreadyAllowed = isLoopbackInterface(allowed.front());  // the default rules' last tier
  if (rules.empty() && !loAlreadyAllowed && isLoopbackAddress(remote)) {
    for (const InterfaceAddress& entry : up) {
      if (usable(entry, family) && isLoopbackInterface(entry)) candidates.push_back(entry);
    }
  }

  // Longest prefix wins, so 10.1.0.0/16 beats 10.0.0.0/8 for 10.1.2.3.
  const InterfaceAddress* best = nullptr;
  int bestBits = -1;
  for (const InterfaceAddress& entry : candidates) {
    int bits = subnetPrefix(entry, remote);
    if (bits > bestBits) {
      best = &entry;
      bestBits = bits;
    }
  }
  if (best != nullptr) {
    *out = NetInterface{best->name, best->addr};
    return true;
  }

  // No subnet holds the remote (it is behind a router): the first allowed
  // interface that has an address of the remote's family, else the first.
  std::vector<NetInterface> interfaces = onePerInterface(allowed);
  for (const NetInterface& itf : interfaces) {
    for (const InterfaceAddress& entry : allowed) {
      if (entry.name == itf.name && entry.addr.sa.sa_family == remote.sa.sa_family) {
        *out = NetInterface{entry.name, entry.addr};
        return true;
      }
    }
  }
  *out = interfaces.front();
  return true;
}

ncclResult_t findInterfaces(std::vector<NetInterface>* out) {
  int family = AF_UNSPEC;
  std::string rules;
  CHORUS_CHECK(readEnvironment(&family, &rules));
  std::vector<InterfaceAddress> up;
  CHORUS_CHECK(listInterfaceAddresses(&up));
  std::vector<NetInterface> result = chooseInterfaces(up, rules, family);
  if (result.empty()) return reportNoInterface(family, rules);
  std::string names;
  for (const NetInterface& itf : result) names += " " + describe(itf);
  INFO(kLogBootstrap, "Bootstrap: using%s", names.c_str());
  *out = std::move(result);
  return ncclSuccess;
}

ncclResult_t findInterfaceFor(const SocketAddress& remote, NetInterface* out) {
  int family = AF_UNSPEC;
  std::string rules;
  CHORUS_CHECK(readEnvironment(&family, &rules));
  std::vector<InterfaceAddress> up;
  CHORUS_CHECK(listInterfaceAddresses(&up));
  NetInterface chosen;
  if (!chooseInterfaceFor(up, rules, family, remote, &chosen)) return reportNoInterface(family, rules);
  INFO(kLogBootstrap, "Bootstrap: using %s to reach %s", describe(chosen).c_str(), addressToString(remote).c_str());
  *out = chosen;
  return ncclSuccess;
}

}  // namespace chorus
