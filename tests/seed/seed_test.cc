// The tutorial's examples (../shared/seed/), reproduced on brrr's runtime: each prints what the
// tutorial prints, in the tutorial's order. Run on every backend, since the loop waits for
// timers through the backend.
#include "runtime/examples/seed_examples.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
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
  Lines printed_;
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
  EventLoopOptions options;
  options.stall_threshold = milliseconds(50);
  options.stall_sink = [](const std::string&) {};
  BRRR_LOOP_OR_SKIP(loop, GetParam(), options);
  TimePoint start = Clock::now();
  TimePoint other_ran;
  BlockingSleep(*loop, milliseconds(100), [&](const std::string& line) {
    printed_.push_back(line);
    if (line == "Let's wait :(") other_ran = Clock::now();
  });
  EXPECT_EQ(printed_, (Lines{"Let's annoy the other task", "Let's wait :("}));
  EXPECT_GE(other_ran - start, milliseconds(100)) << "the other task waited the busy-wait out";
  EXPECT_EQ(loop->stats().stalls, 1u);
}

// (3) A non-blocking sleep lets the other task run first.
TEST_P(SeedTest, NonBlockingSleepLetsTheOtherTaskRunFirst) {
  EventLoopOptions options;
  options.stall_threshold = milliseconds(50);
  BRRR_LOOP_OR_SKIP(loop, GetParam(), options);
  NonBlockingSleep(*loop, milliseconds(100), Recorder());
  EXPECT_EQ(printed_, (Lines{"Let's annoy the other task", "I didn't wait :)", "Failed to annoy the other task :("}));
  EXPECT_EQ(loop->stats().stalls, 0u);
}

// (3) The same two sleeps as coroutines: time.sleep vs asyncio.sleep.
TEST_P(SeedTest, CoroutineSleeps) {
  EventLoopOptions options;
  options.stall_threshold = milliseconds(50);
  options.stall_sink = [](const std::string&) {};
  BRRR_LOOP_OR_SKIP(loop, GetParam(), options);
  CoroutineSleeps(*loop, milliseconds(100), Recorder());
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
