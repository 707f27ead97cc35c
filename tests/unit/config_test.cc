// ncclConfig_t parsing: defaults, undefined fields, and configs from older
// headers whose struct is shorter (their `size` says so).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>

#include "runtime/config.h"

using chorus::CommConfig;
using chorus::parseConfig;

TEST(Config, NullGivesBlockingDefaults) {
  CommConfig c;
  c.blocking = false;
  ASSERT_EQ(parseConfig(nullptr, &c), ncclSuccess);
  EXPECT_TRUE(c.blocking);
  EXPECT_TRUE(c.commName.empty());
}

TEST(Config, InitializerLeavesEveryFieldAtItsDefault) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  CommConfig c;
  ASSERT_EQ(parseConfig(&config, &c), ncclSuccess);
  CommConfig defaults;
  EXPECT_EQ(c.blocking, defaults.blocking);
  EXPECT_EQ(c.minCTAs, defaults.minCTAs);
  EXPECT_EQ(c.maxCTAs, defaults.maxCTAs);
  EXPECT_EQ(c.ctaPolicy, defaults.ctaPolicy);
}

TEST(Config, SetFieldsAreRead) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  config.commName = "trainer";
  config.netName = "Socket";
  config.minCTAs = 2;
  config.maxCTAs = 4;
  config.splitShare = 1;
  config.CTAPolicy = NCCL_CTA_POLICY_ZERO;
  config.nvlinkCentricSched = 1;
  CommConfig c;
  ASSERT_EQ(parseConfig(&config, &c), ncclSuccess);
  EXPECT_FALSE(c.blocking);
  EXPECT_EQ(c.commName, "trainer");
  EXPECT_EQ(c.netName, "Socket");
  EXPECT_EQ(c.minCTAs, 2);
  EXPECT_EQ(c.maxCTAs, 4);
  EXPECT_TRUE(c.splitShare);
  EXPECT_EQ(c.ctaPolicy, NCCL_CTA_POLICY_ZERO);
  EXPECT_TRUE(c.nvlinkCentricSched);
}

TEST(Config, FieldsBeyondAnOlderHeadersSizeAreNotRead) {
  // A 2.14-era config ends after `blocking`; what follows in memory is not
  // the caller's and must be ignored, even if it looks like valid values.
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.size = offsetof(ncclConfig_t, blocking) + sizeof(int);
  config.blocking = 0;
  config.commName = "garbage-beyond-size";
  config.maxCTAs = 3;
  CommConfig c;
  ASSERT_EQ(parseConfig(&config, &c), ncclSuccess);
  EXPECT_FALSE(c.blocking);
  EXPECT_TRUE(c.commName.empty());
  EXPECT_EQ(c.maxCTAs, CommConfig{}.maxCTAs);
}

TEST(Config, A2_17SizedConfigReadsItsCtaFieldsOnly) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.size = offsetof(ncclConfig_t, splitShare);  // through netName
  config.minCTAs = 2;
  config.splitShare = 1;  // beyond size
  CommConfig c;
  ASSERT_EQ(parseConfig(&config, &c), ncclSuccess);
  EXPECT_EQ(c.minCTAs, 2);
  EXPECT_FALSE(c.splitShare);
}

TEST(Config, WrongMagicIsInvalidArgument) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.magic = 0;
  CommConfig c;
  EXPECT_EQ(parseConfig(&config, &c), ncclInvalidArgument);
}

TEST(Config, SizeTooSmallForBlockingIsInvalidArgument) {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.size = 8;
  CommConfig c;
  EXPECT_EQ(parseConfig(&config, &c), ncclInvalidArgument);
}

TEST(Config, OutOfRangeValuesAreInvalidArgument) {
  CommConfig c;
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 5;
  EXPECT_EQ(parseConfig(&config, &c), ncclInvalidArgument);
  config = NCCL_CONFIG_INITIALIZER;
  config.CTAPolicy = 9;
  EXPECT_EQ(parseConfig(&config, &c), ncclInvalidArgument);
  config = NCCL_CONFIG_INITIALIZER;
  config.minCTAs = 0;
  EXPECT_EQ(parseConfig(&config, &c), ncclInvalidArgument);
  config = NCCL_CONFIG_INITIALIZER;
  config.cgaClusterSize = 9;
  EXPECT_EQ(parseConfig(&config, &c), ncclInvalidArgument);
}
