#include "runtime/task_clock.h"

#include <sys/resource.h>

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "tests/testing/threads.h"

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

long InvoluntarySwitches() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_nivcsw;
}

// anchor() pairs a monotonic read with a TSC read. A thread preempted between the two would
// pair them a time slice apart, and every reading until the next anchor would be off by that
// slice: timers due seen as not due, tasks measured a slice short. A thread that does little
// but anchor, on a CPU it shares with a spinning thread, is often preempted inside anchor();
// each reading must still lie within a monotonic bracket (with 100 us of slack, far above the
// calibration's error over these spans and far below a time slice). Bounded: 1.5 s, 3M rounds.
TEST(TaskClockTest, APreemptedAnchorStillPairsItsTwoClocks) {
  TaskClock clock;
  if (!clock.uses_tsc()) GTEST_SKIP() << "no invariant TSC: now() reads the monotonic clock";
  testing::SharedCpu shared;
  long switches_before = InvoluntarySwitches();
  int off = 0;
  int64_t worst = 0;
  const int64_t until = MonotonicNanos() + 1'500'000'000;
  for (int i = 0; i < 3'000'000 && MonotonicNanos() < until; ++i) {
    clock.anchor();
    int64_t before = MonotonicNanos();
    int64_t t = clock.now();
    int64_t after = MonotonicNanos();
    int64_t error = t < before ? before - t : (t > after ? t - after : 0);
    if (error > 100'000) ++off;
    worst = std::max(worst, error);
  }
  long preempted = InvoluntarySwitches() - switches_before;
  if (preempted < 10) GTEST_SKIP() << "the thread was preempted only " << preempted << " times";
  EXPECT_EQ(off, 0) << "worst " << worst << " ns off, over " << preempted << " preemptions";
}

}  // namespace
}  // namespace brrr
