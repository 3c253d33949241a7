#include "runtime/task_clock.h"

#include <thread>

#include "gtest/gtest.h"

namespace brrr {
namespace {

// TaskClock::now() lies on MonotonicNanos()'s timeline: bracketed by two monotonic reads
// taken around it (with 1 ms of slack for calibration error over the span). The sleeps only
// let time pass since the anchor; nothing waits on them, and a slow machine only widens the
// bracket (the calibration error grows with the span by parts per million, far below 1 ms).
TEST(TaskClockTest, StaysOnTheMonotonicTimeline) {
  TaskClock clock;
  clock.anchor();
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int64_t before = MonotonicNanos();
    int64_t t = clock.now();
    int64_t after = MonotonicNanos();
    EXPECT_GE(t, before - 1'000'000);
    EXPECT_LE(t, after + 1'000'000);
  }
}

TEST(TaskClockTest, AnchorReturnsTheMonotonicClock) {
  TaskClock clock;
  int64_t before = MonotonicNanos();
  int64_t anchored = clock.anchor();
  int64_t after = MonotonicNanos();
  EXPECT_GE(anchored, before);
  EXPECT_LE(anchored, after);
}

// A measurement that spans more than a millisecond ends on an exact monotonic reading, so a
// long task is never measured shorter than it ran (the TSC's calibration error does not
// accumulate).
TEST(TaskClockTest, LongSpansEndOnAnExactReading) {
  TaskClock clock;
  for (int i = 0; i < 20; ++i) {
    int64_t start = clock.anchor();
    int64_t until = start + 5'000'000;
    while (MonotonicNanos() < until) {
    }
    int64_t end = clock.end();
    EXPECT_GE(end - start, 5'000'000) << "iteration " << i;
  }
}

TEST(TaskClockTest, IsMonotonicBetweenAnchors) {
  TaskClock clock;
  clock.anchor();
  int64_t last = clock.now();
  for (int i = 0; i < 100000; ++i) {
    int64_t t = clock.now();
    ASSERT_GE(t, last);
    last = t;
  }
}

}  // namespace
}  // namespace brrr
