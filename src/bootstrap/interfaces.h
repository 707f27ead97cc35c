// Which network interfaces bootstrap (and the socket transport) may use.
//
// NCCL_SOCKET_IFNAME is a comma list of rules:
//   "eth,ib"      interfaces whose names start with eth or ib
//   "^docker,lo"  all interfaces except those starting with docker or lo
//   "=eth0,eth1"  exactly eth0 or eth1 (a leading = applies to the whole list)
//   "^=eth0"      all but exactly eth0
// Without it: every interface that is up except lo and docker*; lo only when
// nothing else exists. NCCL_SOCKET_FAMILY=AF_INET or AF_INET6 restricts the
// family; otherwise IPv4 addresses come before IPv6 ones. IPv6 link-local
// addresses are skipped.
//
// Decisions:
//  - Names are matched as rules, not by flag, except that "loopback" in the
//    default rules means IFF_LOOPBACK or the name "lo". Rules given by the
//    user apply as written: "^eth" allows lo and docker0. Items are trimmed
//    ("eth0, eth1" works); empty items, "", "^" and "=" restrict nothing.
//  - Default fallback order: all but lo/docker*, then docker*, then lo.
//  - Each interface appears once in findInterfaces, with its first IPv4
//    address when it has one (and the family allows), else its first IPv6
//    address; interfaces with IPv4 come first, then IPv6-only ones, each
//    group in getifaddrs order. Other addresses of the same interface are
//    used only by findInterfaceFor's subnet match.
//  - findInterfaceFor looks at every address of the allowed interfaces and
//    takes the longest-prefix subnet that holds the remote, returning the
//    interface with that address. A loopback remote (127.0.0.0/8, ::1) can
//    only be a root on this host, so all ranks are here and lo reaches them:
//    under the default rules lo is a candidate for it (NCCL_COMM_ID=
//    127.0.0.1:port uses lo even where eth0 exists). User rules that exclude
//    lo are obeyed; the fallback then is the first allowed interface, which
//    is reachable from this host too. With no subnet match the fallback is
//    the first allowed interface that has an address of the remote's family.
//    docker* stays out of the subnet match under the default rules (every
//    host has the same 172.17.0.0/16), unless it is all there is.
#pragma once

#include <string>
#include <vector>

#include "bootstrap/socket_address.h"
#include "nccl.h"

namespace chorus {

struct NetInterface {
  std::string name;
  SocketAddress addr;  // port 0
};

// True when an interface name passes the rules of an NCCL_SOCKET_IFNAME value.
bool interfaceMatches(const std::string& name, const std::string& rules);

// Returns AF_INET, AF_INET6, or AF_UNSPEC (no restriction) for an
// NCCL_SOCKET_FAMILY value; an unknown value is ncclInvalidArgument.
ncclResult_t parseSocketFamily(const std::string& value, int* family);

// Interfaces allowed by the environment, in preference order. Finding none is
// ncclSystemError with a message that names NCCL_SOCKET_IFNAME when it is set
// ("no interface matches NCCL_SOCKET_IFNAME=...").
ncclResult_t findInterfaces(std::vector<NetInterface>* out);

// The allowed interface whose subnet holds `remote` (so it can reach it); when
// none does, the first allowed interface.
ncclResult_t findInterfaceFor(const SocketAddress& remote, NetInterface* out);

// The choices above without getifaddrs or the environment, so that tests can
// feed any set of interfaces. `rules` is an NCCL_SOCKET_IFNAME value ("" for
// the default rules), `family` AF_INET, AF_INET6 or AF_UNSPEC.
struct InterfaceAddress {
  std::string name;
  SocketAddress addr;
  SocketAddress netmask;
  bool loopback;  // IFF_LOOPBACK
};
// Every address of every interface that is up, in getifaddrs order.
ncclResult_t listInterfaceAddresses(std::vector<InterfaceAddress>* out);
std::vector<NetInterface> chooseInterfaces(const std::vector<InterfaceAddress>& up, const std::string& rules,
                                           int family);
// False when no interface is allowed at all.
bool chooseInterfaceFor(const std::vector<InterfaceAddress>& up, const std::string& rules, int family,
                        const SocketAddress& remote, NetInterface* out);

}  // namespace chorus
