// NCCL_DEBUG, NCCL_DEBUG_SUBSYS and NCCL_DEBUG_FILE parsing, and the log
// line format.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "common/log.h"
#include "harness/ranks.h"

using namespace chorus;

TEST(LogSettings, LevelsParseCaseInsensitively) {
  EXPECT_EQ(parseLogLevel(nullptr), LogLevel::None);
  EXPECT_EQ(parseLogLevel("VERSION"), LogLevel::Version);
  EXPECT_EQ(parseLogLevel("warn"), LogLevel::Warn);
  EXPECT_EQ(parseLogLevel("INFO"), LogLevel::Info);
  EXPECT_EQ(parseLogLevel("TRACE"), LogLevel::Trace);
  EXPECT_EQ(parseLogLevel("bogus"), LogLevel::None);
}

TEST(LogSettings, SubsystemListSelectsThoseNamed) {
  EXPECT_EQ(parseLogSubsystems("INIT,NET"), kLogInit | kLogNet);
  EXPECT_EQ(parseLogSubsystems("bootstrap"), kLogBootstrap);
  EXPECT_EQ(parseLogSubsystems("ALL"), kLogAll);
  EXPECT_EQ(parseLogSubsystems("INIT,NOPE"), kLogInit);
}

TEST(LogSettings, CaretExcludesTheSubsystemsNamed) {
  uint64_t mask = parseLogSubsystems("^NET,SHM");
  EXPECT_EQ(mask & kLogNet, 0u);
  EXPECT_EQ(mask & kLogShm, 0u);
  EXPECT_NE(mask & kLogInit, 0u);
  EXPECT_NE(mask & kLogColl, 0u);
}

TEST(LogSettings, FileNameExpandsHostAndPid) {
  char host[64] = "";
  gethostname(host, sizeof(host) - 1);
  std::string shortHost(host);
  shortHost = shortHost.substr(0, shortHost.find('.'));
  char out[256];
  expandLogFileName("/tmp/log.%h.%p.txt", out, sizeof(out));
  EXPECT_EQ(std::string(out), "/tmp/log." + shortHost + "." + std::to_string(getpid()) + ".txt");
  expandLogFileName("plain", out, sizeof(out));
  EXPECT_EQ(std::string(out), "plain");
  char tiny[8];
  expandLogFileName("/a/very/long/name/%p", tiny, sizeof(tiny));
  EXPECT_EQ(std::string(tiny).size(), 7u);
}

TEST(LogOutput, InfoLinesGoToTheDebugFileWithHostPidTidRankAndSubsystemFilter) {
  std::string path = "/tmp/chorus_log_test." + std::to_string(getpid()) + ".txt";
  {
    test::ScopedEnv level("NCCL_DEBUG", "INFO");
    test::ScopedEnv subsys("NCCL_DEBUG_SUBSYS", "^NET");
    test::ScopedEnv file("NCCL_DEBUG_FILE", "/tmp/chorus_log_test.%p.txt");
    resetLogging();
    setLogRank(3);
    INFO(kLogInit, "hello from init %d", 42);
    INFO(kLogNet, "filtered out");
    WARN("a warning");
    setLogRank(-1);
  }
  resetLogging();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string log = text.str();
  unlink(path.c_str());
  EXPECT_NE(log.find(":" + std::to_string(getpid()) + ":"), std::string::npos) << log;
  EXPECT_NE(log.find("[3] NCCL INFO hello from init 42"), std::string::npos) << log;
  EXPECT_EQ(log.find("filtered out"), std::string::npos) << log;
  EXPECT_NE(log.find("NCCL WARN log_test.cc:"), std::string::npos) << log;
}
