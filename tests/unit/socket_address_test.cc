// parseHostPort, addressToString and the small SocketAddress helpers.
#include "bootstrap/socket_address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "common/result.h"

namespace chorus {
namespace {

// Sets or unsets an environment variable for one test, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = getenv(name);
    hadOld_ = old != nullptr;
    if (hadOld_) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (hadOld_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  bool hadOld_ = false;
  std::string old_;
};

SocketAddress parsed(const char* text) {
  SocketAddress addr;
  memset(&addr, 0, sizeof(addr));
  EXPECT_EQ(parseHostPort(text, &addr), ncclSuccess) << text << ": " << lastError();
  return addr;
}

// Expects parseHostPort to refuse `text` with ncclInvalidArgument, leave the
// output untouched, and record a message that quotes the text and contains
// `why`.
void expectRejected(const char* text, const char* why) {
  SCOPED_TRACE(text);
  clearLastError();
  SocketAddress addr;
  memset(&addr, 0xab, sizeof(addr));
  SocketAddress before = addr;
  EXPECT_EQ(parseHostPort(text, &addr), ncclInvalidArgument);
  EXPECT_EQ(memcmp(&addr, &before, sizeof(addr)), 0) << "output changed on failure";
  EXPECT_NE(lastError().find(std::string("'") + text + "'"), std::string::npos) << lastError();
  EXPECT_NE(lastError().find(why), std::string::npos) << lastError();
}

TEST(SocketAddressParse, Ipv4AndPort) {
  SocketAddress addr = parsed("10.1.2.3:5000");
  ASSERT_EQ(addr.sa.sa_family, AF_INET);
  EXPECT_EQ(ntohl(addr.sin.sin_addr.s_addr), 0x0a010203u);
  EXPECT_EQ(addressPort(addr), 5000);
}

TEST(SocketAddressParse, PortBoundsOneAnd65535AreAccepted) {
  EXPECT_EQ(addressPort(parsed("127.0.0.1:1")), 1);
  EXPECT_EQ(addressPort(parsed("127.0.0.1:65535")), 65535);
}

TEST(SocketAddressParse, BracketedIpv6) {
  SocketAddress addr = parsed("[::1]:6000");
  ASSERT_EQ(addr.sa.sa_family, AF_INET6);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&addr.sin6.sin6_addr));
  EXPECT_EQ(addressPort(addr), 6000);
  EXPECT_EQ(addr.sin6.sin6_scope_id, 0u);

  SocketAddress full = parsed("[fd00:1:2::3]:7");
  ASSERT_EQ(full.sa.sa_family, AF_INET6);
  in6_addr expected;
  ASSERT_EQ(inet_pton(AF_INET6, "fd00:1:2::3", &expected), 1);
  EXPECT_EQ(memcmp(&full.sin6.sin6_addr, &expected, sizeof(expected)), 0);
}

TEST(SocketAddressParse, Ipv6ScopeByInterfaceName) {
  unsigned index = if_nametoindex("lo");
  if (index == 0) GTEST_SKIP() << "no interface named lo";
  SocketAddress addr = parsed("[fe80::1%lo]:5000");
  ASSERT_EQ(addr.sa.sa_family, AF_INET6);
  EXPECT_EQ(addr.sin6.sin6_scope_id, index);
  EXPECT_EQ(addressPort(addr), 5000);
}

TEST(SocketAddressParse, Ipv6ScopeByNumber) {
  SocketAddress addr = parsed("[fe80::1%3]:5000");
  ASSERT_EQ(addr.sa.sa_family, AF_INET6);
  EXPECT_EQ(addr.sin6.sin6_scope_id, 3u);
}

TEST(SocketAddressParse, HostNameResolvesToIpv4First) {
  SocketAddress addr = parsed("localhost:8080");
  ASSERT_EQ(addr.sa.sa_family, AF_INET);  // /etc/hosts maps localhost to 127.0.0.1 everywhere we run
  EXPECT_EQ(ntohl(addr.sin.sin_addr.s_addr) >> 24, 127u);
  EXPECT_EQ(addressPort(addr), 8080);
}

TEST(SocketAddressParse, HostNameWithOnlyIpv4WorksUnderFamilyInet6) {
  // AF_INET6 is a preference for names with both families, not a filter.
  ScopedEnv family("NCCL_SOCKET_FAMILY", "AF_INET6");
  SocketAddress addr = parsed("localhost:8080");
  EXPECT_TRUE(addr.sa.sa_family == AF_INET || addr.sa.sa_family == AF_INET6);
  EXPECT_EQ(addressPort(addr), 8080);
}

TEST(SocketAddressParse, RejectsMissingPort) {
  expectRejected("10.0.0.1", "missing ':port'");
  expectRejected("localhost", "missing ':port'");
  expectRejected("[::1]", "missing ':port'");
  expectRejected("10.0.0.1:", "missing port");
  expectRejected("[::1]:", "missing port");
}

TEST(SocketAddressParse, RejectsPortZero) { expectRejected("10.0.0.1:0", "out of range 1..65535"); }

TEST(SocketAddressParse, RejectsPortAbove65535) {
  expectRejected("10.0.0.1:70000", "out of range 1..65535");
  expectRejected("10.0.0.1:65536", "out of range 1..65535");
  expectRejected("10.0.0.1:99999999999999999999999", "out of range 1..65535");
}

TEST(SocketAddressParse, RejectsPortThatIsNotANumber) {
  expectRejected("10.0.0.1:http", "not a number");
  expectRejected("10.0.0.1:+80", "not a number");
  expectRejected("10.0.0.1:-1", "not a number");
  expectRejected("10.0.0.1: 80", "not a number");
  expectRejected("10.0.0.1:80x", "not a number");
}

TEST(SocketAddressParse, RejectsEmptyHost) {
  expectRejected(":5000", "empty host");
  expectRejected("[]:5000", "empty host");
}

TEST(SocketAddressParse, RejectsUnbalancedBrackets) {
  expectRejected("[::1:5000", "'[' without ']'");
  expectRejected("::1]:5000", "unbalanced brackets");
  expectRejected("[[::1]]:5000", "unbalanced brackets");
  expectRejected("host]:5000", "unbalanced brackets");
}

TEST(SocketAddressParse, RejectsIpv6WithoutBrackets) { expectRejected("::1:5000", "needs brackets"); }

TEST(SocketAddressParse, RejectsMalformedIpv4) {
  expectRejected("256.1.1.1:80", "not a valid IPv4 address");
  expectRejected("1.2.3:80", "not a valid IPv4 address");
  expectRejected("1.2.3.4.5:80", "not a valid IPv4 address");
}

TEST(SocketAddressParse, RejectsBracketedTextThatIsNotIpv6) {
  expectRejected("[localhost]:80", "not an IPv6 address");
  expectRejected("[1.2.3.4]:80", "not an IPv6 address");
  expectRejected("[fe80::1%no_such_if0]:80", "not an IPv6 address");
}

TEST(SocketAddressParse, RejectsGarbage) {
  expectRejected("[::1]x:80", "expected ':port' after ']'");
  expectRejected("!!!:80", "cannot resolve host '!!!'");
  expectRejected("a b:80", "cannot resolve host 'a b'");
  clearLastError();
  SocketAddress addr;
  EXPECT_EQ(parseHostPort("", &addr), ncclInvalidArgument);
  EXPECT_NE(lastError().find("expected host:port"), std::string::npos) << lastError();
  EXPECT_EQ(parseHostPort(nullptr, &addr), ncclInvalidArgument);
}

TEST(SocketAddressParse, RejectsUnresolvableName) {
  expectRejected("no-such-host.invalid:5000", "cannot resolve host 'no-such-host.invalid'");
}

TEST(SocketAddressFormat, Ipv4AndIpv6Text) {
  EXPECT_EQ(addressToString(parsed("10.0.0.1:5000")), "10.0.0.1:5000");
  EXPECT_EQ(addressToString(parsed("[::1]:5000")), "[::1]:5000");
  EXPECT_EQ(addressToString(parsed("[FD00:0:0::02]:80")), "[fd00::2]:80");
  EXPECT_EQ(addressToString(parsed("[fe80::1%1]:80")).rfind("[fe80::1%", 0), 0u);
  SocketAddress unset;
  memset(&unset, 0, sizeof(unset));
  EXPECT_EQ(addressToString(unset), "<no address>");
}

TEST(SocketAddressFormat, ScopeIsPrintedAsInterfaceName) {
  if (if_nametoindex("lo") == 0) GTEST_SKIP() << "no interface named lo";
  EXPECT_EQ(addressToString(parsed("[fe80::1%lo]:5000")), "[fe80::1%lo]:5000");
}

TEST(SocketAddressFormat, RoundTripsThroughParse) {
  for (const char* text : {"10.0.0.1:5000", "127.0.0.1:1", "255.255.255.255:65535", "[::1]:5000",
                           "[fd00::2]:65535", "[fe80::1%1]:80", "[2001:db8::ff00:42:8329]:443"}) {
    SCOPED_TRACE(text);
    SocketAddress first = parsed(text);
    std::string printed = addressToString(first);
    SocketAddress second = parsed(printed.c_str());
    EXPECT_TRUE(sameAddress(first, second)) << printed;
  }
}

TEST(SocketAddressHelpers, LengthPortAndComparison) {
  SocketAddress v4 = parsed("10.0.0.1:5000");
  SocketAddress v6 = parsed("[::1]:5000");
  SocketAddress unset;
  memset(&unset, 0, sizeof(unset));
  EXPECT_EQ(addressLength(v4), sizeof(sockaddr_in));
  EXPECT_EQ(addressLength(v6), sizeof(sockaddr_in6));
  EXPECT_EQ(addressLength(unset), 0u);
  EXPECT_EQ(addressPort(unset), 0);

  setAddressPort(&v4, 42);
  setAddressPort(&v6, 43);
  EXPECT_EQ(addressPort(v4), 42);
  EXPECT_EQ(addressPort(v6), 43);

  EXPECT_TRUE(sameAddress(v4, parsed("10.0.0.1:42")));
  EXPECT_FALSE(sameAddress(v4, parsed("10.0.0.1:43")));
  EXPECT_FALSE(sameAddress(v4, parsed("10.0.0.2:42")));
  EXPECT_FALSE(sameAddress(v4, v6));
  EXPECT_TRUE(sameAddress(v6, parsed("[::1]:43")));
  EXPECT_FALSE(sameAddress(parsed("[fe80::1%1]:43"), parsed("[fe80::1%2]:43")));
}

}  // namespace
}  // namespace chorus
