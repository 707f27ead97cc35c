// The worker behind non-blocking communicators: jobs run in posted order, on
// one thread, and finish() runs what is queued before it returns.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "runtime/background_queue.h"

namespace {

TEST(BackgroundQueue, RunsJobsInPostedOrderOnOneThread) {
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  {
    chorus::BackgroundQueue queue;
    for (int i = 0; i < 1000; ++i)
      queue.post([&order, &threads, i] {
        order.push_back(i);
        threads.push_back(std::this_thread::get_id());
      });
    queue.finish();
  }
  ASSERT_EQ(order.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(order[i], i);
  for (const std::thread::id& id : threads) EXPECT_EQ(id, threads[0]);
  EXPECT_NE(threads[0], std::this_thread::get_id());
}

TEST(BackgroundQueue, FinishWaitsForASlowJobAndIsIdempotent) {
  std::atomic<bool> done{false};
  chorus::BackgroundQueue queue;
  queue.post([&done] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    done = true;
  });
  queue.finish();
  EXPECT_TRUE(done.load());
  queue.finish();
}

TEST(BackgroundQueue, DestroyingAnUnusedQueueStartsNoThread) {
  chorus::BackgroundQueue queue;
  queue.finish();
}

}  // namespace
