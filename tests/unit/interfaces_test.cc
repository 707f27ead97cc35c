// NCCL_SOCKET_IFNAME rules, NCCL_SOCKET_FAMILY, and interface discovery on the
// machine the tests run on (every machine has lo; other interfaces may or may
// not exist, and tests that need one skip without it).
#include "bootstrap/interfaces.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <net/if.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "common/result.h"

namespace chorus {
namespace {

// Clears NCCL_SOCKET_IFNAME and NCCL_SOCKET_FAMILY for each test and restores
// whatever the environment held before.
class InterfaceEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) {
      const char* value = getenv(kNames[i]);
      had_[i] = value != nullptr;
      if (had_[i]) old_[i] = value;
      unsetenv(kNames[i]);
    }
  }
  void TearDown() override {
    for (int i = 0; i < 2; ++i) {
      if (had_[i]) {
        setenv(kNames[i], old_[i].c_str(), 1);
      } else {
        unsetenv(kNames[i]);
      }
    }
  }
  static void setIfname(const char* v) { setenv("NCCL_SOCKET_IFNAME", v, 1); }
  static void setFamily(const char* v) { setenv("NCCL_SOCKET_FAMILY", v, 1); }

 private:
  static constexpr const char* kNames[2] = {"NCCL_SOCKET_IFNAME", "NCCL_SOCKET_FAMILY"};
  bool had_[2] = {false, false};
  std::string old_[2];
};

using FindInterfaces = InterfaceEnv;
using FindInterfaceFor = InterfaceEnv;

// What getifaddrs says, independently of the code under test.
struct HostFacts {
  bool loHasIpv4 = false;
  bool loHasIpv6 = false;
  bool otherUp = false;  // an up interface, not lo/docker*, with a usable address
  std::string otherIpv4Name;
  in_addr otherIpv4Addr = {};
  in_addr otherIpv4Mask = {};
};

HostFacts hostFacts() {
  HostFacts facts;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return facts;
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || !(ifa->ifa_flags & IFF_UP)) continue;
    int family = ifa->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    std::string name = ifa->ifa_name;
    if (family == AF_INET6 &&
        IN6_IS_ADDR_LINKLOCAL(&reinterpret_cast<sockaddr_in6*>(ifa->ifa_addr)->sin6_addr)) {
      continue;
    }
    if (name == "lo") {
      (family == AF_INET ? facts.loHasIpv4 : facts.loHasIpv6) = true;
    } else if ((ifa->ifa_flags & IFF_LOOPBACK) == 0 && name.rfind("docker", 0) != 0) {
      facts.otherUp = true;
      if (family == AF_INET && facts.otherIpv4Name.empty() && ifa->ifa_netmask != nullptr) {
        facts.otherIpv4Name = name;
        facts.otherIpv4Addr = reinterpret_cast<sockaddr_in*>(ifa->ifa_addr)->sin_addr;
        facts.otherIpv4Mask = reinterpret_cast<sockaddr_in*>(ifa->ifa_netmask)->sin_addr;
      }
    }
  }
  freeifaddrs(list);
  return facts;
}

SocketAddress ipv4(const char* text) {
  SocketAddress addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin.sin_family = AF_INET;
  EXPECT_EQ(inet_pton(AF_INET, text, &addr.sin.sin_addr), 1) << text;
  return addr;
}

SocketAddress ipv6(const char* text) {
  SocketAddress addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin6.sin6_family = AF_INET6;
  EXPECT_EQ(inet_pton(AF_INET6, text, &addr.sin6.sin6_addr), 1) << text;
  return addr;
}

std::string hostOf(const SocketAddress& addr) {
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.sa.sa_family == AF_INET) inet_ntop(AF_INET, &addr.sin.sin_addr, text, sizeof(text));
  if (addr.sa.sa_family == AF_INET6) inet_ntop(AF_INET6, &addr.sin6.sin6_addr, text, sizeof(text));
  return text;
}

// ---- interfaceMatches -------------------------------------------------------

TEST(InterfaceRules, EmptyRulesMatchEveryName) {
  for (const char* rules : {"", "  ", "^", "=", "^=", ",", "^,,"}) {
    EXPECT_TRUE(interfaceMatches("eth0", rules)) << "'" << rules << "'";
    EXPECT_TRUE(interfaceMatches("lo", rules)) << "'" << rules << "'";
  }
}

TEST(InterfaceRules, PrefixMatchesNamesThatStartWithIt) {
  EXPECT_TRUE(interfaceMatches("eth0", "eth"));
  EXPECT_TRUE(interfaceMatches("eth10", "eth"));
  EXPECT_TRUE(interfaceMatches("eth", "eth"));
  EXPECT_TRUE(interfaceMatches("eth0", "eth0"));
  EXPECT_TRUE(interfaceMatches("eth01", "eth0"));  // a prefix, not a whole name
  EXPECT_FALSE(interfaceMatches("veth0", "eth"));
  EXPECT_FALSE(interfaceMatches("lo", "eth"));
  EXPECT_FALSE(interfaceMatches("et", "eth"));
}

TEST(InterfaceRules, CommaListMatchesAnyPrefix) {
  EXPECT_TRUE(interfaceMatches("eth0", "eth,ib"));
  EXPECT_TRUE(interfaceMatches("ib1", "eth,ib"));
  EXPECT_FALSE(interfaceMatches("lo", "eth,ib"));
  EXPECT_FALSE(interfaceMatches("enp1s0", "eth,ib"));
}

TEST(InterfaceRules, CaretExcludesPrefixes) {
  EXPECT_FALSE(interfaceMatches("docker0", "^docker,lo"));
  EXPECT_FALSE(interfaceMatches("lo", "^docker,lo"));
  EXPECT_FALSE(interfaceMatches("lo0", "^docker,lo"));
  EXPECT_TRUE(interfaceMatches("eth0", "^docker,lo"));
  EXPECT_TRUE(interfaceMatches("ib0", "^docker,lo"));
}

TEST(InterfaceRules, EqualsMatchesWholeNamesOnly) {
  EXPECT_TRUE(interfaceMatches("eth0", "=eth0"));
  EXPECT_FALSE(interfaceMatches("eth01", "=eth0"));
  EXPECT_FALSE(interfaceMatches("eth", "=eth0"));
  EXPECT_TRUE(interfaceMatches("lo", "=lo"));
}

TEST(InterfaceRules, EqualsAppliesToTheWholeList) {
  EXPECT_TRUE(interfaceMatches("eth0", "=eth0,eth1"));
  EXPECT_TRUE(interfaceMatches("eth1", "=eth0,eth1"));
  EXPECT_FALSE(interfaceMatches("eth10", "=eth0,eth1"));
  EXPECT_FALSE(interfaceMatches("eth2", "=eth0,eth1"));
}

TEST(InterfaceRules, CaretEqualsExcludesWholeNames) {
  EXPECT_FALSE(interfaceMatches("eth0", "^=eth0"));
  EXPECT_TRUE(interfaceMatches("eth01", "^=eth0"));
  EXPECT_TRUE(interfaceMatches("eth1", "^=eth0"));
  EXPECT_TRUE(interfaceMatches("lo", "^=eth0"));
  EXPECT_FALSE(interfaceMatches("eth1", "^=eth0,eth1"));
}

TEST(InterfaceRules, SpacesAroundItemsAreIgnored) {
  EXPECT_TRUE(interfaceMatches("ib0", "eth0, ib0"));
  EXPECT_TRUE(interfaceMatches("eth0", " eth0 ,ib0 "));
  EXPECT_TRUE(interfaceMatches("ib0", "=eth0 , ib0"));
  EXPECT_FALSE(interfaceMatches("ib0", "^ eth0, ib0"));
}

TEST(InterfaceRules, EmptyItemsAreIgnored) {
  EXPECT_TRUE(interfaceMatches("eth0", "eth,,ib"));
  EXPECT_FALSE(interfaceMatches("lo", "eth,,ib"));  // an empty prefix would match everything
  EXPECT_FALSE(interfaceMatches("lo", "^lo,"));
  EXPECT_TRUE(interfaceMatches("eth0", "^lo,"));
}

// ---- parseSocketFamily -------------------------------------------------------

TEST(InterfaceFamily, ParsesAfInetAfInet6AndEmpty) {
  int family = -1;
  EXPECT_EQ(parseSocketFamily("AF_INET", &family), ncclSuccess);
  EXPECT_EQ(family, AF_INET);
  EXPECT_EQ(parseSocketFamily("AF_INET6", &family), ncclSuccess);
  EXPECT_EQ(family, AF_INET6);
  EXPECT_EQ(parseSocketFamily("", &family), ncclSuccess);
  EXPECT_EQ(family, AF_UNSPEC);
}

TEST(InterfaceFamily, RejectsUnknownValueNamingIt) {
  for (const char* value : {"AF_INET4", "inet", "ipv6", "6", "AF_UNIX"}) {
    clearLastError();
    int family = -1;
    EXPECT_EQ(parseSocketFamily(value, &family), ncclInvalidArgument) << value;
    EXPECT_NE(lastError().find(std::string("NCCL_SOCKET_FAMILY=") + value), std::string::npos) << lastError();
  }
}

// ---- chooseInterfaces / chooseInterfaceFor on made-up hosts -----------------

// "eth0", "10.0.0.1/24" (or "fd00::1/64"); loopback when the name is "lo".
InterfaceAddress entry(const char* name, const char* cidr) {
  std::string text = cidr;
  size_t slash = text.find('/');
  std::string host = text.substr(0, slash);
  int bits = slash == std::string::npos ? -1 : std::stoi(text.substr(slash + 1));
  InterfaceAddress e;
  bool v6 = host.find(':') != std::string::npos;
  e.name = name;
  e.addr = v6 ? ipv6(host.c_str()) : ipv4(host.c_str());
  e.loopback = e.name == "lo";
  memset(&e.netmask, 0, sizeof(e.netmask));
  if (bits >= 0) {  // no "/bits": no netmask at all
    e.netmask.sa.sa_family = e.addr.sa.sa_family;
    uint8_t* mask = v6 ? reinterpret_cast<uint8_t*>(&e.netmask.sin6.sin6_addr)
                       : reinterpret_cast<uint8_t*>(&e.netmask.sin.sin_addr);
    for (int i = 0; i < bits; ++i) mask[i / 8] |= static_cast<uint8_t>(0x80 >> (i % 8));
  }
  return e;
}

// "eth0:10.0.0.1 eth1:fd00::1" for compact comparisons.
std::string names(const std::vector<NetInterface>& list) {
  std::string out;
  for (const NetInterface& itf : list) out += (out.empty() ? "" : " ") + itf.name + ":" + hostOf(itf.addr);
  return out;
}

std::string chosenFor(const std::vector<InterfaceAddress>& up, const char* rules, int family,
                      const SocketAddress& remote) {
  NetInterface itf;
  if (!chooseInterfaceFor(up, rules, family, remote, &itf)) return "<none>";
  return itf.name + ":" + hostOf(itf.addr);
}

const std::vector<InterfaceAddress> kHost = {
    entry("lo", "127.0.0.1/8"),       entry("eth0", "10.0.0.1/24"),   entry("lo", "::1/128"),
    entry("docker0", "172.17.0.1/16"), entry("eth0", "fd00::1/64"),    entry("eth0", "fe80::1/64"),
    entry("ib0", "fd01::7/64"),        entry("eth0", "192.168.5.1/24"), entry("eth1", "10.1.0.1/16"),
};

TEST(InterfaceChoice, DefaultRulesSkipLoAndDockerWhenOthersExist) {
  EXPECT_EQ(names(chooseInterfaces(kHost, "", AF_UNSPEC)), "eth0:10.0.0.1 eth1:10.1.0.1 ib0:fd01::7");
}

TEST(InterfaceChoice, DefaultRulesFallBackToDockerThenLo) {
  std::vector<InterfaceAddress> dockerAndLo = {entry("lo", "127.0.0.1/8"), entry("docker0", "172.17.0.1/16")};
  EXPECT_EQ(names(chooseInterfaces(dockerAndLo, "", AF_UNSPEC)), "docker0:172.17.0.1");
  std::vector<InterfaceAddress> loOnly = {entry("lo", "::1/128"), entry("lo", "127.0.0.1/8")};
  EXPECT_EQ(names(chooseInterfaces(loOnly, "", AF_UNSPEC)), "lo:127.0.0.1");
  EXPECT_EQ(names(chooseInterfaces({}, "", AF_UNSPEC)), "");
}

TEST(InterfaceChoice, LoopbackFlagCountsAsLoUnderDefaultRules) {
  InterfaceAddress oddLoopback = entry("lo1", "127.0.0.2/8");
  oddLoopback.loopback = true;
  std::vector<InterfaceAddress> up = {oddLoopback, entry("enp1s0", "10.0.0.1/24")};
  EXPECT_EQ(names(chooseInterfaces(up, "", AF_UNSPEC)), "enp1s0:10.0.0.1");
}

TEST(InterfaceChoice, Ipv4InterfacesComeBeforeIpv6OnlyOnes) {
  std::vector<InterfaceAddress> up = {entry("ib0", "fd01::7/64"), entry("eth0", "fd00::1/64"),
                                      entry("eth1", "10.1.0.1/16"), entry("eth0", "10.0.0.1/24")};
  EXPECT_EQ(names(chooseInterfaces(up, "", AF_UNSPEC)), "eth1:10.1.0.1 eth0:10.0.0.1 ib0:fd01::7");
}

TEST(InterfaceChoice, InterfaceWithSeveralAddressesAppearsOnceWithItsFirstIpv4) {
  std::vector<NetInterface> chosen = chooseInterfaces(kHost, "=eth0", AF_UNSPEC);
  EXPECT_EQ(names(chosen), "eth0:10.0.0.1");
  EXPECT_EQ(names(chooseInterfaces(kHost, "=eth0", AF_INET6)), "eth0:fd00::1");
}

TEST(InterfaceChoice, LinkLocalIpv6IsSkipped) {
  std::vector<InterfaceAddress> up = {entry("eth0", "fe80::1/64"), entry("eth1", "fd00::2/64")};
  EXPECT_EQ(names(chooseInterfaces(up, "", AF_UNSPEC)), "eth1:fd00::2");
  EXPECT_EQ(names(chooseInterfaces(up, "=eth0", AF_UNSPEC)), "");
}

TEST(InterfaceChoice, FamilyRestrictsAddresses) {
  EXPECT_EQ(names(chooseInterfaces(kHost, "", AF_INET)), "eth0:10.0.0.1 eth1:10.1.0.1");
  EXPECT_EQ(names(chooseInterfaces(kHost, "", AF_INET6)), "eth0:fd00::1 ib0:fd01::7");
  EXPECT_EQ(names(chooseInterfaces(kHost, "=lo", AF_INET6)), "lo:::1");
}

TEST(InterfaceChoice, UserRulesMayAllowLoAndDocker) {
  EXPECT_EQ(names(chooseInterfaces(kHost, "^eth,ib", AF_UNSPEC)), "lo:127.0.0.1 docker0:172.17.0.1");
  EXPECT_EQ(names(chooseInterfaces(kHost, "=lo,ib0", AF_UNSPEC)), "lo:127.0.0.1 ib0:fd01::7");
  EXPECT_EQ(names(chooseInterfaces(kHost, "eth", AF_UNSPEC)), "eth0:10.0.0.1 eth1:10.1.0.1");
  EXPECT_EQ(names(chooseInterfaces(kHost, "wlan", AF_UNSPEC)), "");
}

TEST(InterfaceChoice, RemoteInSubnetGetsThatInterfaceAndAddress) {
  EXPECT_EQ(chosenFor(kHost, "", AF_UNSPEC, ipv4("10.0.0.77")), "eth0:10.0.0.1");
  // eth0's second IPv4 address is the one in 192.168.5.0/24.
  EXPECT_EQ(chosenFor(kHost, "", AF_UNSPEC, ipv4("192.168.5.9")), "eth0:192.168.5.1");
  EXPECT_EQ(chosenFor(kHost, "", AF_UNSPEC, ipv6("fd01::99")), "ib0:fd01::7");
  EXPECT_EQ(chosenFor(kHost, "", AF_UNSPEC, ipv6("fd00::99")), "eth0:fd00::1");
}

TEST(InterfaceChoice, LongestPrefixWins) {
  std::vector<InterfaceAddress> up = {entry("eth0", "10.0.0.1/8"), entry("eth1", "10.1.0.1/16")};
  EXPECT_EQ(chosenFor(up, "", AF_UNSPEC, ipv4("10.1.2.3")), "eth1:10.1.0.1");
  EXPECT_EQ(chosenFor(up, "", AF_UNSPEC, ipv4("10.2.2.3")), "eth0:10.0.0.1");
}

TEST(InterfaceChoice, LoopbackRemoteUsesLoAlthoughDefaultRulesExcludeIt) {
  EXPECT_EQ(chosenFor(kHost, "", AF_UNSPEC, ipv4("127.0.0.1")), "lo:127.0.0.1");
  EXPECT_EQ(chosenFor(kHost, "", AF_UNSPEC, ipv4("127.0.0.53")), "lo:127.0.0.1");
  EXPECT_EQ(chosenFor(kHost, "", AF_UNSPEC, ipv6("::1")), "lo:::1");
  std::vector<InterfaceAddress> loOnly = {entry("lo", "127.0.0.1/8")};
  EXPECT_EQ(chosenFor(loOnly, "", AF_UNSPEC, ipv4("127.0.0.1")), "lo:127.0.0.1");
}

TEST(InterfaceChoice, LoopbackRemoteObeysUserRulesThatExcludeLo) {
  EXPECT_EQ(chosenFor(kHost, "^lo", AF_UNSPEC, ipv4("127.0.0.1")), "eth0:10.0.0.1");
  EXPECT_EQ(chosenFor(kHost, "=eth1", AF_UNSPEC, ipv4("127.0.0.1")), "eth1:10.1.0.1");
  EXPECT_EQ(chosenFor(kHost, "=lo", AF_UNSPEC, ipv4("127.0.0.1")), "lo:127.0.0.1");
}

TEST(InterfaceChoice, DockerSubnetIsNotUsedUnderDefaultRules) {
  EXPECT_EQ(chosenFor(kHost, "", AF_UNSPEC, ipv4("172.17.0.5")), "eth0:10.0.0.1");
  EXPECT_EQ(chosenFor(kHost, "^eth", AF_UNSPEC, ipv4("172.17.0.5")), "docker0:172.17.0.1");
}

TEST(InterfaceChoice, UnreachableRemoteGetsFirstInterfaceOfItsFamily) {
  EXPECT_EQ(chosenFor(kHost, "", AF_UNSPEC, ipv4("203.0.113.7")), "eth0:10.0.0.1");
  EXPECT_EQ(chosenFor(kHost, "", AF_UNSPEC, ipv6("2001:db8::1")), "eth0:fd00::1");
  std::vector<InterfaceAddress> up = {entry("eth0", "10.0.0.1/24"), entry("ib0", "fd01::7/64")};
  EXPECT_EQ(chosenFor(up, "", AF_UNSPEC, ipv6("2001:db8::1")), "ib0:fd01::7");
  // No address of the remote's family anywhere: still the first interface.
  std::vector<InterfaceAddress> v4only = {entry("eth0", "10.0.0.1/24")};
  EXPECT_EQ(chosenFor(v4only, "", AF_UNSPEC, ipv6("2001:db8::1")), "eth0:10.0.0.1");
}

TEST(InterfaceChoice, MissingNetmaskMatchesOnlyTheAddressItself) {
  std::vector<InterfaceAddress> up = {entry("eth0", "10.0.0.1/24"), entry("tun0", "10.9.0.1")};
  EXPECT_EQ(chosenFor(up, "", AF_UNSPEC, ipv4("10.9.0.1")), "tun0:10.9.0.1");
  EXPECT_EQ(chosenFor(up, "", AF_UNSPEC, ipv4("10.9.0.2")), "eth0:10.0.0.1");
}

TEST(InterfaceChoice, NothingAllowedIsReported) {
  EXPECT_EQ(chosenFor(kHost, "=no_such_if", AF_UNSPEC, ipv4("127.0.0.1")), "<none>");
  EXPECT_EQ(chosenFor({}, "", AF_UNSPEC, ipv4("10.0.0.1")), "<none>");
}

TEST(InterfaceChoice, ListedAddressesOfThisHostAreUpAndNamed) {
  std::vector<InterfaceAddress> up;
  ASSERT_EQ(listInterfaceAddresses(&up), ncclSuccess) << lastError();
  bool sawLo = false;
  for (const InterfaceAddress& e : up) {
    EXPECT_FALSE(e.name.empty());
    EXPECT_TRUE(e.addr.sa.sa_family == AF_INET || e.addr.sa.sa_family == AF_INET6) << e.name;
    EXPECT_EQ(addressPort(e.addr), 0) << e.name;
    sawLo = sawLo || (e.name == "lo" && e.loopback);
  }
  EXPECT_EQ(sawLo, hostFacts().loHasIpv4 || hostFacts().loHasIpv6);
}

// ---- findInterfaces ----------------------------------------------------------

TEST_F(FindInterfaces, DefaultRulesSkipLoopbackUnlessNothingElseIsUp) {
  HostFacts facts = hostFacts();
  std::vector<NetInterface> found;
  ASSERT_EQ(findInterfaces(&found), ncclSuccess) << lastError();
  ASSERT_FALSE(found.empty());
  for (const NetInterface& itf : found) {
    if (facts.otherUp) {
      EXPECT_NE(itf.name, "lo");
      EXPECT_NE(itf.name.rfind("docker", 0), 0u) << itf.name;
    } else {
      EXPECT_EQ(itf.name, "lo");
    }
  }
}

TEST_F(FindInterfaces, EqualsLoFindsLoWithItsIpv4Address) {
  if (!hostFacts().loHasIpv4) GTEST_SKIP() << "lo has no IPv4 address";
  setIfname("=lo");
  std::vector<NetInterface> found;
  ASSERT_EQ(findInterfaces(&found), ncclSuccess) << lastError();
  ASSERT_EQ(found.size(), 1u);  // once, although lo has 127.0.0.1 and ::1
  EXPECT_EQ(found[0].name, "lo");
  ASSERT_EQ(found[0].addr.sa.sa_family, AF_INET);
  EXPECT_EQ(hostOf(found[0].addr), "127.0.0.1");
  EXPECT_EQ(addressPort(found[0].addr), 0);
}

TEST_F(FindInterfaces, UnknownNameFailsNamingTheSetting) {
  setIfname("no_such_if");
  clearLastError();
  std::vector<NetInterface> found;
  EXPECT_EQ(findInterfaces(&found), ncclSystemError);
  EXPECT_TRUE(found.empty());
  EXPECT_NE(lastError().find("NCCL_SOCKET_IFNAME=no_such_if"), std::string::npos) << lastError();
}

TEST_F(FindInterfaces, CaretLoExcludesLo) {
  if (!hostFacts().otherUp) GTEST_SKIP() << "only lo is up";
  setIfname("^lo");
  std::vector<NetInterface> found;
  ASSERT_EQ(findInterfaces(&found), ncclSuccess) << lastError();
  for (const NetInterface& itf : found) EXPECT_NE(itf.name, "lo");
}

TEST_F(FindInterfaces, FamilyInetGivesOnlyIpv4) {
  setFamily("AF_INET");
  setIfname("^no_such_if");  // everything, lo and docker included
  std::vector<NetInterface> found;
  ASSERT_EQ(findInterfaces(&found), ncclSuccess) << lastError();
  for (const NetInterface& itf : found) EXPECT_EQ(itf.addr.sa.sa_family, AF_INET) << itf.name;
}

TEST_F(FindInterfaces, FamilyInet6GivesOnlyIpv6) {
  if (!hostFacts().loHasIpv6) GTEST_SKIP() << "lo has no ::1";
  setFamily("AF_INET6");
  setIfname("=lo");
  std::vector<NetInterface> found;
  ASSERT_EQ(findInterfaces(&found), ncclSuccess) << lastError();
  ASSERT_EQ(found.size(), 1u);
  ASSERT_EQ(found[0].addr.sa.sa_family, AF_INET6);
  EXPECT_EQ(hostOf(found[0].addr), "::1");
}

TEST_F(FindInterfaces, FailureNamesTheFamilyRestriction) {
  setFamily("AF_INET6");
  setIfname("=no_such_if");
  clearLastError();
  std::vector<NetInterface> found;
  EXPECT_EQ(findInterfaces(&found), ncclSystemError);
  EXPECT_NE(lastError().find("NCCL_SOCKET_IFNAME==no_such_if"), std::string::npos) << lastError();
  EXPECT_NE(lastError().find("NCCL_SOCKET_FAMILY=AF_INET6"), std::string::npos) << lastError();
}

TEST_F(FindInterfaces, InvalidFamilyIsInvalidArgument) {
  setFamily("AF_BOGUS");
  clearLastError();
  std::vector<NetInterface> found;
  EXPECT_EQ(findInterfaces(&found), ncclInvalidArgument);
  EXPECT_NE(lastError().find("AF_BOGUS"), std::string::npos) << lastError();
}

TEST_F(FindInterfaces, EachInterfaceOnceIpv4FirstNoLinkLocal) {
  setIfname("^no_such_if");  // every interface that is up
  std::vector<NetInterface> found;
  ASSERT_EQ(findInterfaces(&found), ncclSuccess) << lastError();
  std::set<std::string> names;
  bool seenIpv6 = false;
  for (const NetInterface& itf : found) {
    EXPECT_TRUE(names.insert(itf.name).second) << itf.name << " listed twice";
    int family = itf.addr.sa.sa_family;
    ASSERT_TRUE(family == AF_INET || family == AF_INET6) << itf.name;
    if (family == AF_INET6) {
      seenIpv6 = true;
      EXPECT_FALSE(IN6_IS_ADDR_LINKLOCAL(&itf.addr.sin6.sin6_addr)) << itf.name;
    } else {
      EXPECT_FALSE(seenIpv6) << itf.name << " (IPv4) after an IPv6 interface";
    }
    EXPECT_NE(if_nametoindex(itf.name.c_str()), 0u) << itf.name;
  }
  if (hostFacts().loHasIpv4) {
    EXPECT_EQ(names.count("lo"), 1u);
  }
}

// ---- findInterfaceFor --------------------------------------------------------

TEST_F(FindInterfaceFor, LoopbackRemoteUsesLoUnderDefaultRules) {
  if (!hostFacts().loHasIpv4) GTEST_SKIP() << "lo has no IPv4 address";
  NetInterface itf;
  ASSERT_EQ(findInterfaceFor(ipv4("127.0.0.1"), &itf), ncclSuccess) << lastError();
  EXPECT_EQ(itf.name, "lo");
  EXPECT_EQ(hostOf(itf.addr), "127.0.0.1");
}

TEST_F(FindInterfaceFor, Ipv6LoopbackRemoteUsesLo) {
  if (!hostFacts().loHasIpv6) GTEST_SKIP() << "lo has no ::1";
  NetInterface itf;
  ASSERT_EQ(findInterfaceFor(ipv6("::1"), &itf), ncclSuccess) << lastError();
  EXPECT_EQ(itf.name, "lo");
  EXPECT_EQ(hostOf(itf.addr), "::1");
}

TEST_F(FindInterfaceFor, UserRulesThatExcludeLoAreObeyed) {
  if (!hostFacts().otherUp) GTEST_SKIP() << "only lo is up";
  setIfname("^lo");
  NetInterface itf;
  ASSERT_EQ(findInterfaceFor(ipv4("127.0.0.1"), &itf), ncclSuccess) << lastError();
  EXPECT_NE(itf.name, "lo");
}

TEST_F(FindInterfaceFor, RemoteInASubnetPicksThatInterface) {
  HostFacts facts = hostFacts();
  if (facts.otherIpv4Name.empty()) GTEST_SKIP() << "no IPv4 interface besides lo";
  // Another host of the same subnet: flip the lowest host bit.
  uint32_t mask = ntohl(facts.otherIpv4Mask.s_addr);
  uint32_t local = ntohl(facts.otherIpv4Addr.s_addr);
  if (mask == 0xffffffffu) GTEST_SKIP() << facts.otherIpv4Name << " is a /32";
  SocketAddress remote;
  memset(&remote, 0, sizeof(remote));
  remote.sin.sin_family = AF_INET;
  remote.sin.sin_addr.s_addr = htonl(local ^ 1u);
  setAddressPort(&remote, 1234);
  NetInterface itf;
  ASSERT_EQ(findInterfaceFor(remote, &itf), ncclSuccess) << lastError();
  EXPECT_EQ(itf.name, facts.otherIpv4Name);
  EXPECT_EQ(itf.addr.sin.sin_addr.s_addr, facts.otherIpv4Addr.s_addr);
}

TEST_F(FindInterfaceFor, RemoteOutsideEverySubnetGetsFirstInterface) {
  std::vector<NetInterface> all;
  ASSERT_EQ(findInterfaces(&all), ncclSuccess) << lastError();
  if (all.front().addr.sa.sa_family != AF_INET) GTEST_SKIP() << "first interface has no IPv4 address";
  NetInterface itf;
  ASSERT_EQ(findInterfaceFor(ipv4("203.0.113.77"), &itf), ncclSuccess) << lastError();  // TEST-NET-3
  EXPECT_EQ(itf.name, all.front().name);
  EXPECT_TRUE(sameAddress(itf.addr, all.front().addr));
}

TEST_F(FindInterfaceFor, FailsWhenNoInterfaceMatches) {
  setIfname("=no_such_if");
  clearLastError();
  NetInterface itf;
  EXPECT_EQ(findInterfaceFor(ipv4("127.0.0.1"), &itf), ncclSystemError);
  EXPECT_NE(lastError().find("NCCL_SOCKET_IFNAME==no_such_if"), std::string::npos) << lastError();
}

}  // namespace
}  // namespace chorus
