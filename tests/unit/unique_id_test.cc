// The unique id's encoding, and how ranks are spread over several roots.
#include <gtest/gtest.h>

#include <cstring>

#include "bootstrap/root.h"
#include "bootstrap/unique_id.h"

using namespace chorus;

TEST(UniqueId, EncodeDecodeRoundTripsMagicAndAddress) {
  BootstrapId id;
  ASSERT_EQ(parseHostPort("10.1.2.3:4567", &id.root), ncclSuccess);
  id.magic = 0x0123456789abcdefull;
  ncclUniqueId raw;
  encodeId(id, &raw);
  BootstrapId back;
  ASSERT_EQ(decodeId(raw, &back), ncclSuccess);
  EXPECT_EQ(back.magic, id.magic);
  EXPECT_TRUE(sameAddress(back.root, id.root));
}

TEST(UniqueId, Ipv6RootRoundTrips) {
  BootstrapId id;
  ASSERT_EQ(parseHostPort("[::1]:5000", &id.root), ncclSuccess);
  id.magic = 7;
  ncclUniqueId raw;
  encodeId(id, &raw);
  BootstrapId back;
  ASSERT_EQ(decodeId(raw, &back), ncclSuccess);
  EXPECT_EQ(addressToString(back.root), "[::1]:5000");
}

TEST(UniqueId, ZeroedOrCorruptedIdsAreRejected) {
  ncclUniqueId raw;
  memset(&raw, 0, sizeof(raw));
  BootstrapId out;
  EXPECT_EQ(decodeId(raw, &out), ncclInvalidArgument);
  BootstrapId id;
  ASSERT_EQ(parseHostPort("127.0.0.1:80", &id.root), ncclSuccess);
  encodeId(id, &raw);
  raw.internal[16] = 99;  // address family byte
  EXPECT_EQ(decodeId(raw, &out), ncclInvalidArgument);
}

TEST(UniqueId, MagicIsRandomAndNonZero) {
  uint64_t a = randomMagic(), b = randomMagic();
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
}

TEST(UniqueId, CommIdEnvGivesTheSameIdOnEveryRank) {
  BootstrapId a, b;
  ASSERT_EQ(idFromCommIdEnv("127.0.0.1:29500", &a), ncclSuccess);
  ASSERT_EQ(idFromCommIdEnv("127.0.0.1:29500", &b), ncclSuccess);
  EXPECT_EQ(a.magic, b.magic);
  EXPECT_EQ(addressPort(a.root), 29500);
  // Other spellings of the same meeting point meet: the magic is the port's.
  ASSERT_EQ(idFromCommIdEnv("localhost:29500", &b), ncclSuccess);
  EXPECT_EQ(a.magic, b.magic);
  ASSERT_EQ(idFromCommIdEnv("127.0.0.1:29501", &b), ncclSuccess);
  EXPECT_NE(a.magic, b.magic);
  BootstrapId v6;
  ASSERT_EQ(idFromCommIdEnv("[::1]:29500", &v6), ncclSuccess);
  EXPECT_EQ(v6.root.sa.sa_family, AF_INET6);
  EXPECT_EQ(idFromCommIdEnv("127.0.0.1", &a), ncclInvalidArgument);
  EXPECT_EQ(idFromCommIdEnv("", &a), ncclInvalidArgument);
}

TEST(RootRanges, CoverEveryRankExactlyOnceAndAgreeWithRootOfRank) {
  for (int nranks = 1; nranks <= 40; ++nranks) {
    for (int nroots = 1; nroots <= nranks; ++nroots) {
      int expectFirst = 0;
      for (int k = 0; k < nroots; ++k) {
        int first, last;
        rootRange(nranks, nroots, k, &first, &last);
        ASSERT_EQ(first, expectFirst) << nranks << " ranks, " << nroots << " roots";
        ASSERT_LT(first, last) << "empty range";
        for (int r = first; r < last; ++r) ASSERT_EQ(rootOfRank(nranks, nroots, r), k);
        expectFirst = last;
      }
      ASSERT_EQ(expectFirst, nranks);
    }
  }
}
