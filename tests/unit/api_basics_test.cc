// The entry points that need no communicator (version, error strings, last
// error, logging reset) and the behaviour of entry points Chorus does not
// implement yet.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "common/log.h"
#include "nccl.h"
#include "nccl_device_host.h"

// Exported by NVIDIA's library (and ours) but declared in no header.
extern "C" void ncclResetDebugInitInternal();

namespace {

// The last-error text of this thread.
std::string lastError() { return ncclGetLastError(nullptr); }

TEST(ApiVersion, GetVersionReportsNccl2_28_9) {
  int version = 0;
  ASSERT_EQ(ncclSuccess, ncclGetVersion(&version));
  EXPECT_EQ(22809, version);
  EXPECT_EQ(NCCL_VERSION_CODE, version);
  EXPECT_EQ(NCCL_VERSION(NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH), version);
}

TEST(ApiVersion, ProfilingTwinGivesTheSameVersion) {
  int version = 0;
  ASSERT_EQ(ncclSuccess, pncclGetVersion(&version));
  EXPECT_EQ(22809, version);
}

TEST(ApiVersion, NullPointerIsInvalidArgumentAndNamesTheArgument) {
  EXPECT_EQ(ncclInvalidArgument, ncclGetVersion(nullptr));
  EXPECT_NE(std::string::npos, lastError().find("version")) << lastError();
  EXPECT_NE(std::string::npos, lastError().find("NULL")) << lastError();
}

TEST(ApiErrorString, EveryResultCodeHasNcclsExactText) {
  const struct {
    ncclResult_t code;
    const char* text;
  } kCases[] = {
      {ncclSuccess, "no error"},
      {ncclUnhandledCudaError, "unhandled cuda error (run with NCCL_DEBUG=INFO for details)"},
      {ncclSystemError, "unhandled system error (run with NCCL_DEBUG=INFO for details)"},
      {ncclInternalError, "internal error - please report this issue to the NCCL developers"},
      {ncclInvalidArgument, "invalid argument (run with NCCL_DEBUG=WARN for details)"},
      {ncclInvalidUsage, "invalid usage (run with NCCL_DEBUG=WARN for details)"},
      {ncclRemoteError, "remote process exited or there was a network error"},
      {ncclInProgress, "NCCL operation in progress"},
  };
  static_assert(sizeof(kCases) / sizeof(kCases[0]) == ncclNumResults,
                "a new result code needs a string and a row here");
  for (const auto& c : kCases) {
    EXPECT_STREQ(c.text, ncclGetErrorString(c.code)) << "code " << c.code;
    EXPECT_STREQ(c.text, pncclGetErrorString(c.code)) << "code " << c.code;
  }
}

TEST(ApiErrorString, CodesOutsideTheEnumAreUnknownResultCode) {
  EXPECT_STREQ("unknown result code", ncclGetErrorString(ncclNumResults));
  EXPECT_STREQ("unknown result code", ncclGetErrorString(static_cast<ncclResult_t>(-1)));
  EXPECT_STREQ("unknown result code", ncclGetErrorString(static_cast<ncclResult_t>(1000)));
}

TEST(ApiLastError, FailedUnimplementedCallSaysNotImplemented) {
  // The device API will be the last part implemented. When ncclDevCommCreate
  // is, pick another entry point that still is not, or drop this test.
  EXPECT_EQ(ncclInvalidUsage, ncclDevCommCreate(nullptr, nullptr, nullptr));
  EXPECT_NE(std::string::npos, lastError().find("not implemented")) << lastError();
  EXPECT_NE(std::string::npos, lastError().find("ncclDevCommCreate")) << lastError();
}

TEST(ApiLastError, IsKeptPerThreadAndIgnoresTheCommunicatorArgument) {
  ASSERT_EQ(ncclInvalidArgument, ncclGetVersion(nullptr));
  const std::string mine = lastError();
  ASSERT_FALSE(mine.empty());
  // A NULL and a dangling comm give the same text: comm is never read.
  EXPECT_EQ(mine, ncclGetLastError(reinterpret_cast<ncclComm_t>(0x1)));

  std::string otherThreadBefore, otherThreadAfter;
  std::thread other([&] {
    otherThreadBefore = lastError();
    ncclDevCommDestroy(nullptr, nullptr);
    otherThreadAfter = lastError();
  });
  other.join();
  EXPECT_EQ("", otherThreadBefore) << "a new thread starts with no error";
  EXPECT_NE(std::string::npos, otherThreadAfter.find("ncclDevCommDestroy")) << otherThreadAfter;
  EXPECT_EQ(mine, lastError()) << "another thread's failure must not change ours";
}

// Every entry point, given no communicator and no buffers, reports an error
// and a message instead of crashing. This stays true once they are
// implemented (then with ncclInvalidArgument for the NULL communicator).
TEST(ApiEntryPoints, FailCleanlyWithoutCommunicatorOrBuffers) {
  const auto fails = [](const char* name, ncclResult_t result) {
    EXPECT_TRUE(result == ncclInvalidUsage || result == ncclInvalidArgument)
        << name << " returned " << result;
    EXPECT_FALSE(lastError().empty()) << name << " left no message";
  };
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  fails("ncclAllReduce", ncclAllReduce(nullptr, nullptr, 1, ncclFloat, ncclSum, comm, stream));
  fails("ncclBroadcast", ncclBroadcast(nullptr, nullptr, 1, ncclFloat, 0, comm, stream));
  fails("ncclBcast", ncclBcast(nullptr, 1, ncclFloat, 0, comm, stream));
  fails("ncclReduce", ncclReduce(nullptr, nullptr, 1, ncclFloat, ncclSum, 0, comm, stream));
  fails("ncclAllGather", ncclAllGather(nullptr, nullptr, 1, ncclFloat, comm, stream));
  fails("ncclReduceScatter",
        ncclReduceScatter(nullptr, nullptr, 1, ncclFloat, ncclSum, comm, stream));
  fails("ncclAlltoAll", ncclAlltoAll(nullptr, nullptr, 1, ncclFloat, comm, stream));
  fails("ncclGather", ncclGather(nullptr, nullptr, 1, ncclFloat, 0, comm, stream));
  fails("ncclScatter", ncclScatter(nullptr, nullptr, 1, ncclFloat, 0, comm, stream));
  fails("ncclSend", ncclSend(nullptr, 1, ncclFloat, 0, comm, stream));
  fails("ncclRecv", ncclRecv(nullptr, 1, ncclFloat, 0, comm, stream));
  ncclRedOp_t op = ncclSum;
  float scalar = 1.0f;
  fails("ncclRedOpCreatePreMulSum",
        ncclRedOpCreatePreMulSum(&op, &scalar, ncclFloat, ncclScalarHostImmediate, comm));
  fails("ncclRedOpDestroy", ncclRedOpDestroy(ncclNumOps, comm));
  fails("ncclGroupSimulateEnd", ncclGroupSimulateEnd(nullptr));
  fails("ncclMemAlloc", ncclMemAlloc(nullptr, 0));
  void* handle = nullptr;
  fails("ncclCommRegister", ncclCommRegister(comm, nullptr, 0, &handle));
  fails("ncclCommDeregister", ncclCommDeregister(comm, nullptr));
  ncclWindow_t window = nullptr;
  fails("ncclCommWindowRegister", ncclCommWindowRegister(comm, nullptr, 0, &window, NCCL_WIN_DEFAULT));
  fails("ncclCommWindowDeregister", ncclCommWindowDeregister(comm, nullptr));
  ncclComm_t child = nullptr;
  fails("ncclCommShrink", ncclCommShrink(comm, nullptr, 0, &child, nullptr, NCCL_SHRINK_DEFAULT));
  fails("ncclCommRevoke", ncclCommRevoke(comm, NCCL_REVOKE_DEFAULT));
  fails("ncclDevCommDestroy", ncclDevCommDestroy(comm, nullptr));
  ncclTeam_t team{1, 0, 1};
  fails("ncclLsaBarrierCreateRequirement", ncclLsaBarrierCreateRequirement(team, 1, nullptr, nullptr));
  fails("ncclGinBarrierCreateRequirement",
        ncclGinBarrierCreateRequirement(comm, team, 1, nullptr, nullptr));
  fails("ncclLLA2ACreateRequirement", ncclLLA2ACreateRequirement(1, 1, nullptr, nullptr));
  EXPECT_EQ(nullptr, window);
  EXPECT_EQ(nullptr, child);
}

TEST(ApiNotImplemented, NonResultEntryPointsReturnHarmlessValuesAndSetTheMessage) {
  // Teams: empty, with stride 1 so that nothing divides by zero.
  for (ncclTeam_t team : {ncclTeamWorld(nullptr), ncclTeamLsa(nullptr), ncclTeamRail(nullptr)}) {
    EXPECT_EQ(0, team.nRanks);
    EXPECT_EQ(0, team.rank);
    EXPECT_EQ(1, team.stride);
  }
  EXPECT_NE(std::string::npos, lastError().find("ncclTeamRail")) << lastError();
  ncclTeam_t team{1, 0, 1};
  EXPECT_EQ(-1, ncclTeamRankToWorld(nullptr, team, 0));  // no such rank
  EXPECT_EQ(-1, ncclTeamRankToLsa(nullptr, team, 0));
  EXPECT_EQ(0, ncclLLA2ACalcSlots(1, 4));                // no slots
  EXPECT_NE(std::string::npos, lastError().find("ncclLLA2ACalcSlots")) << lastError();
}

// NCCL_DEBUG is read once; ncclResetDebugInit (and the exported internal
// name NVIDIA's library also has) reads it again.
class ApiResetDebugInit : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* old = std::getenv("NCCL_DEBUG");
    hadValue_ = old != nullptr;
    if (hadValue_) oldValue_ = old;
  }
  void TearDown() override {
    if (hadValue_) setenv("NCCL_DEBUG", oldValue_.c_str(), 1);
    else unsetenv("NCCL_DEBUG");
    chorus::resetLogging();
  }

 private:
  bool hadValue_ = false;
  std::string oldValue_;
};

TEST_F(ApiResetDebugInit, RereadsNcclDebug) {
  setenv("NCCL_DEBUG", "TRACE", 1);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  ncclResetDebugInit();
#pragma GCC diagnostic pop
  EXPECT_EQ(chorus::LogLevel::Trace, chorus::logConfig().level);

  setenv("NCCL_DEBUG", "VERSION", 1);
  ncclResetDebugInitInternal();
  EXPECT_EQ(chorus::LogLevel::Version, chorus::logConfig().level);
}

}  // namespace

// A size near SIZE_MAX cannot be allocated; rounded up naively it wrapped to
// a tiny block that was returned as success.
TEST(ApiMemAlloc, SizesNearSizeMaxFailAndGiveNoBlock) {
  for (size_t size : {SIZE_MAX, SIZE_MAX - 100}) {
    void* block = reinterpret_cast<void*>(0x1);
    EXPECT_EQ(ncclMemAlloc(&block, size), ncclSystemError) << size;
    EXPECT_EQ(block, nullptr) << size;
    EXPECT_NE(lastError().find("out of"), std::string::npos) << lastError();
  }
}
