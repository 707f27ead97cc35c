// Telling processes apart. Whether a peer's process is gone: waits and
// releases skip such a peer instead of waiting for it, so "gone" must never
// be said of one alive. The process token: the same in every thread of a
// process, another in a child of fork (pids repeat across namespaces, so
// the token, not the pid, says "same process").
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <thread>

#include "topology/host_identity.h"
#include "transport/fifo_host.h"

using chorus::peerProcessGone;

namespace {

TEST(PeerProcess, ThisProcessAndNoPidAreNeverGone) {
  EXPECT_FALSE(peerProcessGone(getpid()));
  EXPECT_FALSE(peerProcessGone(0));
}

TEST(PeerProcess, ALiveChildIsNotGoneAndAReapedOneIs) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  if (child == 0) {
    close(ready[1]);
    char byte;
    // Lives until the parent closes its end.
    (void)!read(ready[0], &byte, 1);
    _exit(0);
  }
  ASSERT_GT(child, 0);
  close(ready[0]);
  EXPECT_FALSE(peerProcessGone(child));
  close(ready[1]);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  EXPECT_TRUE(peerProcessGone(child));
}

// A process this one may not signal (init, when not root) is alive all the
// same: only "no such process" means gone.
TEST(PeerProcess, AProcessWeMayNotSignalIsNotGone) {
  EXPECT_FALSE(peerProcessGone(1));
}

TEST(ProcessToken, TheSameInEveryThreadAndAnotherInAForkedChild) {
  const uint64_t mine = chorus::processToken();
  EXPECT_NE(mine, 0u);
  uint64_t fromThread = 0;
  std::thread([&] { fromThread = chorus::processToken(); }).join();
  EXPECT_EQ(fromThread, mine);
  int pipeFds[2];
  ASSERT_EQ(pipe(pipeFds), 0);
  const pid_t child = fork();
  if (child == 0) {
    const uint64_t childToken = chorus::processToken();
    (void)!write(pipeFds[1], &childToken, sizeof(childToken));
    _exit(0);
  }
  ASSERT_GT(child, 0);
  uint64_t childToken = 0;
  EXPECT_EQ(read(pipeFds[0], &childToken, sizeof(childToken)),
            static_cast<ssize_t>(sizeof(childToken)));
  waitpid(child, nullptr, 0);
  close(pipeFds[0]);
  close(pipeFds[1]);
  EXPECT_NE(childToken, 0u);
  EXPECT_NE(childToken, mine);
  EXPECT_EQ(chorus::processToken(), mine);
}

}  // namespace
