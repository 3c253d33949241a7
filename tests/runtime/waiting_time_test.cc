#include "runtime/waiting_time.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace brrr {
namespace {

TEST(WaitingTimeTest, AnnouncedWaitsCountWhileTheyLast) {
  WaitingTime w;
  EXPECT_EQ(w.total_ns(1'000), 0);
  w.begin(1'000);
  EXPECT_EQ(w.total_ns(1'000), 0);
  EXPECT_EQ(w.total_ns(1'400), 400);
  EXPECT_EQ(w.total_ns(1'500), 500);
  w.end(600);  // woke at 1'600
  EXPECT_EQ(w.total_ns(5'000), 600) << "between waits the total stands";
  w.begin(6'000);
  EXPECT_EQ(w.total_ns(6'250), 850);
  w.end(300);
  EXPECT_EQ(w.total_ns(9'000), 900);
}

TEST(WaitingTimeTest, UnannouncedWaitsCountOnceEnded) {
  WaitingTime w;
  w.end(70);
  w.end(30);
  EXPECT_EQ(w.total_ns(1'000'000), 100);
}

// A reader's clock may run ahead of what the loop then measures for the wait: what it was given
// stands, so that the total never falls, until the loop's own total passes it.
TEST(WaitingTimeTest, ATotalOnceGivenNeverFalls) {
  WaitingTime w;
  w.begin(1'000);
  EXPECT_EQ(w.total_ns(1'500), 500);
  EXPECT_EQ(w.total_ns(1'200), 500) << "an earlier clock reading";
  w.end(450);  // the loop measured less than the reader saw
  EXPECT_EQ(w.total_ns(2'000), 500);
  w.end(100);
  EXPECT_EQ(w.total_ns(2'000), 550);
}

// The loop thread announces and ends waits as fast as it can while two threads read, each with
// a clock reading of the loop's: no total is below one before it, and none is torn (a wait both
// ended and in progress would count twice, above 5 per wait begun).
TEST(WaitingTimeTest, ReadersSeeAConsistentTotalWhileTheLoopWrites) {
  WaitingTime w;
  constexpr int kWaits = 200'000;
  std::atomic<int64_t> clock{0};  // the loop's: wait i lasts from 10 * i to 10 * i + 5
  std::atomic<int64_t> begun{0};
  std::atomic<bool> done{false};
  std::atomic<int> fell{0};
  std::atomic<int> torn{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      int64_t last = 0;
      while (!done.load()) {
        const int64_t total = w.total_ns(clock.load());
        if (total < last) fell.fetch_add(1);
        if (total > 5 * begun.load()) torn.fetch_add(1);
        last = total;
      }
    });
  }
  for (int64_t i = 0; i < kWaits; ++i) {
    clock.store(10 * i);
    begun.store(i + 1);
    w.begin(10 * i);
    clock.store(10 * i + 5);
    w.end(5);
  }
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(fell.load(), 0);
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(w.total_ns(0), 5LL * kWaits);
}

}  // namespace
}  // namespace brrr
