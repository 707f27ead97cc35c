// NCCL_PROTO parsing: which of the ring kernel's protocols may run, and
// which one a collective of a given size gets.

#include <gtest/gtest.h>

#include <string>

#include "harness/ranks.h"
#include "runtime/protocol_setting.h"

using chorus::ProtocolChoice;
using chorus::parseProtocols;
using chorus::test::ScopedEnv;

namespace {

struct Case {
  const char* value;
  bool ll, simple, problem;
};

TEST(ProtocolSetting, ParsesNcclSyntax) {
  const Case cases[] = {
      {"", true, true, false},
      {"LL", true, false, false},
      {"Simple", false, true, false},
      {"simple,ll", true, true, false},
      {"LL,LL128,Simple", true, true, false},
      {"LL128,Simple", false, true, false},
      {"^LL", false, true, false},
      {"^Simple", true, false, false},
      {"^LL128", true, true, false},
      {"^ll128,SIMPLE", true, false, false},
      // Empty names are skipped, as NCCL's parser skips them.
      {"LL,", true, false, false},
      {",Simple,,", false, true, false},
      {"^", true, true, false},
      // Nothing Chorus has, or a name that is not a protocol: both, with a reason.
      {"LL128", true, true, true},
      {"^LL,Simple", true, true, true},
      {"Simpel", true, true, true},
      // Entries for one collective are ignored, with a word; the global one is used.
      {"Simple;allreduce:^Simple", false, true, true},
      {"allreduce:LL;^LL", false, true, true},
      {"allreduce:LL", true, true, true},
  };
  for (const Case& c : cases) {
    std::string problem;
    const ProtocolChoice choice = parseProtocols(c.value, &problem);
    EXPECT_EQ(choice.ll, c.ll) << "NCCL_PROTO=" << c.value;
    EXPECT_EQ(choice.simple, c.simple) << "NCCL_PROTO=" << c.value;
    EXPECT_EQ(!problem.empty(), c.problem) << "NCCL_PROTO=" << c.value << ": " << problem;
    if (c.problem) {
      EXPECT_NE(problem.find("NCCL_PROTO"), std::string::npos) << problem;
    }
  }
}

TEST(ProtocolSetting, SizesPickTheProtocolOnlyWhenBothAreAllowed) {
  const size_t threshold = 16384;
  const ProtocolChoice both{true, true}, llOnly{true, false}, simpleOnly{false, true};
  EXPECT_TRUE(both.useLL(0, threshold));
  EXPECT_TRUE(both.useLL(threshold, threshold));
  EXPECT_FALSE(both.useLL(threshold + 1, threshold));
  EXPECT_TRUE(llOnly.useLL(size_t(1) << 30, threshold));
  EXPECT_FALSE(simpleOnly.useLL(8, threshold));
}

TEST(ProtocolSetting, ReadFromTheEnvironment) {
  {
    ScopedEnv proto("NCCL_PROTO", "^LL");
    EXPECT_EQ(chorus::protocolsFromSettings(), (ProtocolChoice{false, true}));
  }
  {
    ScopedEnv proto("NCCL_PROTO", "bogus");  // warns, and keeps both
    EXPECT_EQ(chorus::protocolsFromSettings(), (ProtocolChoice{true, true}));
  }
  EXPECT_EQ(chorus::protocolNames(ProtocolChoice{true, false}), "LL");
  EXPECT_EQ(chorus::protocolNames(ProtocolChoice{false, true}), "Simple");
}

}  // namespace
