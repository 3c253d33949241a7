// The tutorial's examples (../shared/seed/), reproduced on brrr's runtime: each prints what the
// tutorial prints, in the tutorial's order. Run on every backend, since the loop waits for
// timers through the backend.
#include "runtime/examples/seed_examples.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/manual_clock.h"
#include "tests/testing/backends.h"

namespace brrr::seed {
namespace {

using std::chrono::milliseconds;
using Lines = std::vector<std::string>;

class SeedTest : public ::testing::TestWithParam<std::string> {
 protected:
  Print Recorder() {
    return [this](const std::string& line) { printed_.push_back(line); };
  }
  // Virtual time for the examples that hold the loop or sleep: a hold advances the clock by
  // exactly its delay, and an idle loop jumps to its next timer (ManualClock::AutoAdvance), so
  // the stall counts below do not depend on how busy the machine is.
  EventLoopOptions VirtualTime(Duration stall_threshold) {
    EventLoopOptions options;
    options.stall_threshold = stall_threshold;
    options.stall_sink = [](const std::string&) {};
    options.manual_clock = &clock_;
    return options;
  }
  Hold AdvanceClock() {
    return [this](Duration delay) { clock_.advance(delay); };
  }
  Lines printed_;
  ManualClock clock_{ManualClock::AutoAdvance{}};
};

// (1) "Task 1 1, Task 2 1, Task 1 2, ..."
TEST_P(SeedTest, NonBlockingTasksInterleave) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  NonBlockingTasks(*loop, Recorder());
  EXPECT_EQ(printed_, (Lines{"Task 1 1", "Task 2 1", "Task 1 2", "Task 2 2", "Task 1 3", "Task 2 3",
                             "Task 1 4", "Task 2 4", "Task 1 5", "Task 2 5"}));
}

// (2) The blocking version prints all of task 1 before task 2.
TEST_P(SeedTest, BlockingTasksRunOneAfterTheOther) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  BlockingTasks(*loop, Recorder());
  EXPECT_EQ(printed_, (Lines{"Task 1 1", "Task 1 2", "Task 1 3", "Task 1 4", "Task 1 5", "Task 2 1",
                             "Task 2 2", "Task 2 3", "Task 2 4", "Task 2 5"}));
}

// (3) A busy-wait "sleep" holds the other task back for its whole duration (and is a stall).
TEST_P(SeedTest, BusyWaitSleepHoldsTheOtherTaskBack) {
  BRRR_LOOP_OR_SKIP(loop, GetParam(), VirtualTime(milliseconds(50)));
  TimePoint start = loop->now();
  TimePoint other_ran;
  BlockingSleep(
      *loop, milliseconds(100),
      [&](const std::string& line) {
        printed_.push_back(line);
        if (line == "Let's wait :(") other_ran = loop->now();
      },
      AdvanceClock());
  EXPECT_EQ(printed_, (Lines{"Let's annoy the other task", "Let's wait :("}));
  EXPECT_EQ(other_ran - start, milliseconds(100)) << "the other task waited the busy-wait out";
  EXPECT_EQ(loop->stats().stalls, 1u);
  EXPECT_EQ(loop->stall_detector().recent().at(0).task, "seed:busy_wait");
}

// The tutorial's own busy-wait, on the monotonic clock: it holds the other task back (an
// order, not a duration, is asserted).
TEST_P(SeedTest, TheRealBusyWaitHoldsTheOtherTaskBackToo) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  TimePoint start = Clock::now();
  TimePoint other_ran;
  BlockingSleep(*loop, milliseconds(20), [&](const std::string& line) {
    printed_.push_back(line);
    if (line == "Let's wait :(") other_ran = Clock::now();
  });
  EXPECT_EQ(printed_, (Lines{"Let's annoy the other task", "Let's wait :("}));
  EXPECT_GE(other_ran - start, milliseconds(20)) << "the busy-wait ends on the clock this reads";
}

// (3) A non-blocking sleep lets the other task run first.
TEST_P(SeedTest, NonBlockingSleepLetsTheOtherTaskRunFirst) {
  BRRR_LOOP_OR_SKIP(loop, GetParam(), VirtualTime(milliseconds(50)));
  TimePoint start = loop->now();
  NonBlockingSleep(*loop, milliseconds(100), Recorder());
  EXPECT_EQ(loop->now() - start, milliseconds(100)) << "the loop slept until the continuation was due";
  EXPECT_EQ(printed_, (Lines{"Let's annoy the other task", "I didn't wait :)", "Failed to annoy the other task :("}));
  EXPECT_EQ(loop->stats().stalls, 0u);
}

// (3) The same two sleeps as coroutines: time.sleep vs asyncio.sleep.
TEST_P(SeedTest, CoroutineSleeps) {
  BRRR_LOOP_OR_SKIP(loop, GetParam(), VirtualTime(milliseconds(50)));
  CoroutineSleeps(*loop, milliseconds(100), Recorder(), AdvanceClock());
  EXPECT_EQ(printed_, (Lines{"time.sleep: Let's annoy the other task", "time.sleep: done",
                             "time.sleep: the other task ran", "asyncio.sleep: Let's annoy the other task",
                             "asyncio.sleep: the other task ran",
                             "asyncio.sleep: Failed to annoy the other task :("}));
  EXPECT_EQ(loop->stats().stalls, 1u) << "only the thread sleep held the loop";
}

// (4) A coroutine created but not awaited does not run until awaited.
TEST_P(SeedTest, CoroutineRunsOnlyWhenAwaited) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  CoroutineRunsWhenAwaited(*loop, Recorder());
  EXPECT_EQ(printed_, (Lines{"<coroutine object fn> (created, not awaited)", "awaiting it now",
                             "Here's your co-routine sir/ma'am"}));
}

// (5) A future shows pending, is set to 50, and awaiting it gives 50.
TEST_P(SeedTest, FutureIsSetLater) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  FutureSetLater(*loop, Recorder());
  EXPECT_EQ(printed_, (Lines{"<Future pending>", "<Future finished result=50>", "50"}));
}

// (6) gather over three concurrent operations starts all three before any finishes.
TEST_P(SeedTest, GatherStartsAllThreeBeforeAnyFinishes) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  GatherThree(*loop, Recorder());
  ASSERT_EQ(printed_.size(), 7u);
  EXPECT_EQ((Lines(printed_.begin(), printed_.begin() + 3)),
            (Lines{"Start async task: 1", "Start async task: 2", "Start async task: 3"}));
  Lines finished(printed_.begin() + 3, printed_.begin() + 6);
  std::sort(finished.begin(), finished.end());
  EXPECT_EQ(finished, (Lines{"Finished async task: 1", "Finished async task: 2", "Finished async task: 3"}));
  EXPECT_EQ(printed_[6], "Results: 10 20 30") << "results in argument order, whatever the finish order";
}

INSTANTIATE_TEST_SUITE_P(Backends, SeedTest, ::testing::ValuesIn(brrr::testing::AllBackends()),
                         brrr::testing::BackendName());

// (7) A generator yields 1..9.
TEST(SeedGeneratorTest, YieldsOneToNine) {
  Lines printed;
  GeneratorOneToNine([&](const std::string& line) { printed.push_back(line); });
  EXPECT_EQ(printed, (Lines{"<generator object task>", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
}

}  // namespace
}  // namespace brrr::seed
