// ThreadCpuClock on real threads: it counts the CPU the followed thread uses (and not its
// sleep), and the time it waits for a core, read from another thread; the total carries over
// from one thread to the next and outlives them, and never goes down while threads hand over
// and others read.
#include "runtime/thread_cpu_clock.h"

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "tests/testing/threads.h"

namespace brrr {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(ThreadCpuClockTest, CountsTheFollowedThreadsCpuNotItsSleep) {
  ThreadCpuClock clock;
  EXPECT_EQ(clock.total_ns(), 0) << "before any thread";
  std::atomic<int64_t> spun{0};
  std::atomic<bool> spun_done{false}, checked{false};
  std::thread runner([&] {
    clock.follow_current_thread();
    spun = testing::SpinOwnCpu(30 * kMs);
    spun_done = true;
    while (!checked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // no CPU to speak of
    clock.stop_following();
  });
  while (!spun_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const int64_t after_spin = clock.total_ns();  // from this thread
  checked = true;
  runner.join();
  EXPECT_GE(after_spin, spun.load());
  const int64_t after_sleep = clock.total_ns();
  EXPECT_GE(after_sleep, after_spin);
  EXPECT_LT(after_sleep - after_spin, 50 * kMs) << "a 100 ms sleep counted as CPU";
  EXPECT_EQ(clock.total_ns(), after_sleep) << "no thread followed: the total stands";
}

TEST(ThreadCpuClockTest, TheTotalCarriesOverToTheNextThreadAndOutlivesIt) {
  ThreadCpuClock clock;
  int64_t first = 0;
  std::thread([&] {
    clock.follow_current_thread();
    first = testing::SpinOwnCpu(10 * kMs);
    // Ends without stop_following (a loop driven by run_once): what was seen last stands.
    EXPECT_GE(clock.total_ns(), first);
  }).join();
  const int64_t between = clock.total_ns();
  EXPECT_GE(between, first);
  int64_t second = 0;
  std::thread([&] {
    clock.follow_current_thread();
    second = testing::SpinOwnCpu(10 * kMs);
    clock.stop_following();
  }).join();
  EXPECT_GE(clock.total_ns(), between + second);
}

TEST(ThreadCpuClockTest, NeverGoesDownWhileThreadsHandOverAndOthersRead) {
  ThreadCpuClock clock;
  std::atomic<bool> done{false};
  std::atomic<int> went_down{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      int64_t last = 0;
      while (!done) {
        int64_t now = clock.total_ns();
        if (now < last) went_down++;
        last = now;
      }
    });
  }
  int64_t stopped_spins = 0;  // a thread that ends without stop_following counts as last read
  for (int t = 0; t < 20; ++t) {
    std::thread([&, t] {
      clock.follow_current_thread();
      int64_t spun = testing::SpinOwnCpu(kMs);
      if (t % 2 == 0) {
        clock.stop_following();
        stopped_spins += spun;
      }
    }).join();
  }
  done = true;
  for (std::thread& r : readers) r.join();
  EXPECT_EQ(went_down.load(), 0);
  EXPECT_GE(clock.total_ns(), stopped_spins);
}

// The followed thread shares its core with a spinner while it spins 30 ms of its own CPU, so it
// waits on the run queue while the spinner runs: the wait counts, read from another thread, and
// is no more than the time that passed; once no thread is followed it stands.
TEST(ThreadCpuClockTest, CountsTheTimeTheFollowedThreadWaitedForACore) {
  struct stat info {};
  if (::stat("/proc/thread-self/schedstat", &info) != 0) GTEST_SKIP() << "this kernel keeps no schedstats";
  ThreadCpuClock clock;
  EXPECT_EQ(clock.run_queue_wait_ns(), 0) << "before any thread";
  const int64_t from = MonotonicNanos();
  std::atomic<bool> spun_done{false}, checked{false};
  std::thread runner([&] {
    clock.follow_current_thread();
    {
      testing::SharedCpu shared;
      testing::SpinOwnCpu(30 * kMs);
    }
    spun_done = true;
    while (!checked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    clock.stop_following();
  });
  while (!spun_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const int64_t waited = clock.run_queue_wait_ns();  // from this thread
  checked = true;
  runner.join();
  EXPECT_GT(waited, 0) << "spinning 30 ms on a core shared with a spinner, and it never waited";
  EXPECT_LE(waited, MonotonicNanos() - from);
  const int64_t stopped = clock.run_queue_wait_ns();
  EXPECT_GE(stopped, waited);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(clock.run_queue_wait_ns(), stopped) << "no thread followed: the total stands";
}

// The calling thread's time waiting on a run queue so far (schedstat's second field), or -1.
int64_t OwnRunQueueWait() {
  std::FILE* f = std::fopen("/proc/thread-self/schedstat", "r");
  if (f == nullptr) return -1;
  unsigned long long on_core = 0, waited = 0;
  int fields = std::fscanf(f, "%llu %llu", &on_core, &waited);
  std::fclose(f);
  return fields == 2 ? static_cast<int64_t>(waited) : -1;
}

// Like the CPU total, the run-queue wait carries over from a thread that ended while followed
// (a loop driven by run_once) to the next one: the next thread's wait adds to it.
TEST(ThreadCpuClockTest, TheRunQueueWaitCarriesOverToTheNextThread) {
  struct stat info {};
  if (::stat("/proc/thread-self/schedstat", &info) != 0) GTEST_SKIP() << "this kernel keeps no schedstats";
  ThreadCpuClock clock;
  std::thread([&] {
    clock.follow_current_thread();
    {
      testing::SharedCpu shared;
      testing::SpinOwnCpu(30 * kMs);
    }
    // Ends without stop_following, once its wait has been read (what was last seen stands).
    EXPECT_GT(clock.run_queue_wait_ns(), 0) << "spinning 30 ms on a core shared with a spinner, and it never waited";
  }).join();
  const int64_t between = clock.run_queue_wait_ns();
  int64_t second = -1;
  std::thread([&] {
    clock.follow_current_thread();
    const int64_t before = OwnRunQueueWait();
    {
      testing::SharedCpu shared;
      testing::SpinOwnCpu(30 * kMs);
    }
    const int64_t after = OwnRunQueueWait();
    if (before >= 0 && after >= 0) second = after - before;
    clock.stop_following();
  }).join();
  ASSERT_GT(second, 0) << "the second thread never waited either";
  EXPECT_GE(clock.run_queue_wait_ns(), between + second) << "the first thread's wait was not carried over";
}

}  // namespace
}  // namespace brrr
