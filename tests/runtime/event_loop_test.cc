// The event loop's scheduling contract, on every backend (the loop waits through the backend).
#include "runtime/event_loop.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/clock.h"
#include "runtime/internal/loop_internals.h"
#include "runtime/line_output.h"
#include "runtime/manual_clock.h"
#include "runtime/socket.h"
#include "tests/testing/backends.h"
#include "tests/testing/threads.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;

class EventLoopTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EventLoopTest, CallSoonRunsInFifoOrder) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  std::vector<int> order;
  for (int i = 0; i < 10; ++i) loop->call_soon([&order, i] { order.push_back(i); });
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST_P(EventLoopTest, WorkScheduledByATaskRunsInTheNextIteration) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  std::vector<std::string> order;
  loop->call_soon([&] {
    order.push_back("a");
    loop->call_soon([&] { order.push_back("c"); });
  });
  loop->call_soon([&] { order.push_back("b"); });
  loop->run_once(milliseconds(0));
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b"}));
  loop->run_once(milliseconds(0));
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
}

// io_batch_time_ns() is the loop's clock as the loop last came back from waiting for I/O: it
// moves with each wait, and only then (in virtual time, so exactly).
TEST_P(EventLoopTest, IoBatchTimeIsTheClockWhenTheLastWaitReturned) {
  ManualClock clock;
  BRRR_LOOP_OR_SKIP(loop, GetParam(), {.manual_clock = &clock});
  const int64_t created = clock.now_ns();
  EXPECT_EQ(loop->io_batch_time_ns(), created) << "before the first wait: the loop's creation";
  clock.advance(milliseconds(5));
  EXPECT_EQ(loop->io_batch_time_ns(), created) << "the clock moved, but the loop has not waited";
  uint64_t waits = loop->stats().io_waits;
  loop->run_once(milliseconds(1));  // nothing to run: waits up to 1 ms (real time) for I/O
  ASSERT_EQ(loop->stats().io_waits, waits + 1);
  EXPECT_EQ(loop->io_batch_time_ns(), created + 5'000'000);
  clock.advance(milliseconds(7));
  loop->call_soon([] {});
  loop->run_once(milliseconds(0));  // a task ready and nothing in flight: no wait
  EXPECT_EQ(loop->stats().io_waits, waits + 1);
  EXPECT_EQ(loop->io_batch_time_ns(), created + 5'000'000);
  loop->run_once(milliseconds(1));
  EXPECT_EQ(loop->io_batch_time_ns(), created + 12'000'000);
}

// In virtual time (a ManualClock), so "never early" and "on time" are exact: a timer runs in
// the first iteration at or after its deadline, not a nanosecond before.
TEST_P(EventLoopTest, TimersFireInDeadlineOrderAndNeverEarly) {
  ManualClock clock;
  BRRR_LOOP_OR_SKIP(loop, GetParam(), {.manual_clock = &clock});
  std::vector<int> order;
  TimePoint start = loop->now();
  std::vector<TimePoint> fired_at(3);
  loop->call_later(milliseconds(30), [&] { order.push_back(30); fired_at[2] = loop->now(); });
  loop->call_later(milliseconds(10), [&] { order.push_back(10); fired_at[0] = loop->now(); });
  loop->call_later(milliseconds(20), [&] {
    order.push_back(20);
    fired_at[1] = loop->now();
  });
  loop->run_once(milliseconds(0));
  EXPECT_TRUE(order.empty());
  for (int deadline : {10, 20, 30}) {
    clock.advance(milliseconds(deadline) - (loop->now() - start) - Duration(1));
    loop->run_once(milliseconds(0));
    EXPECT_EQ(order.size(), static_cast<size_t>(deadline / 10 - 1)) << "1 ns before " << deadline << " ms";
    clock.advance(Duration(1));
    loop->run_once(milliseconds(0));
    EXPECT_EQ(order.size(), static_cast<size_t>(deadline / 10)) << "at " << deadline << " ms";
  }
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
  EXPECT_EQ(fired_at[0] - start, milliseconds(10));
  EXPECT_EQ(fired_at[1] - start, milliseconds(20));
  EXPECT_EQ(fired_at[2] - start, milliseconds(30));
  EXPECT_EQ(loop->stats().timer_lateness.max_ns, 0) << "each ran at its deadline";
}

// On the monotonic clock: the loop blocks in its backend until the earliest timer is due.
TEST_P(EventLoopTest, ALoopWaitsInTheBackendForItsNextTimer) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  TimePoint due;
  TimePoint ran_at;
  // The timer is set from a task of the running loop, so nothing between setting it and the
  // loop's next wait takes time but the rest of that iteration (set before run_forever, a
  // loaded machine under TSan once took the whole 10 ms it then had to start the loop, and
  // the loop rightly never waited).
  loop->call_soon([&] {
    due = loop->now() + milliseconds(100);
    loop->call_at(due, [&] {
      ran_at = loop->now();
      loop->stop();
    });
  });
  loop->run_forever();
  EXPECT_GE(ran_at, due) << "never early: the same clock the deadline was set on";
  EXPECT_GE(loop->stats().io_waits, 1u);
}

// Deadlines at the bottom of the clock's range are due at once, in the order scheduled. The
// loop took its wait as the next deadline minus now, which overflowed into a wait of centuries
// (and UBSan's report): it slept through them until another thread stopped it.
TEST_P(EventLoopTest, DeadlinesBeforeTheClocksStartAreDueAtOnce) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  std::vector<int> order;
  loop->call_later(Duration::min(), [&] { order.push_back(1); });
  loop->call_at(TimePoint::min(), [&] { order.push_back(2); });
  loop->call_later(std::chrono::hours(-1), [&] {
    order.push_back(3);
    loop->stop();
  });
  std::atomic<bool> done = false;
  std::atomic<bool> stopped_from_outside = false;
  std::thread guard([&] {  // a bound on the hang, not on the speed
    for (int i = 0; i < 3000 && !done.load(); ++i) std::this_thread::sleep_for(milliseconds(10));
    if (!done.load()) {
      stopped_from_outside = true;
      loop->stop();
    }
  });
  loop->run_forever();
  done = true;
  guard.join();
  EXPECT_FALSE(stopped_from_outside.load()) << "the loop slept through timers that were due";
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_GE(loop->stats().timer_lateness.max_ns, 0);
}

// Delays at the top of the clock's range (Duration::max(), one below it, half of it) and a
// deadline of TimePoint::max() never come due: they stay pending, nothing runs them, and a loop
// with only them to wait for blocks in its backend (a post then wakes it) instead of spinning or
// waking at a wrapped deadline.
TEST_P(EventLoopTest, DelaysAtTheTopOfTheClocksRangeNeverComeDue) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  int ran = 0;
  std::vector<TimerHandle> far;
  far.push_back(loop->call_later(Duration::max(), [&] { ++ran; }));
  far.push_back(loop->call_later(Duration::max() - Duration(1), [&] { ++ran; }));
  far.push_back(loop->call_later(Duration(std::numeric_limits<int64_t>::max() / 2), [&] { ++ran; }));
  far.push_back(loop->call_at(TimePoint::max(), [&] { ++ran; }));
  loop->call_later(Duration::zero(), [&] { loop->call_later(milliseconds(1), [&] { loop->stop(); }); });
  loop->run_forever();
  pid_t loop_thread = testing::CurrentThreadId();
  std::thread poster([&] {
    EXPECT_TRUE(testing::WaitUntilBlockedInWait(loop_thread)) << "the loop never blocked in its backend";
    EXPECT_TRUE(loop->call_soon_threadsafe([&] { loop->stop(); }));
  });
  loop->run_forever();  // only the far timers: returns once the post wakes it
  poster.join();
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(loop->stats().pending_timers, far.size());
  for (TimerHandle& t : far) {
    EXPECT_TRUE(t.pending());
    EXPECT_TRUE(t.cancel());
  }
}

TEST_P(EventLoopTest, EqualDeadlinesFireInTheOrderScheduled) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  std::vector<int> order;
  TimePoint when = loop->now() + milliseconds(5);
  for (int i = 0; i < 20; ++i) loop->call_at(when, [&order, i] { order.push_back(i); });
  loop->call_at(when, [&] { loop->stop(); });
  loop->run_forever();
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[i], i);
}

TEST_P(EventLoopTest, CancelledTimerDoesNotRun) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  bool ran = false;
  TimerHandle t = loop->call_later(milliseconds(5), [&] { ran = true; });
  EXPECT_TRUE(t.pending());
  EXPECT_EQ(loop->stats().pending_timers, 1u);
  EXPECT_TRUE(t.cancel());
  EXPECT_FALSE(t.pending());
  EXPECT_EQ(loop->stats().pending_timers, 0u);
  loop->call_later(milliseconds(10), [&] { loop->stop(); });
  loop->run_forever();
  EXPECT_FALSE(ran);
  EXPECT_FALSE(t.cancel());
}

// Cancelling a timer that already ran is a no-op, even once a newer timer has taken its place
// in the queue: the stale handle does not cancel that one.
TEST_P(EventLoopTest, CancellingATimerThatRanCancelsNothing) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  int ran = 0;
  TimerHandle done = loop->call_later(Duration::zero(), [&] { ++ran; });
  loop->run_once(milliseconds(0));
  ASSERT_EQ(ran, 1);
  EXPECT_FALSE(done.pending());
  bool newer_ran = false;
  TimerHandle newer = loop->call_later(Duration::zero(), [&] { newer_ran = true; });
  EXPECT_FALSE(done.cancel());
  EXPECT_TRUE(newer.pending());
  EXPECT_EQ(loop->stats().pending_timers, 1u);
  loop->run_once(milliseconds(0));
  EXPECT_TRUE(newer_ran);
  EXPECT_EQ(ran, 1);
}

// A zero-delay timer that reschedules itself (up to 1,000 times) beside a ready task: after
// one iteration the task has run and the timer has run once, for a timer scheduled while
// timers run waits for the next iteration; after a second, twice.
void ExpectAZeroDelayTimerToRunOncePerIteration(EventLoop& loop) {
  int ticks = 0;
  std::function<void()> tick = [&] {
    if (++ticks < 1000) loop.call_later(Duration::zero(), tick);
  };
  loop.call_later(Duration::zero(), tick);
  bool other_ran = false;
  loop.call_soon([&] { other_ran = true; });
  loop.run_once(milliseconds(0));
  EXPECT_TRUE(other_ran);
  EXPECT_EQ(ticks, 1) << "a timer scheduled while timers run waits for the next iteration";
  loop.run_once(milliseconds(0));
  EXPECT_EQ(ticks, 2);
}

TEST_P(EventLoopTest, ZeroDelayTimerThatReschedulesItselfDoesNotStarveTheLoop) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  ExpectAZeroDelayTimerToRunOncePerIteration(*loop);
}

// The same in virtual time, where the clock does not move while timers run: the rescheduled
// timer's deadline is the phase's own "now", and it still waits for the next iteration.
TEST_P(EventLoopTest, ZeroDelayTimerThatReschedulesItselfWaitsForTheNextIterationInVirtualTime) {
  ManualClock clock;
  BRRR_LOOP_OR_SKIP(loop, GetParam(), {.manual_clock = &clock});
  ExpectAZeroDelayTimerToRunOncePerIteration(*loop);
}

// A timer scheduled in the past while timers run (call_at with a deadline gone by) waits for
// the next iteration, and holds back no timer that was due when the phase began: B, due with
// A, still runs before the ready tasks; C (the earliest deadline of all) runs in the next
// iteration's timer phase.
TEST_P(EventLoopTest, ATimerScheduledInThePastWhileTimersRunHoldsBackNoDueTimer) {
  ManualClock clock;
  BRRR_LOOP_OR_SKIP(loop, GetParam(), {.manual_clock = &clock});
  std::vector<std::string> order;
  loop->call_later(milliseconds(1), [&] {
    order.push_back("A");
    loop->call_at(loop->now() - milliseconds(1), [&] { order.push_back("C"); });
    loop->call_soon([&] { order.push_back("R"); });
  });
  loop->call_later(milliseconds(1), [&] { order.push_back("B"); });
  clock.advance(milliseconds(1));
  loop->run_once(milliseconds(0));
  EXPECT_EQ(order, (std::vector<std::string>{"A", "B", "R"}));
  loop->run_once(milliseconds(0));
  EXPECT_EQ(order, (std::vector<std::string>{"A", "B", "R", "C"}));
  EXPECT_EQ(loop->stats().pending_timers, 0u);
}

// The post must wake a loop that sleeps in its backend's wait, not one about to wait (a wake
// before the wait is another path: the loop would not block at all). The poster waits until
// /proc shows the loop thread asleep in the wait system call.
TEST_P(EventLoopTest, CallSoonThreadsafeWakesABlockedLoop) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  pid_t loop_thread = testing::CurrentThreadId();
  std::atomic<bool> posted{false};
  bool ran_after_post = false;
  std::thread poster([&] {
    EXPECT_TRUE(testing::WaitUntilBlockedInWait(loop_thread)) << "the loop never blocked in its backend";
    posted = true;
    EXPECT_TRUE(loop->call_soon_threadsafe([&] {
      ran_after_post = posted.load();
      loop->stop();
    }));
  });
  uint64_t waits_before = loop->stats().io_waits;
  loop->run_forever();  // nothing to do, no timer: returns only if the post woke the loop
  poster.join();
  EXPECT_TRUE(ran_after_post);
  EXPECT_GT(loop->stats().io_waits, waits_before);
  EXPECT_EQ(loop->stats().threadsafe_queue_depth, 0u);
}

TEST_P(EventLoopTest, ManyThreadsPostingLoseNothingAndKeepPerThreadOrder) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<int>> seen(kThreads);
  std::atomic<int> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        loop->call_soon_threadsafe([&, t, i] {
          seen[t].push_back(i);
          if (++total == kThreads * kPerThread) loop->stop();
        });
      }
    });
  }
  loop->run_forever();
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(seen[t][i], i);
  }
}

// Runs `loop` until another thread, once the loop has started, stops it.
void ExpectStopFromAnotherThreadEndsIt(EventLoop& loop) {
  std::atomic<bool> started{false};
  loop.call_soon([&] { started = true; });
  std::thread stopper([&] {
    while (!started.load()) std::this_thread::yield();
    loop.stop();
  });
  loop.run_forever();
  stopper.join();
  EXPECT_FALSE(loop.is_running());
}

TEST_P(EventLoopTest, StopFromAnotherThreadEndsAnIdleLoop) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  ExpectStopFromAnotherThreadEndsIt(*loop);
}

// A stop() that comes before run_forever() (another thread may stop a loop that has not
// started yet) is not lost: run_forever() returns. It is spent then: the next run_forever()
// runs as usual. In virtual time, so that a lost stop ends at once, in the hour-long timer.
TEST_P(EventLoopTest, AStopBeforeRunForeverMakesItReturn) {
  ManualClock clock{ManualClock::AutoAdvance{}};
  BRRR_LOOP_OR_SKIP(loop, GetParam(), {.manual_clock = &clock});
  bool gave_up = false;
  loop->call_later(std::chrono::hours(1), [&] {
    gave_up = true;
    loop->stop();
  });
  loop->stop();
  loop->run_forever();
  EXPECT_FALSE(gave_up) << "the stop was lost: the loop ran until the hour-long timer";
  bool ran = false;
  loop->call_soon([&] {
    ran = true;
    loop->stop();
  });
  loop->run_forever();
  EXPECT_TRUE(ran);
  EXPECT_FALSE(gave_up);
}

// A stop() made before the run ends it as asyncio's does: after one iteration, which runs the
// timers due and the tasks ready (not what they schedule) without waiting. The run returned
// before any iteration, leaving them to a next run that may never come.
TEST_P(EventLoopTest, AStopBeforeRunForeverLetsOneIterationRun) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  std::vector<std::string> ran;
  loop->call_at(TimePoint::min(), [&] { ran.push_back("due timer"); });
  loop->call_soon([&] {
    ran.push_back("ready task");
    loop->call_soon([&] {
      ran.push_back("what it scheduled");
      loop->stop();
    });
  });
  loop->stop();
  loop->run_forever();
  EXPECT_EQ(ran, (std::vector<std::string>{"due timer", "ready task"}));
  loop->run_forever();
  EXPECT_EQ(ran, (std::vector<std::string>{"due timer", "ready task", "what it scheduled"}));
}

// A stop() made during a run_once() (or before it) is spent by it: a later run_forever() runs
// until its own stop. It stayed pending and ended the next run after its first iteration.
TEST_P(EventLoopTest, AStopMadeDuringRunOnceDoesNotEndALaterRun) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  loop->call_soon([&] { loop->stop(); });
  loop->run_once(milliseconds(0));
  loop->stop();
  loop->run_once(milliseconds(0));
  int iterations = 0;
  std::function<void()> step = [&] {
    if (++iterations == 3) {
      loop->stop();
    } else {
      loop->call_soon(step);
    }
  };
  loop->call_soon(step);
  loop->run_forever();
  EXPECT_EQ(iterations, 3);
}

TEST_P(EventLoopTest, ALoopCanBeHandedToAnotherThread) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  std::thread::id ran_on;
  loop->call_soon([&] {
    ran_on = std::this_thread::get_id();
    loop->stop();
  });
  std::thread worker([&] { loop->run_forever(); });
  std::thread::id worker_id = worker.get_id();
  worker.join();
  EXPECT_EQ(ran_on, worker_id);
}

// options.reactor.one_thread: built here, run by a worker (it waits in the backend for a
// timer, so the backend is driven from there), destroyed here again.
TEST_P(EventLoopTest, AOneThreadLoopRunsOnTheThreadThatFirstRunsIt) {
  EventLoopOptions options;
  options.reactor.one_thread = true;
  BRRR_LOOP_OR_SKIP(loop, GetParam(), options);
  std::thread::id ran_on;
  int timers_fired = 0;
  // Each timer is set by the running loop, microseconds before it computes its wait, so the
  // wait is for the timer (not skipped, as it would be for a timer set here that came due
  // before a late-starting worker got to it).
  loop->call_soon([&] {
    loop->call_later(milliseconds(5), [&] {
      ++timers_fired;
      loop->call_later(milliseconds(5), [&] {
        ++timers_fired;
        ran_on = std::this_thread::get_id();
        loop->stop();
      });
    });
  });
  std::thread worker([&] { loop->run_forever(); });
  std::thread::id worker_id = worker.get_id();
  worker.join();
  EXPECT_EQ(timers_fired, 2);
  EXPECT_EQ(ran_on, worker_id);
  EXPECT_GE(loop->stats().io_waits, 1u);
  loop.reset();
}

TEST_P(EventLoopTest, ExceptionEscapingATaskIsReportedAndTheLoopGoesOn) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  bool after = false;
  loop->call_soon([] { throw std::runtime_error("boom"); }, "thrower");
  loop->call_soon([&] {
    after = true;
    loop->stop();
  });
  ::testing::internal::CaptureStderr();
  loop->run_forever();
  ASSERT_TRUE(LineOutput::Process().Flush(absl::Seconds(10)));  // the report is written by its own thread
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(after);
  EXPECT_EQ(loop->stats().callback_errors, 1u);
  EXPECT_NE(err.find("exception escaped <thrower>: boom"), std::string::npos) << err;
}

// A deferred flush (a Sender's batched send) that throws: reported like a task's exception;
// the flushes after it in the batch still run, and the loop goes on.
TEST_P(EventLoopTest, ExceptionEscapingADeferredFlushIsReportedAndTheLoopGoesOn) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  struct Flush : DeferredFlush {
    void flush() override {
      ++runs;
      if (throws) throw std::runtime_error("flush failed");
    }
    bool throws = false;
    int runs = 0;
  };
  Flush thrower;
  thrower.throws = true;
  Flush after;
  loop->call_soon([&] {
    LoopInternals::defer_flush(*loop, thrower);
    LoopInternals::defer_flush(*loop, after);
  });
  bool later_ran = false;
  loop->call_later(std::chrono::milliseconds(1), [&] {
    later_ran = true;
    loop->stop();
  });
  ::testing::internal::CaptureStderr();
  loop->run_forever();
  ASSERT_TRUE(LineOutput::Process().Flush(absl::Seconds(10)));
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(later_ran);
  EXPECT_EQ(thrower.runs, 1);
  EXPECT_EQ(after.runs, 1);
  EXPECT_EQ(loop->stats().callback_errors, 1u);
  EXPECT_NE(err.find("exception escaped a deferred flush: flush failed"), std::string::npos) << err;
}

// What the last iteration's tasks deferred (a Sender's batched send) runs before the loop
// returns, whether a task stopped it or it ran one iteration: nothing queued is held back
// until a next run that may never come.
TEST_P(EventLoopTest, WhatTheLastTasksDeferredRunsBeforeTheLoopReturns) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  struct Flush : DeferredFlush {
    void flush() override { ++runs; }
    int runs = 0;
  };
  Flush before_stop;
  loop->call_soon([&] {
    LoopInternals::defer_flush(*loop, before_stop);
    loop->stop();
  });
  loop->run_forever();
  EXPECT_EQ(before_stop.runs, 1);
  Flush in_run_once;
  loop->call_soon([&] { LoopInternals::defer_flush(*loop, in_run_once); });
  loop->run_once(std::chrono::milliseconds(0));
  EXPECT_EQ(in_run_once.runs, 1);
}

// finish(): what other threads posted before it runs there, in order, on the loop's thread;
// what they post after it is refused (false) and never runs.
TEST_P(EventLoopTest, FinishRunsWhatWasPostedAndRefusesWhatComesAfter) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  std::vector<std::string> ran;
  EventLoop* current_when_run = nullptr;
  std::thread poster([&] {
    EXPECT_TRUE(loop->call_soon_threadsafe([&] { ran.push_back("first"); }));
    EXPECT_TRUE(loop->call_soon_threadsafe([&] {
      ran.push_back("second");
      current_when_run = EventLoop::current();
    }));
  });
  poster.join();
  EXPECT_TRUE(ran.empty());
  EXPECT_FALSE(loop->finished());
  loop->finish();
  EXPECT_TRUE(loop->finished());
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(current_when_run, loop.get());
  std::thread late([&] { EXPECT_FALSE(loop->call_soon_threadsafe([&] { ran.push_back("late"); })); });
  late.join();
  EXPECT_EQ(ran.size(), 2u);
}

// Posts from another thread while the loop stops and then finishes: every post accepted runs
// exactly once and in order (in the run, or in finish()), and once one is refused every later
// one is. Nothing accepted is lost between the run's end and finish().
TEST_P(EventLoopTest, PostsRacingAStopAndFinishRunOnceEachOrAreRefused) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  constexpr int kMaxPosts = 200'000;
  constexpr int kStopAt = 1'000;
  constexpr int kPostsAfterRefusal = 100;
  std::vector<int> ran;  // on this thread, which runs and finishes the loop
  std::atomic<int> accepted{0};
  std::atomic<int> accepted_after_refusal{0};
  std::thread poster([&] {
    int refused = 0;
    for (int i = 0; i < kMaxPosts && refused < kPostsAfterRefusal; ++i) {
      bool queued = loop->call_soon_threadsafe([&ran, &loop, i] {
        ran.push_back(i);
        if (i == kStopAt) loop->stop();
      });
      if (!queued) {
        ++refused;
      } else if (refused > 0) {
        ++accepted_after_refusal;
      } else {
        ++accepted;
      }
    }
  });
  loop->run_forever();  // until post kStopAt runs
  loop->finish();
  poster.join();
  EXPECT_EQ(accepted_after_refusal.load(), 0);
  ASSERT_EQ(ran.size(), static_cast<size_t>(accepted.load()));
  for (size_t i = 0; i < ran.size(); ++i) ASSERT_EQ(ran[i], static_cast<int>(i));
}

TEST_P(EventLoopTest, CurrentIsSetOnlyWhileRunning) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  EXPECT_EQ(EventLoop::current(), nullptr);
  EventLoop* inside = nullptr;
  loop->call_soon([&] {
    inside = EventLoop::current();
    loop->stop();
  });
  loop->run_forever();
  EXPECT_EQ(inside, loop.get());
  EXPECT_EQ(EventLoop::current(), nullptr);
}

TEST_P(EventLoopTest, DestroyingALoopDropsQueuedWorkWithoutRunningIt) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  auto owned = std::make_shared<int>(0);
  std::weak_ptr<int> ready_capture = owned;
  auto owned2 = std::make_shared<int>(0);
  std::weak_ptr<int> timer_capture = owned2;
  bool ran = false;
  loop->call_soon([o = std::move(owned), &ran] { ran = true; });
  loop->call_later(milliseconds(1), [o = std::move(owned2), &ran] { ran = true; });
  loop.reset();
  EXPECT_FALSE(ran);
  EXPECT_TRUE(ready_capture.expired());
  EXPECT_TRUE(timer_capture.expired());
}

TEST_P(EventLoopTest, StatsCountIterationsTasksAndTime) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  // The first task sets the timer, so the loop has all of its 100 ms left to wait in the
  // backend (a timer set before run_forever may already be due when a loaded machine starts
  // the loop late).
  loop->call_soon([&] { loop->call_later(milliseconds(100), [&] { loop->stop(); }); });
  for (int i = 0; i < 4; ++i) loop->call_soon([] {});
  loop->run_forever();
  LoopStats s = loop->stats();
  EXPECT_EQ(s.backend, GetParam());
  EXPECT_EQ(s.tasks_run, 6u);
  EXPECT_GE(s.iterations, 2u);
  EXPECT_EQ(s.ready_queue_depth, 0u);
  EXPECT_EQ(s.pending_timers, 0u);
  EXPECT_GT(s.waiting_ns, 0) << "the loop waited for the timer in the backend";
  EXPECT_GT(s.running_ns, 0);
  EXPECT_EQ(s.timer_lateness.total, 1u);
  EXPECT_GE(s.io_waits, 1u);
  EXPECT_EQ(s.current_task_running_ns, 0);
  EXPECT_TRUE(s.current_task.empty());
}

// cpu: the CPU the loop's thread used, read from another thread: a task's 30 ms of spinning
// counts, a 100 ms wait in the backend for a timer does not.
TEST_P(EventLoopTest, CpuIsTheRunningThreadsCpuReadFromAnotherThread) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  EXPECT_EQ(loop->stats().cpu_ns, 0) << "never run";
  int64_t spun = 0;
  loop->call_soon([&] {
    spun = testing::SpinOwnCpu(30'000'000);
    loop->call_later(milliseconds(100), [&] { loop->stop(); });
  });
  std::thread runner([&] { loop->run_forever(); });
  runner.join();
  const int64_t cpu = loop->stats().cpu_ns;
  EXPECT_GE(cpu, spun);
  EXPECT_LT(cpu, spun + 50'000'000) << "the 100 ms wait counted as CPU";
  EXPECT_EQ(loop->stats().cpu_ns, cpu) << "not running: the total stands";
}

// run_queue_wait: the time the loop's thread waited for a core, read from another thread: a task
// spinning 30 ms of CPU on a core it shares with a spinner waits while the spinner runs.
TEST_P(EventLoopTest, RunQueueWaitIsTheTimeTheLoopsThreadWaitedForACore) {
  struct stat info {};
  if (::stat("/proc/thread-self/schedstat", &info) != 0) GTEST_SKIP() << "this kernel keeps no schedstats";
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  EXPECT_EQ(loop->stats().run_queue_wait_ns, 0) << "never run";
  loop->call_soon([&] {
    testing::SharedCpu shared;
    testing::SpinOwnCpu(30'000'000);
    loop->stop();
  });
  std::thread runner([&] { loop->run_forever(); });
  runner.join();
  EXPECT_GT(loop->stats().run_queue_wait_ns, 0) << "spun on a shared core, and the loop's thread never waited";
}

// waiting, read from another thread while the loop sleeps with nothing to do, grows with the
// sleep: at least the time between the two reads (the loop does not wake in between: iterations
// stands). Before, it was counted only as a wait ended, and stood still for the whole sleep.
TEST_P(EventLoopTest, WaitingGrowsWhileTheLoopSleeps) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  pid_t loop_thread = 0;
  loop->call_soon([&] { loop_thread = testing::CurrentThreadId(); });
  std::thread runner([&] { loop->run_forever(); });  // nothing to do, no timer: sleeps
  for (int i = 0; i < 10'000 && loop->stats().tasks_run == 0; ++i) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_TRUE(testing::WaitUntilBlockedInWait(loop_thread)) << "the loop never blocked in its backend";
  const LoopStats first = loop->stats();
  const int64_t after_first = MonotonicNanos();
  std::this_thread::sleep_for(milliseconds(50));
  const int64_t before_second = MonotonicNanos();
  const LoopStats second = loop->stats();
  EXPECT_EQ(second.iterations, first.iterations) << "the loop woke: nothing here can tell";
  EXPECT_GE(second.waiting_ns - first.waiting_ns, before_second - after_first);
  EXPECT_EQ(second.running_ns, first.running_ns);
  EXPECT_TRUE(loop->call_soon_threadsafe([&] { loop->stop(); }));
  runner.join();
  EXPECT_GE(loop->stats().waiting_ns, second.waiting_ns) << "the total fell once the wait ended";
}

// running, read from another thread while a task runs (a stall: it blocks its loop), grows with
// the task: at least the time between the two reads, while waiting stands. Before, it was counted
// only as the loop's iteration ended, and stood still for the whole stall.
TEST_P(EventLoopTest, RunningGrowsWhileATaskRuns) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  std::atomic<bool> running{false};
  std::atomic<bool> release{false};
  loop->call_soon([&] {
    running = true;
    for (int i = 0; i < 30'000 && !release.load(); ++i) std::this_thread::sleep_for(milliseconds(1));
    loop->stop();
  });
  std::thread runner([&] { loop->run_forever(); });
  for (int i = 0; i < 10'000 && !running.load(); ++i) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_TRUE(running.load());
  const LoopStats first = loop->stats();
  const int64_t after_first = MonotonicNanos();
  std::this_thread::sleep_for(milliseconds(50));
  const int64_t before_second = MonotonicNanos();
  const LoopStats second = loop->stats();
  release = true;
  runner.join();
  EXPECT_GE(second.running_ns - first.running_ns, before_second - after_first);
  EXPECT_EQ(second.waiting_ns, first.waiting_ns);
  EXPECT_EQ(second.iterations, first.iterations);
  EXPECT_GE(loop->stats().running_ns, second.running_ns) << "the total fell once the task ended";
}

// Read again and again from two threads while the loop wakes every millisecond, waiting never
// falls (a counter that fell would read as a reset to Prometheus).
TEST_P(EventLoopTest, WaitingNeverFallsWhileTheLoopComesAndGoes) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  int ticks = 0;
  std::function<void()> tick = [&] {
    if (++ticks == 200) {
      loop->stop();
      return;
    }
    loop->call_later(milliseconds(1), tick);
  };
  loop->call_soon(tick);
  std::atomic<bool> done{false};
  std::atomic<int> fell{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      int64_t last = 0;
      for (int i = 0; i < 1'000'000 && !done.load(); ++i) {  // bounded: the loop runs ~200 ms
        const int64_t now = loop->stats().waiting_ns;
        if (now < last) fell.fetch_add(1);
        last = now;
      }
    });
  }
  loop->run_forever();
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(ticks, 200);
  EXPECT_EQ(fell.load(), 0);
}

TEST_P(EventLoopTest, ReadyQueueDepthIsVisibleWhileTasksWait) {
  BRRR_LOOP_OR_SKIP(loop, GetParam());
  uint64_t depth_seen_by_first = 0;
  loop->call_soon([&] { depth_seen_by_first = loop->stats().ready_queue_depth; });
  for (int i = 0; i < 9; ++i) loop->call_soon([] {});
  EXPECT_EQ(loop->stats().ready_queue_depth, 10u);
  loop->run_once(milliseconds(0));
  EXPECT_EQ(depth_seen_by_first, 9u) << "the first task sees the 9 behind it";
  EXPECT_EQ(loop->stats().ready_queue_depth, 0u);
}

EventLoopOptions IdlePolling(Duration window) {
  EventLoopOptions options;
  options.idle_poll = window;
  return options;
}

// With idle polling a loop that runs out of work asks its backend again and again without
// waiting before it sleeps: many backend waits for one timer, where a loop without it makes
// one or two. The timer still fires, and never early.
TEST_P(EventLoopTest, IdlePollingAsksTheBackendManyTimesBeforeItSleeps) {
  auto waits_for_one_timer = [&](EventLoopOptions options, TimePoint* due, TimePoint* ran_at) {
    std::unique_ptr<EventLoop> loop = testing::NewLoop(GetParam(), std::move(options));
    if (loop == nullptr) return uint64_t{0};
    loop->call_soon([&] {
      *due = loop->now() + milliseconds(50);
      loop->call_at(*due, [&] {
        *ran_at = loop->now();
        loop->stop();
      });
    });
    loop->run_forever();
    return loop->stats().backend_waits;
  };
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  TimePoint due, ran_at;
  uint64_t plain = waits_for_one_timer(EventLoopOptions{}, &due, &ran_at);
  EXPECT_GE(ran_at, due);
  // The window is 10 ms of the clock (the most allowed): a loop preempted for as long
  // during its first polls polls once or twice. Up to ten tries; one that polls many times shows
  // the behaviour.
  uint64_t polling = 0;
  for (int attempt = 0; attempt < 10 && polling <= 3; ++attempt) {
    polling = std::max(polling, waits_for_one_timer(IdlePolling(milliseconds(10)), &due, &ran_at));
    EXPECT_GE(ran_at, due) << "never early, with idle polling too";
  }
  EXPECT_LE(plain, 3u) << "a loop without idle polling waits once for its timer (or twice, interrupted)";
  EXPECT_GT(polling, 3u) << "10 ms of idle polling asks the backend many times";
}

// A post from another thread ends the polling at once: the poll that sees its wake-up
// consumes it, so a loop that polled on and then slept would never run the task (each post
// here comes while the loop polls, its window 10 ms long and restarted after every task).
TEST_P(EventLoopTest, IdlePollingRunsAPostFromAnotherThread) {
  BRRR_LOOP_OR_SKIP(loop, GetParam(), IdlePolling(milliseconds(10)));
  constexpr int kPosts = 50;
  std::atomic<int> ran{0};
  std::thread poster([&] {
    for (int i = 0; i < kPosts; ++i) {
      EXPECT_TRUE(loop->call_soon_threadsafe([&] { ++ran; }));
      while (ran.load() <= i) std::this_thread::yield();
    }
    loop->call_soon_threadsafe([&] { loop->stop(); });
  });
  loop->run_forever();  // no timer: returns only if every post was run
  poster.join();
  EXPECT_EQ(ran.load(), kPosts);
}

// stop() from another thread ends a loop that is polling (its wake-up, too, is consumed by a
// poll).
TEST_P(EventLoopTest, IdlePollingEndsWhenStoppedFromAnotherThread) {
  BRRR_LOOP_OR_SKIP(loop, GetParam(), IdlePolling(milliseconds(10)));
  ExpectStopFromAnotherThreadEndsIt(*loop);
}

INSTANTIATE_TEST_SUITE_P(Backends, EventLoopTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

TEST(EventLoopCreateTest, UnknownBackendNamesTheAvailableOnes) {
  EventLoopOptions options;
  options.backend = "kqueue";
  auto loop = EventLoop::Create(options);
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.status().code(), absl::StatusCode::kNotFound);
  std::string message(loop.status().message());
  EXPECT_NE(message.find("libbrrr_reactor_kqueue.so"), std::string::npos) << message;
  EXPECT_NE(message.find("Available here: "), std::string::npos) << message;
  EXPECT_NE(message.find("epoll"), std::string::npos) << message;
}

TEST(EventLoopCreateTest, AnIdlePollWindowOutOfRangeIsRefused) {
  for (Duration window : {Duration(milliseconds(11)), Duration(-1)}) {
    auto loop = EventLoop::Create(IdlePolling(window));
    ASSERT_FALSE(loop.ok());
    EXPECT_EQ(loop.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(loop.status().message().find("idle_poll must be from 0 to 10000 us"), std::string::npos)
        << loop.status();
  }
  EXPECT_TRUE(EventLoop::Create(IdlePolling(milliseconds(10))).ok());
}

TEST(EventLoopCreateTest, AutoPicksTheBestBackendThatStarts) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok()) << loop.status();
  std::string backend = (*loop)->stats().backend;
  std::string why;
  // The best backend this build ships that the kernel accepts.
  std::string expected;
  for (const char* name : {"io_uring", "epoll", "poll", "select"}) {
    std::vector<std::string> all = testing::AllBackends();
    if (std::find(all.begin(), all.end(), name) == all.end()) continue;
    if (testing::BackendStarts(name, &why)) {
      expected = name;
      break;
    }
  }
  EXPECT_EQ(backend, expected);
}

}  // namespace
}  // namespace brrr

namespace brrr {
namespace {

// A loop made for one thread (options.reactor.one_thread) refuses a second runner in every
// build: the backend may have tied itself to the first (io_uring's one-thread ring).
TEST(EventLoopDeathTest, ASecondThreadRunningAOneThreadLoopAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        EventLoopOptions options;
        options.reactor.one_thread = true;
        auto loop = EventLoop::Create(options);
        (*loop)->run_once(std::chrono::milliseconds(0));
        std::thread other([&] { (*loop)->run_once(std::chrono::milliseconds(0)); });
        other.join();
      },
      "brrr: loop 0 is made for one thread \\(EventLoopOptions::reactor.one_thread\\) and a second thread runs it");
}

// A task that runs its own loop again (run_once, as run_forever) is refused in every build: the
// inner iteration would run what the outer one had yet to run, which then popped an empty
// ready queue and called a null callback.
TEST(EventLoopDeathTest, RunningTheLoopFromOneOfItsOwnTasksAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto loop = EventLoop::Create();
        (*loop)->call_soon([&] { (*loop)->run_once(std::chrono::milliseconds(0)); });
        (*loop)->call_soon([] {});
        (*loop)->run_once(std::chrono::milliseconds(0));
      },
      "brrr: EventLoop::run_once: this loop is already running");
  EXPECT_DEATH(
      {
        auto loop = EventLoop::Create();
        (*loop)->call_soon([&] {
          (*loop)->stop();  // so that a run_forever let in returns at once, instead of dying
          (*loop)->run_forever();
        });
        (*loop)->run_once(std::chrono::milliseconds(0));
      },
      "brrr: EventLoop::run_forever: this loop is already running");
}

// Running a loop from a destructor of what its destruction drops is refused in every build: the
// backend may be gone by then, and what the run would run is being dropped.
TEST(EventLoopDeathTest, RunningTheLoopAsItIsDestroyedAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // Runs the loop when destroyed: captured by a callback that is never run, it is destroyed
  // with the loop's ready queue.
  struct RunsTheLoopWhenDropped {
    EventLoop* loop = nullptr;
    ~RunsTheLoopWhenDropped() {
      if (loop != nullptr) loop->run_once(std::chrono::milliseconds(0));
    }
  };
  EXPECT_DEATH(
      {
        auto loop = EventLoop::Create();
        auto runs = std::make_shared<RunsTheLoopWhenDropped>();
        runs->loop = loop->get();
        (*loop)->call_soon([runs] {});
        runs.reset();
        loop->reset();
      },
      "brrr: EventLoop::run_once: this loop is being destroyed");
}

#ifndef NDEBUG
// Debug builds check that loop-only methods are called on the loop's thread.
TEST(EventLoopDeathTest, CallSoonFromAThreadThatDoesNotOwnTheLoopAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto loop = EventLoop::Create();
        std::thread other([&] { (*loop)->call_soon([] {}); });
        other.join();
      },
      "EventLoop::call_soon called from a thread that does not own this event loop; use "
      "call_soon_threadsafe");
}

// Debug builds refuse to adopt a socket that is not a stream: the backends take a short
// receive as the socket drained, which a datagram socket breaks.
TEST(EventLoopDeathTest, AdoptingADatagramSocketAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto loop = EventLoop::Create();
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        Socket adopted = Socket::Adopt(**loop, fd, "datagram");
      },
      "brrr: Socket::Adopt\\(fd [0-9]+\\): not a stream socket \\(SO_TYPE 2\\)");
}
#endif

// A stream socket is adopted as before (a socket pair's end, as the benchmarks do).
TEST(EventLoopTest, AdoptingAStreamSocketPairEndWorks) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok()) << loop.status();
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
  Socket adopted = Socket::Adopt(**loop, pair[0], "pair");
  EXPECT_EQ(adopted.fd(), pair[0]);
  adopted.close();
  ::close(pair[1]);
}

}  // namespace
}  // namespace brrr
