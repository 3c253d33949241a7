// Stall detection: every task is measured; long ones are counted, reported (rate-limited),
// streamed to subscribers, and visible from another thread while they are still running.
// The loops run on a ManualClock: a task "holds the loop for 80 ms" by advancing virtual time
// by 80 ms, so every duration below is exact and no figure depends on the machine's load.
#include "runtime/stall_detector.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/event_loop.h"
#include "runtime/manual_clock.h"
#include "tests/testing/backends.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;


// Collects printed lines.
struct Lines {
  std::mutex mu;
  std::vector<std::string> lines;
  StallDetector::Sink sink() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu);
      lines.push_back(line);
    };
  }
  std::vector<std::string> get() {
    std::lock_guard<std::mutex> lock(mu);
    return lines;
  }
};

class StallDetectorTest : public ::testing::Test {
 protected:
  std::unique_ptr<EventLoop> NewLoop(Duration threshold, StallDetector::Sink sink) {
    EventLoopOptions o;
    o.stall_threshold = threshold;
    o.stall_sink = std::move(sink);
    o.loop_id = 3;
    o.manual_clock = &clock_;
    return testing::NewLoop("epoll", o);
  }
  // A task that holds the loop for `d` of virtual time.
  Callback Hold(Duration d) {
    return [this, d] { clock_.advance(d); };
  }

  ManualClock clock_;
};

TEST_F(StallDetectorTest, ReportsALongTaskByNameWithDurationAndTaskCount) {
  Lines printed;
  auto loop = NewLoop(milliseconds(50), printed.sink());
  ASSERT_NE(loop, nullptr);
  std::vector<StallReport> streamed;
  loop->stall_detector().subscribe([&](const StallReport& r) { streamed.push_back(r); });
  for (int i = 0; i < 4; ++i) loop->call_soon([] {});
  loop->call_soon(Hold(milliseconds(80)), "busy-wait");
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();

  LoopStats s = loop->stats();
  EXPECT_EQ(s.stalls, 1u);
  EXPECT_EQ(s.longest_task_ns, 80'000'000);
  EXPECT_EQ(s.longest_task, "busy-wait");
  ASSERT_EQ(streamed.size(), 1u);
  EXPECT_EQ(streamed[0].task, "busy-wait");
  EXPECT_EQ(streamed[0].loop_id, 3u);
  EXPECT_EQ(streamed[0].tasks_run_before, 4u);
  EXPECT_EQ(streamed[0].duration_ns, 80'000'000);
  EXPECT_EQ(streamed[0].sequence, 1u);
  std::vector<std::string> lines = printed.get();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "brrr: loop 3: executing <busy-wait> took 0.080 seconds (after 4 tasks)");
  ASSERT_EQ(loop->stall_detector().recent().size(), 1u);
}

TEST_F(StallDetectorTest, UnnamedTaskIsReportedByItsCallSite) {
  Lines printed;
  auto loop = NewLoop(milliseconds(20), printed.sink());
  ASSERT_NE(loop, nullptr);
  loop->call_soon([this] { clock_.advance(milliseconds(30)); });  // the line below names this one
  const int line = __LINE__ - 1;
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  ASSERT_EQ(loop->stall_detector().recent().size(), 1u);
  std::string task = loop->stall_detector().recent()[0].task;
  EXPECT_NE(task.find("stall_detector_test.cc:" + std::to_string(line)), std::string::npos) << task;
}

TEST_F(StallDetectorTest, QuickTasksAreNotStalls) {
  Lines printed;
  // In virtual time a task that does not advance the clock takes no time at all: a threshold
  // of one nanosecond then tells a quick task from a stall exactly.
  auto loop = NewLoop(std::chrono::nanoseconds(1), printed.sink());
  ASSERT_NE(loop, nullptr);
  for (int i = 0; i < 1000; ++i) loop->call_soon([] {});
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(loop->stats().stalls, 0u);
  EXPECT_TRUE(printed.get().empty());
  EXPECT_EQ(loop->stats().tasks_run, 1001u);
}

// The threshold is inclusive: a task that runs for exactly the threshold is a stall ("ran for
// at least the threshold"); one a nanosecond shorter is not.
TEST_F(StallDetectorTest, ATaskOfExactlyTheThresholdIsAStall) {
  Lines printed;
  auto loop = NewLoop(milliseconds(50), printed.sink());
  ASSERT_NE(loop, nullptr);
  loop->call_soon(Hold(milliseconds(50) - std::chrono::nanoseconds(1)), "just-under");
  loop->call_soon(Hold(milliseconds(50)), "exactly");
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  ASSERT_EQ(loop->stats().stalls, 1u);
  ASSERT_EQ(loop->stall_detector().recent().size(), 1u);
  EXPECT_EQ(loop->stall_detector().recent()[0].task, "exactly");
  EXPECT_EQ(loop->stall_detector().recent()[0].duration_ns, 50'000'000);
}

TEST_F(StallDetectorTest, ThresholdChangesLive) {
  Lines printed;
  auto loop = NewLoop(std::chrono::seconds(10), printed.sink());
  ASSERT_NE(loop, nullptr);
  loop->call_soon(Hold(milliseconds(15)), "before");
  loop->call_soon([&] { loop->stall_detector().set_threshold_ns(10'000'000); });
  loop->call_soon(Hold(milliseconds(15)), "after");
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  ASSERT_EQ(loop->stats().stalls, 1u);
  EXPECT_EQ(loop->stall_detector().recent()[0].task, "after");
  EXPECT_EQ(loop->stats().stall_threshold_ns, 10'000'000);
}

TEST_F(StallDetectorTest, PrintingIsRateLimitedButCountingIsNot) {
  Lines printed;
  auto loop = NewLoop(milliseconds(1), printed.sink());
  ASSERT_NE(loop, nullptr);
  int streamed = 0;
  loop->stall_detector().subscribe([&](const StallReport&) { ++streamed; });
  // 30 stalls of 2 ms: 60 ms in all. A burst of 10 is printed; the bucket refills at 10 a
  // second, so 60 ms adds no whole line.
  for (int i = 0; i < 30; ++i) loop->call_soon(Hold(milliseconds(2)), "burst");
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(loop->stats().stalls, 30u);
  EXPECT_EQ(streamed, 30);
  std::vector<std::string> lines = printed.get();
  EXPECT_EQ(lines.size(), 10u);
  // 300 ms later the bucket has tokens again; the next line mentions the 20 suppressed ones.
  loop->call_later(milliseconds(300), Hold(milliseconds(2)), "later");
  loop->call_later(milliseconds(301), [&] { loop->stop(); });
  clock_.advance(milliseconds(301));
  loop->run_forever();
  lines = printed.get();
  ASSERT_EQ(lines.size(), 11u);
  EXPECT_NE(lines.back().find("[20 more stalls not printed]"), std::string::npos) << lines.back();
}

TEST(StallDetectorReportTest, UnsubscribedListenersHearNothingMore) {
  StallDetector d(0, 1, [](const std::string&) {});
  int heard = 0;
  uint64_t id = d.subscribe([&](const StallReport&) { ++heard; });
  d.report(TaskLabel("x"), 5, 0, 1);
  d.unsubscribe(id);
  d.report(TaskLabel("x"), 5, 1, 2);
  EXPECT_EQ(heard, 1);
  EXPECT_EQ(d.stall_count(), 2u);
}

TEST(StallDetectorReportTest, RecentKeepsTheLastReportsOnly) {
  StallDetector d(0, 1, [](const std::string&) {});
  for (int i = 0; i < 100; ++i) d.report(TaskLabel("x"), 5, static_cast<uint64_t>(i), i);
  std::vector<StallReport> recent = d.recent();
  ASSERT_EQ(recent.size(), StallDetector::kRecentCapacity);
  EXPECT_EQ(recent.back().tasks_run_before, 99u);
  EXPECT_EQ(recent.back().sequence, 100u);
}

// Another thread sees a stall while it is still happening: which task, and for how long.
TEST_F(StallDetectorTest, AnotherThreadSeesTheStallInProgress) {
  Lines printed;
  auto loop = NewLoop(milliseconds(100), printed.sink());
  ASSERT_NE(loop, nullptr);
  std::atomic<bool> observed{false};
  LoopStats seen;
  loop->call_soon(
      [&] {
        // 20 ms of virtual time pass inside the task; then it holds the loop (in real time)
        // until the observer has looked. Bounded at 30 s.
        clock_.advance(milliseconds(20));
        TimePoint give_up = Clock::now() + std::chrono::seconds(30);
        while (!observed.load() && Clock::now() < give_up) {
        }
        loop->stop();
      },
      "hog");
  std::thread observer([&] {
    TimePoint give_up = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < give_up) {
      LoopStats s = loop->stats();
      if (s.current_task == "hog" && s.current_task_running_ns > 0) {
        seen = s;
        break;
      }
      std::this_thread::yield();
    }
    observed = true;
  });
  loop->run_forever();
  observer.join();
  EXPECT_EQ(seen.current_task, "hog");
  EXPECT_EQ(seen.current_task_running_ns, 20'000'000);
  EXPECT_EQ(loop->stats().current_task_running_ns, 0) << "nothing runs once the loop stopped";
}

TEST_F(StallDetectorTest, TimersAreMeasuredToo) {
  Lines printed;
  auto loop = NewLoop(milliseconds(20), printed.sink());
  ASSERT_NE(loop, nullptr);
  loop->call_later(milliseconds(1), Hold(milliseconds(30)), "slow-timer");
  loop->call_later(milliseconds(2), [&] { loop->stop(); });
  clock_.advance(milliseconds(1));
  loop->run_forever();
  ASSERT_EQ(loop->stats().stalls, 1u);
  EXPECT_EQ(loop->stall_detector().recent()[0].task, "slow-timer");
  // The stop timer was due 1 ms into the 30 ms stall: it ran 29 ms late.
  EXPECT_EQ(loop->stats().timer_lateness.max_ns, 29'000'000);
}

// The samples of a stall in progress, as the loop's watchdog reports them (its own test,
// stall_watchdog_test, takes real ones): fed here by hand, with exact times.
StallSample Sampled(int64_t running_ns, std::vector<std::string> frames) {
  return StallSample{.running_ns = running_ns, .frames = std::move(frames)};
}

// The count an operator alerts on: a stall in progress counts once the watchdog has seen it,
// and its end does not count it again; the count never falls, also when the watchdog drops the
// stall in progress just before the loop reports its end.
TEST(StallProgressTest, AStallInProgressIsSeenOnceAndNeverUncounted) {
  Lines printed;
  StallDetector detector(7, 50'000'000, printed.sink());
  const int64_t start = 1'000'000'000;
  EXPECT_EQ(detector.stalls_seen(), 0u);
  detector.report_progress("hog", start, 5, start + 60'000'000, Sampled(60'000'000, {}));
  EXPECT_EQ(detector.stall_count(), 0u);
  EXPECT_EQ(detector.stalls_seen(), 1u) << "the stall in progress";
  detector.progress_ended(start);
  EXPECT_EQ(detector.stalls_seen(), 1u) << "dropped before its end was reported";
  detector.report("hog", 70'000'000, 5, start + 70'000'000);
  EXPECT_EQ(detector.stall_count(), 1u);
  EXPECT_EQ(detector.stalls_seen(), 1u) << "its end counted it again";
  const int64_t next = start + 1'000'000'000;
  detector.report_progress("hog", next, 6, next + 60'000'000, Sampled(60'000'000, {}));
  EXPECT_EQ(detector.stalls_seen(), 2u);
  detector.report("hog", 80'000'000, 6, next + 80'000'000);
  EXPECT_EQ(detector.stalls_seen(), 2u);
  detector.report("short-lived", 60'000'000, 7, next + 200'000'000);  // never sampled
  EXPECT_EQ(detector.stalls_seen(), 3u);
}

TEST(StallProgressTest, SamplesArePrintedAndStreamedWhileTheStallLastsAndItsEndCarriesThem) {
  Lines printed;
  StallDetector detector(7, 50'000'000, printed.sink());
  std::vector<StallReport> streamed;
  detector.subscribe([&](const StallReport& r) { streamed.push_back(r); });
  const int64_t start = 1'000'000'000;
  const std::vector<std::string> spin = {"Spin() (app+0x10)", "Serve() (app+0x20)"};
  const std::vector<std::string> parse = {"Parse() (app+0x30)", "Serve() (app+0x20)"};
  detector.report_progress("hog", start, 5, start + 60'000'000, Sampled(60'000'000, spin));
  ASSERT_TRUE(detector.in_progress().has_value());
  EXPECT_EQ(detector.in_progress()->duration_ns, 60'000'000);
  detector.report_progress("hog", start, 5, start + 120'000'000, Sampled(120'000'000, spin));
  detector.report_progress("hog", start, 5, start + 180'000'000, Sampled(180'000'000, parse));
  detector.report_progress("hog", start, 5, start + 240'000'000, Sampled(240'000'000, {}));
  EXPECT_EQ(detector.stall_count(), 0u) << "a stall counts when it ends";
  EXPECT_TRUE(detector.recent().empty());
  detector.report("hog", 250'000'000, 5, start + 250'000'000);

  ASSERT_EQ(streamed.size(), 5u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(streamed[i].in_progress);
    EXPECT_EQ(streamed[i].sequence, 1u);
    EXPECT_EQ(streamed[i].task, "hog");
    EXPECT_EQ(streamed[i].tasks_run_before, 5u);
    EXPECT_EQ(streamed[i].duration_ns, static_cast<int64_t>(i + 1) * 60'000'000);
    EXPECT_EQ(streamed[i].samples.size(), i + 1);
  }
  const StallReport& end = streamed[4];
  EXPECT_FALSE(end.in_progress);
  EXPECT_EQ(end.sequence, 1u);
  EXPECT_EQ(end.duration_ns, 250'000'000);
  ASSERT_EQ(end.samples.size(), 4u);
  EXPECT_EQ(end.samples[0].frames, spin);
  EXPECT_EQ(end.samples[2].frames, parse);
  EXPECT_EQ(end.samples[2].running_ns, 180'000'000);
  EXPECT_FALSE(detector.in_progress().has_value());
  ASSERT_EQ(detector.recent().size(), 1u);
  EXPECT_EQ(detector.recent()[0].samples.size(), 4u);

  std::vector<std::string> lines = printed.get();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0],
            "brrr: loop 7: <hog> has been running for 0.060 seconds (after 5 tasks), stack:\n"
            "    #0 Spin() (app+0x10)\n"
            "    #1 Serve() (app+0x20)");
  EXPECT_EQ(lines[1], "brrr: loop 7: <hog> has been running for 0.120 seconds (after 5 tasks), same stack as at 0.060 seconds");
  EXPECT_EQ(lines[2],
            "brrr: loop 7: <hog> has been running for 0.180 seconds (after 5 tasks), stack:\n"
            "    #0 Parse() (app+0x30)\n"
            "    #1 Serve() (app+0x20)");
  EXPECT_EQ(lines[3], "brrr: loop 7: <hog> has been running for 0.240 seconds (after 5 tasks), stack not sampled "
                      "(the loop thread did not answer in time)");
  EXPECT_EQ(lines[4], "brrr: loop 7: executing <hog> took 0.250 seconds (after 5 tasks); stack sampled 4 times, "
                      "last in Parse() (app+0x30)");
}

StallSample SampledWithTimes(int64_t running_ns, int64_t cpu_ns, int64_t run_queue_wait_ns) {
  return StallSample{.running_ns = running_ns,
                     .frames = {"Hog() (app+0x10)"},
                     .thread = {.cpu_ns = cpu_ns, .run_queue_wait_ns = run_queue_wait_ns}};
}

// With the loop thread's times in its samples and at its end, a stall says how the thread spent
// it since the first sample: on a core, waiting for one, or neither (asleep or blocked); the
// first sample alone has no span to tell.
TEST(StallProgressTest, ThreadTimesSplitTheStallSinceItsFirstSample) {
  Lines printed;
  StallDetector detector(3, 50'000'000, printed.sink());
  std::vector<StallReport> streamed;
  detector.subscribe([&](const StallReport& r) { streamed.push_back(r); });
  const int64_t start = 1'000'000'000;
  // Totals of the thread when sampled: 500 ms of CPU and 20 ms waited so far, before the task.
  detector.report_progress("hog", start, 9, start + 60'000'000, SampledWithTimes(60'000'000, 500'000'000, 20'000'000));
  // 60 ms later: 30 on a core, 20 waiting, so 10 asleep or blocked.
  detector.report_progress("hog", start, 9, start + 120'000'000,
                           SampledWithTimes(120'000'000, 530'000'000, 40'000'000));
  // The end, 80 ms after the first sample: 50 on a core, 20 waiting, 10 neither.
  detector.report("hog", 140'000'000, 9, start + 140'000'000, {.cpu_ns = 550'000'000, .run_queue_wait_ns = 40'000'000});
  ASSERT_EQ(streamed.size(), 3u);
  EXPECT_FALSE(SplitSinceFirstSample(streamed[0]).has_value()) << "one sample: no span yet";
  std::optional<StallTimeSplit> so_far = SplitSinceFirstSample(streamed[1]);
  ASSERT_TRUE(so_far.has_value());
  EXPECT_EQ(so_far->span_ns, 60'000'000);
  EXPECT_EQ(so_far->on_core_ns, 30'000'000);
  EXPECT_EQ(so_far->waiting_for_core_ns, 20'000'000);
  EXPECT_EQ(so_far->off_core_ns, 10'000'000);
  std::optional<StallTimeSplit> whole = SplitSinceFirstSample(streamed[2]);
  ASSERT_TRUE(whole.has_value());
  EXPECT_EQ(whole->span_ns, 80'000'000);
  EXPECT_EQ(whole->on_core_ns, 50'000'000);
  EXPECT_EQ(whole->waiting_for_core_ns, 20'000'000);
  EXPECT_EQ(whole->off_core_ns, 10'000'000);
  std::vector<std::string> lines = printed.get();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].substr(0, lines[0].find('\n')),
            "brrr: loop 3: <hog> has been running for 0.060 seconds (after 9 tasks), stack:");
  EXPECT_EQ(lines[1],
            "brrr: loop 3: <hog> has been running for 0.120 seconds (after 9 tasks; since the first sample 0.060 s: "
            "0.030 on a core, 0.020 waiting for one, 0.010 asleep or blocked), same stack as at 0.060 seconds");
  EXPECT_EQ(lines[2],
            "brrr: loop 3: executing <hog> took 0.140 seconds (after 9 tasks; since the first sample 0.080 s: 0.050 on "
            "a core, 0.020 waiting for one, 0.010 asleep or blocked); stack sampled 2 times, last in Hog() (app+0x10)");
}

// The parts stay within the span and add up to it (the thread's clocks and the loop's are read a
// moment apart), and times not read leave the split out.
TEST(StallProgressTest, TheSplitsPartsStayWithinItsSpanAndUnreadTimesLeaveItOut) {
  StallReport r;
  r.duration_ns = 100'000'000;
  r.samples = {SampledWithTimes(50'000'000, 1'000, 0)};
  r.thread_at_end = {.cpu_ns = 1'000 + 60'000'000, .run_queue_wait_ns = 0};  // 60 ms of CPU in 50
  std::optional<StallTimeSplit> split = SplitSinceFirstSample(r);
  ASSERT_TRUE(split.has_value());
  EXPECT_EQ(split->span_ns, 50'000'000);
  EXPECT_EQ(split->on_core_ns, 50'000'000);
  EXPECT_EQ(split->waiting_for_core_ns, 0);
  EXPECT_EQ(split->off_core_ns, 0);
  r.thread_at_end = {.cpu_ns = 1'000 + 40'000'000, .run_queue_wait_ns = 30'000'000};  // 70 ms in 50
  split = SplitSinceFirstSample(r);
  ASSERT_TRUE(split.has_value());
  EXPECT_EQ(split->on_core_ns, 40'000'000);
  EXPECT_EQ(split->waiting_for_core_ns, 10'000'000) << "the parts add up to the span";
  EXPECT_EQ(split->off_core_ns, 0);
  r.thread_at_end = {.cpu_ns = 0, .run_queue_wait_ns = 0};  // below the sample's: not negative
  split = SplitSinceFirstSample(r);
  ASSERT_TRUE(split.has_value());
  EXPECT_EQ(split->on_core_ns, 0);
  EXPECT_EQ(split->off_core_ns, 50'000'000);
  r.thread_at_end = {};  // not read
  EXPECT_FALSE(SplitSinceFirstSample(r).has_value());
  r.thread_at_end = {.cpu_ns = 2'000, .run_queue_wait_ns = 0};
  r.samples[0].thread = {};
  EXPECT_FALSE(SplitSinceFirstSample(r).has_value());
  r.samples.clear();
  EXPECT_FALSE(SplitSinceFirstSample(r).has_value());
  EXPECT_EQ(FormatStall(r), "brrr: loop 0: executing <> took 0.100 seconds (after 0 tasks)");
}

// Samples of a stall in progress share the print budget with stalls: those not printed are
// counted in the next printed line, once, and the count starts again from there.
TEST(StallProgressTest, SamplesNotPrintedAreNamedOnceOnTheNextPrintedLine) {
  Lines printed;
  StallDetector detector(7, 50'000'000, printed.sink());
  const int64_t start = 1'000'000'000;
  auto sample_at = [&](int64_t running_ns) {
    detector.report_progress("hog", start, 5, start + running_ns, Sampled(running_ns, {"Hog() (app+0x10)"}));
  };
  // 12 samples within a microsecond: a burst of 10 is printed, 2 are not.
  for (int64_t i = 0; i < 12; ++i) sample_at(60'000'000 + i);
  ASSERT_EQ(printed.get().size(), 10u);
  // A second later the budget has refilled.
  sample_at(1'100'000'000);
  sample_at(1'200'000'000);
  std::vector<std::string> lines = printed.get();
  ASSERT_EQ(lines.size(), 12u);
  EXPECT_NE(lines[10].find(" [0 more stalls and 2 stall samples not printed]"), std::string::npos) << lines[10];
  EXPECT_EQ(lines[11].find("not printed"), std::string::npos) << "counted again: " << lines[11];
  EXPECT_EQ(detector.stall_count(), 0u) << "samples are not stalls";
}

TEST(StallProgressTest, TheEndLineNamesTheInnermostFrameOutsideTheCAndCppRuntime) {
  Lines printed;
  StallDetector detector(0, 50'000'000, printed.sink());
  detector.report_progress("nap", 1000, 0, 1000 + 60'000'000,
                           Sampled(60'000'000, {"clock_nanosleep (libc.so.6+0xcf545)", "?? (libc.so.6+0xd3e52)",
                                                "std::this_thread::sleep_for<>() (app+0x26c82)",
                                                "Nap() (app+0x1c567)"}));
  detector.report("nap", 70'000'000, 0, 1000 + 70'000'000);
  EXPECT_EQ(printed.get().back(),
            "brrr: loop 0: executing <nap> took 0.070 seconds (after 0 tasks); stack sampled 1 time, last in "
            "Nap() (app+0x1c567)");
}

TEST(StallProgressTest, ALongStallKeepsItsFirstAndNewestSamples) {
  StallDetector detector(0, 10, [](const std::string&) {});
  for (int64_t i = 1; i <= 20; ++i) detector.report_progress("long", 100, 0, 100 + i * 10, Sampled(i * 10, {"F()"}));
  std::optional<StallReport> running = detector.in_progress();
  ASSERT_TRUE(running.has_value());
  ASSERT_EQ(running->samples.size(), StallDetector::kSamplesKept);
  EXPECT_EQ(running->samples[0].running_ns, 10);
  for (size_t i = 1; i < StallDetector::kSamplesKept; ++i) {
    EXPECT_EQ(running->samples[i].running_ns, static_cast<int64_t>(20 - StallDetector::kSamplesKept + 1 + i) * 10);
  }
}

TEST(StallProgressTest, SamplesOfATaskThatEndedWithoutAStallAreDroppedAndLateOnesIgnored) {
  StallDetector detector(0, 50, [](const std::string&) {});
  std::vector<StallReport> streamed;
  detector.subscribe([&](const StallReport& r) { streamed.push_back(r); });
  // Sampled, then the threshold rose past its duration: the loop reported no end.
  detector.report_progress("was-long", 100, 0, 200, Sampled(100, {"A()"}));
  detector.progress_ended(100);
  EXPECT_FALSE(detector.in_progress().has_value());
  // A later stall does not inherit those samples.
  detector.report("next", 60, 1, 1060);
  ASSERT_EQ(detector.recent().size(), 1u);
  EXPECT_TRUE(detector.recent()[0].samples.empty());
  // A sample that arrives after its stall's end was reported is not streamed.
  detector.report_progress("next", 1000, 1, 1070, Sampled(70, {"B()"}));
  EXPECT_FALSE(detector.in_progress().has_value());
  ASSERT_EQ(streamed.size(), 2u);
  EXPECT_FALSE(streamed.back().in_progress);
}

// A stall's end carries the samples of its own task only: one that ends while another task's
// samples are still held (the watchdog has not yet dropped them) gets none of them, and they
// stay with their task.
TEST(StallProgressTest, AStallsEndNeverTakesTheSamplesOfAnotherTask) {
  StallDetector detector(0, 50, [](const std::string&) {});
  detector.report_progress("was-long", 100, 0, 200, Sampled(100, {"A()"}));
  detector.report("next", 60, 1, 1060);  // started at 1000, not 100
  ASSERT_EQ(detector.recent().size(), 1u);
  EXPECT_TRUE(detector.recent()[0].samples.empty()) << "the end of <next> took the samples of <was-long>";
  ASSERT_TRUE(detector.in_progress().has_value());
  EXPECT_EQ(detector.in_progress()->task, "was-long");
  EXPECT_EQ(detector.in_progress()->samples.size(), 1u);
}

// Every task's duration lands in the task_duration histogram: those under 1 us in bucket 0
// (counted from tasks_run), the others in their own buckets, all of them in the sum.
TEST_F(StallDetectorTest, EveryTaskDurationIsInTheHistogram) {
  Lines printed;
  auto loop = NewLoop(milliseconds(50), printed.sink());
  ASSERT_NE(loop, nullptr);
  for (int i = 0; i < 4; ++i) loop->call_soon([] {});
  loop->call_soon(Hold(milliseconds(30)), "thirty");
  loop->call_soon(Hold(milliseconds(2)), "two");
  loop->call_soon(Hold(std::chrono::microseconds(3)), "three-us");
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();

  LoopStats s = loop->stats();
  const LogHistogram::Snapshot& d = s.task_duration;
  EXPECT_EQ(s.tasks_run, 8u);
  EXPECT_EQ(d.total, 8u);
  EXPECT_EQ(d.counts[LogHistogram::bucket_of(30'000'000)], 1u);
  EXPECT_EQ(d.counts[LogHistogram::bucket_of(2'000'000)], 1u);
  EXPECT_EQ(d.counts[LogHistogram::bucket_of(3'000)], 1u);
  EXPECT_EQ(d.counts[0], 5u) << "the five tasks that took no virtual time";
  EXPECT_EQ(d.sum_ns, 32'003'000);
  EXPECT_EQ(d.max_ns, 30'000'000);
  EXPECT_EQ(d.percentile(0.99), 30'000'000);
}

}  // namespace
}  // namespace brrr
