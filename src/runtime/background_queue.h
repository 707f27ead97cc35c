// The worker that runs a non-blocking communicator's jobs (its init, then
// its operations) one after the other, in the order they were posted. One
// thread per communicator, started on the first job and kept until the
// communicator is freed, so that posting an operation costs a queue push and
// a wake-up, not a thread creation.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace chorus {

class BackgroundQueue {
 public:
  BackgroundQueue() = default;
  BackgroundQueue(const BackgroundQueue&) = delete;
  BackgroundQueue& operator=(const BackgroundQueue&) = delete;
  ~BackgroundQueue() { finish(); }

  // Queues `job` behind every job posted before it.
  void post(std::function<void()> job);
  // Runs what is queued to the end, then stops the worker (idempotent).
  void finish();

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace chorus
