// Whether a peer's process is gone: waits and releases skip such a peer
// instead of waiting for it, so "gone" must never be said of one alive.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace
