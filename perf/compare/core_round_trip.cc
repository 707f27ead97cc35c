// How long one cache line takes to go from one CPU to another and back:
// two threads, pinned to the first two CPUs this process may use, hand a
// counter back and forth. perf/compare/compare.py runs it before every
// benchmark run, because the machines it was written on (VMs) switch
// between speeds: when this round trip is slow, every library's small
// operations are slow too, and a number means little without it.
//
// Prints one line, "ROUND_TRIP,<ns>", or "ROUND_TRIP,n/a" with fewer than
// two CPUs.
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

namespace {

constexpr int kRoundTrips = 100000;

alignas(64) std::atomic<int> counter{0};

bool pinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

}  // namespace

int main() {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) < 2) {
    std::printf("ROUND_TRIP,n/a\n");
    return 0;
  }
  int cpus[2], found = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; ++cpu)
    if (CPU_ISSET(cpu, &allowed)) cpus[found++] = cpu;

  std::thread other([&] {
    pinTo(cpus[1]);
    for (int i = 0; i < kRoundTrips; ++i) {
      while (counter.load(std::memory_order_acquire) != 2 * i + 1) {}
      counter.store(2 * i + 2, std::memory_order_release);
    }
  });
  pinTo(cpus[0]);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRoundTrips; ++i) {
    counter.store(2 * i + 1, std::memory_order_release);
    while (counter.load(std::memory_order_acquire) != 2 * i + 2) {}
  }
  const auto end = std::chrono::steady_clock::now();
  other.join();
  std::printf("ROUND_TRIP,%.0f\n",
              std::chrono::duration<double, std::nano>(end - start).count() / kRoundTrips);
  return 0;
}
