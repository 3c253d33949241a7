// The stall watchdog on real threads and the monotonic clock: a task that blocks past the
// threshold is sampled while it still runs, and the sample names the function it blocks in;
// a loop that is idle or only briefly busy is never signalled.
//
// No assertion depends on how long anything took: a blocking task blocks until the watchdog
// has reported what the test waits for (bounded by kGiveUp), and the quiet loop runs until
// the watchdog has looked at it a few times.
#include "runtime/stall_watchdog.h"

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/event_loop.h"
#include "tests/testing/backends.h"
#include "tests/testing/process.h"

// Functions a stack must name: outside any namespace, never inlined, each with a name no
// other frame has.
[[gnu::noinline]] void WatchdogTestSpinUntil(const std::atomic<int>& samples, int wanted, int64_t give_up_ns) {
  while (samples.load() < wanted && brrr::MonotonicNanos() < give_up_ns) {
  }
  asm volatile("" ::: "memory");  // keeps the frame: no tail call out of it
}

[[gnu::noinline]] void WatchdogTestOtherSpinUntil(const std::atomic<int>& samples, int wanted, int64_t give_up_ns) {
  while (samples.load() < wanted && brrr::MonotonicNanos() < give_up_ns) {
  }
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void WatchdogTestSleepUntil(const std::atomic<int>& samples, int wanted, int64_t give_up_ns) {
  while (samples.load() < wanted && brrr::MonotonicNanos() < give_up_ns) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  asm volatile("" ::: "memory");
}

namespace brrr {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kGiveUpNs = 30'000'000'000;

bool Names(const StallSample& sample, const std::string& function) {
  for (const std::string& frame : sample.frames) {
    if (frame.find(function) != std::string::npos) return true;
  }
  return false;
}

std::string Show(const StallSample& sample) {
  std::string out;
  for (const std::string& frame : sample.frames) out += "\n  " + frame;
  return out.empty() ? "\n  (no frames)" : out;
}

// A loop running on its own thread, with what its stall detector reports and prints.
class WatchedLoop {
 public:
  // `watchdog`: EventLoopOptions::stall_watchdog.
  explicit WatchedLoop(Duration threshold, bool watchdog = true) {
    EventLoopOptions o;
    o.stall_threshold = threshold;
    o.stall_watchdog = watchdog;
    o.stall_sink = [this](const std::string& text) {
      std::lock_guard<std::mutex> lock(mu_);
      printed_.push_back(text);
    };
    loop_ = testing::NewLoop("epoll", o);
    if (loop_ == nullptr) return;
    loop_->stall_detector().subscribe([this](const StallReport& r) {
      std::lock_guard<std::mutex> lock(mu_);
      reports_.push_back(r);
      if (r.in_progress && !r.samples.empty() && !r.samples.back().frames.empty()) answered_.fetch_add(1);
    });
    thread_ = std::thread([this] { loop_->run_forever(); });
  }
  ~WatchedLoop() {
    if (loop_ == nullptr) return;
    loop_->call_soon_threadsafe([this] { loop_->stop(); });
    thread_.join();
  }

  EventLoop* loop() { return loop_.get(); }
  // In-progress samples with frames reported so far.
  const std::atomic<int>& answered() const { return answered_; }
  std::vector<StallReport> reports() {
    std::lock_guard<std::mutex> lock(mu_);
    return reports_;
  }
  std::vector<std::string> printed() {
    std::lock_guard<std::mutex> lock(mu_);
    return printed_;
  }
  // Runs fn on the loop and waits (bounded) until it has returned.
  void RunAndWait(std::function<void()> fn) {
    std::atomic<bool> done{false};
    loop_->call_soon_threadsafe([&] { fn(); done.store(true); }, "watchdog-test:block");
    const int64_t give_up = MonotonicNanos() + kGiveUpNs + 5'000'000'000;
    while (!done.load() && MonotonicNanos() < give_up) std::this_thread::sleep_for(milliseconds(1));
    ASSERT_TRUE(done.load());
  }
  // Waits (bounded) until at least n reports were printed; returns them.
  std::vector<std::string> PrintedAtLeast(size_t n) {
    const int64_t give_up = MonotonicNanos() + kGiveUpNs;
    while (printed().size() < n && MonotonicNanos() < give_up) std::this_thread::sleep_for(milliseconds(1));
    return printed();
  }
  // The report at the blocking task's end (it follows the task's return on the loop thread).
  std::optional<StallReport> Finished() {
    const int64_t give_up = MonotonicNanos() + kGiveUpNs;
    while (MonotonicNanos() < give_up) {
      for (const StallReport& r : reports()) {
        if (!r.in_progress) return r;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
    return std::nullopt;
  }

 private:
  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<StallReport> reports_;
  std::vector<std::string> printed_;
  std::atomic<int> answered_{0};
};

TEST(StallWatchdogTest, ASpinningTaskIsSampledWhileItRunsAndItsFunctionIsNamed) {
  WatchedLoop watched(milliseconds(50));
  ASSERT_NE(watched.loop(), nullptr);
  watched.RunAndWait([&] { WatchdogTestSpinUntil(watched.answered(), 1, MonotonicNanos() + kGiveUpNs); });

  std::vector<StallReport> reports = watched.reports();
  ASSERT_FALSE(reports.empty());
  const StallReport& sampled = reports.front();
  ASSERT_TRUE(sampled.in_progress);
  EXPECT_EQ(sampled.task, "watchdog-test:block");
  EXPECT_EQ(sampled.sequence, 1u);
  ASSERT_EQ(sampled.samples.size(), 1u);
  EXPECT_TRUE(Names(sampled.samples[0], "WatchdogTestSpinUntil")) << Show(sampled.samples[0]);
  // The stack goes down through the loop that ran the task.
  EXPECT_TRUE(Names(sampled.samples[0], "brrr::EventLoop::run_task")) << Show(sampled.samples[0]);

  // The report at the end carries the samples, with the same sequence.
  std::optional<StallReport> finished = watched.Finished();
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->sequence, 1u);
  ASSERT_GE(finished->samples.size(), 1u);
  EXPECT_TRUE(Names(finished->samples[0], "WatchdogTestSpinUntil")) << Show(finished->samples[0]);
  EXPECT_EQ(watched.loop()->stall_detector().stall_count(), 1u);

  // Printed: the sample with its stack, then the end with where it was last seen (subscribers
  // hear of the end before it is printed).
  std::vector<std::string> printed = watched.PrintedAtLeast(2);
  for (const std::string& text : printed) std::printf("%s\n", text.c_str());
  ASSERT_GE(printed.size(), 2u);
  EXPECT_NE(printed.front().find("<watchdog-test:block> has been running for"), std::string::npos) << printed.front();
  EXPECT_NE(printed.front().find("WatchdogTestSpinUntil"), std::string::npos) << printed.front();
  EXPECT_NE(printed.back().find("executing <watchdog-test:block> took"), std::string::npos) << printed.back();
  EXPECT_NE(printed.back().find("; stack sampled "), std::string::npos) << printed.back();
}

TEST(StallWatchdogTest, ATaskThatSleepsInAFunctionOfItsOwnNamesThatFunction) {
  WatchedLoop watched(milliseconds(50));
  ASSERT_NE(watched.loop(), nullptr);
  watched.RunAndWait([&] { WatchdogTestSleepUntil(watched.answered(), 1, MonotonicNanos() + kGiveUpNs); });
  std::vector<StallReport> reports = watched.reports();
  ASSERT_FALSE(reports.empty());
  ASSERT_TRUE(reports.front().in_progress);
  ASSERT_EQ(reports.front().samples.size(), 1u);
  EXPECT_TRUE(Names(reports.front().samples[0], "WatchdogTestSleepUntil")) << Show(reports.front().samples[0]);
  for (const std::string& text : watched.printed()) std::printf("%s\n", text.c_str());
}

// The end of a stall sampled three times says how the loop thread spent it since the first
// sample: a task that sleeps was longer asleep than on a core, one that spins mostly on a core
// (or waiting for one, on a machine busy with other tests), each part within the span. (The
// sleeper wakes every 2 ms, and on a loaded machine its waits for a core after each wake-up
// can add up to more than its sleep: seen, 87 ms of them against 27 ms asleep.)
TEST(StallWatchdogTest, AStallsEndSaysWhetherTheThreadSleptOrRan) {
  struct stat info {};
  if (::stat("/proc/thread-self/schedstat", &info) != 0) GTEST_SKIP() << "this kernel keeps no schedstats";
  for (bool sleeps : {true, false}) {
    WatchedLoop watched(milliseconds(30));
    ASSERT_NE(watched.loop(), nullptr);
    watched.RunAndWait([&] {
      const int64_t give_up = MonotonicNanos() + kGiveUpNs;
      if (sleeps) {
        WatchdogTestSleepUntil(watched.answered(), 3, give_up);
      } else {
        WatchdogTestSpinUntil(watched.answered(), 3, give_up);
      }
    });
    std::optional<StallReport> finished = watched.Finished();
    ASSERT_TRUE(finished.has_value());
    ASSERT_GE(finished->samples.size(), 3u);
    std::optional<StallTimeSplit> split = SplitSinceFirstSample(*finished);
    ASSERT_TRUE(split.has_value()) << "the thread's times were not read";
    EXPECT_EQ(split->span_ns, finished->duration_ns - finished->samples[0].running_ns);
    EXPECT_EQ(split->on_core_ns + split->waiting_for_core_ns + split->off_core_ns, split->span_ns);
    if (sleeps) {
      EXPECT_GT(split->off_core_ns, split->on_core_ns)
          << "a sleeping task, not asleep: " << split->on_core_ns << " ns on a core, " << split->waiting_for_core_ns
          << " ns waiting for one, " << split->off_core_ns << " ns off";
    } else {
      EXPECT_GT(split->on_core_ns + split->waiting_for_core_ns, split->off_core_ns) << "a spinning task, asleep";
    }
    std::vector<std::string> printed = watched.PrintedAtLeast(4);
    ASSERT_GE(printed.size(), 4u);
    EXPECT_NE(printed.back().find("; since the first sample "), std::string::npos) << printed.back();
  }
}

TEST(StallWatchdogTest, AStallThatGoesOnIsSampledAgainAndShowsWhereItMoved) {
  WatchedLoop watched(milliseconds(30));
  ASSERT_NE(watched.loop(), nullptr);
  watched.RunAndWait([&] {
    const int64_t give_up = MonotonicNanos() + kGiveUpNs;
    WatchdogTestSpinUntil(watched.answered(), 1, give_up);
    WatchdogTestOtherSpinUntil(watched.answered(), 2, give_up);
  });
  std::optional<StallReport> finished = watched.Finished();
  ASSERT_TRUE(finished.has_value());
  ASSERT_GE(finished->samples.size(), 2u);
  EXPECT_TRUE(Names(finished->samples[0], "WatchdogTestSpinUntil")) << Show(finished->samples[0]);
  EXPECT_TRUE(Names(finished->samples[1], "WatchdogTestOtherSpinUntil")) << Show(finished->samples[1]);
  EXPECT_LT(finished->samples[0].running_ns, finished->samples[1].running_ns);
  for (const StallReport& r : watched.reports()) {
    if (r.in_progress) {
      EXPECT_EQ(r.sequence, finished->sequence);
    }
  }
}

// A stall that was sampled while it ran ends as a stall, with the sequence its samples had,
// though the threshold was raised past its duration meanwhile. It was dropped: the samples'
// sequence never ended, and the next stall took it.
TEST(StallWatchdogTest, ASampledStallEndsThoughTheThresholdWasRaisedMeanwhile) {
  WatchedLoop watched(milliseconds(50));
  ASSERT_NE(watched.loop(), nullptr);
  StallDetector& detector = watched.loop()->stall_detector();
  watched.RunAndWait([&] {
    WatchdogTestSpinUntil(watched.answered(), 1, MonotonicNanos() + kGiveUpNs);
    detector.set_threshold_ns(60'000'000'000);
  });
  std::optional<StallReport> finished = watched.Finished();
  ASSERT_TRUE(finished.has_value()) << "the sampled stall never ended";
  EXPECT_EQ(finished->sequence, 1u);
  EXPECT_FALSE(finished->samples.empty());
  EXPECT_EQ(detector.stall_count(), 1u);
  EXPECT_FALSE(detector.in_progress().has_value());

  // The next stall has the next sequence, in its samples and at its end.
  detector.set_threshold_ns(50'000'000);
  watched.RunAndWait([&] { WatchdogTestSpinUntil(watched.answered(), 2, MonotonicNanos() + kGiveUpNs); });
  const int64_t give_up = MonotonicNanos() + kGiveUpNs;
  while (detector.stall_count() < 2 && MonotonicNanos() < give_up) std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(detector.stall_count(), 2u);
  for (const StallReport& r : watched.reports()) {  // the first stall's reports up to its end, then the second's
    EXPECT_EQ(r.sequence, r.detected_at_ns <= finished->detected_at_ns ? 1u : 2u)
        << (r.in_progress ? "a sample" : "an end") << " at " << r.detected_at_ns;
  }
}

// As above, but the task runs on for several of the old threshold's periods after the raise:
// the watchdog, looking again meanwhile, finds it below the new threshold; that is still the
// sampled stall, whose end comes.
TEST(StallWatchdogTest, ASampledStallEndsThoughItRanOnBelowARaisedThreshold) {
  WatchedLoop watched(milliseconds(50));
  ASSERT_NE(watched.loop(), nullptr);
  StallDetector& detector = watched.loop()->stall_detector();
  watched.RunAndWait([&] {
    WatchdogTestSpinUntil(watched.answered(), 1, MonotonicNanos() + kGiveUpNs);
    detector.set_threshold_ns(60'000'000'000);
    const int64_t until = MonotonicNanos() + 300'000'000;
    while (MonotonicNanos() < until) {
    }
  });
  std::optional<StallReport> finished = watched.Finished();
  ASSERT_TRUE(finished.has_value()) << "the sampled stall never ended";
  EXPECT_EQ(finished->sequence, 1u);
  EXPECT_GE(finished->duration_ns, 300'000'000);
  EXPECT_FALSE(finished->samples.empty());
  EXPECT_EQ(detector.stall_count(), 1u);
  EXPECT_FALSE(detector.in_progress().has_value());
}

TEST(StallWatchdogTest, ALoopThatIsIdleOrOnlyBrieflyBusyIsNeverSignalled) {
  // Half a second: a task of a millisecond would have to be held off the CPU that long.
  WatchedLoop watched(milliseconds(500));
  ASSERT_NE(watched.loop(), nullptr);
  auto watchdog = [&] { return watched.loop()->stall_watchdog(); };
  auto wait_for = [](const std::function<bool()>& condition) {
    const int64_t give_up = MonotonicNanos() + kGiveUpNs;
    while (!condition() && MonotonicNanos() < give_up) std::this_thread::sleep_for(milliseconds(1));
    return condition();
  };
  // Idle: the loop waits for I/O and the watchdog sleeps until it is busy again.
  ASSERT_TRUE(wait_for([&] { return watchdog() != nullptr && watchdog()->idle_sleeps() >= 1; }));

  // Briefly busy, all the time: a chain of tasks of a millisecond each keeps the loop inside
  // a task nearly always (it never waits) until the watchdog has looked at it three times.
  const uint64_t looks_before = watchdog()->looks();
  const int64_t chain_give_up = MonotonicNanos() + kGiveUpNs;
  std::atomic<bool> chain_done{false};
  std::function<void()> step = [&] {
    if (watchdog()->looks() >= looks_before + 3 || MonotonicNanos() > chain_give_up) {
      chain_done.store(true);
      return;
    }
    const int64_t until = MonotonicNanos() + 1'000'000;
    while (MonotonicNanos() < until) {
    }
    watched.loop()->call_soon(step, "watchdog-test:short");
  };
  watched.loop()->call_soon_threadsafe(step, "watchdog-test:short");
  ASSERT_TRUE(wait_for([&] { return chain_done.load(); }));
  // Idle again.
  const uint64_t idle_before = watchdog()->idle_sleeps();
  ASSERT_TRUE(wait_for([&] { return watchdog()->idle_sleeps() > idle_before; }));

  EXPECT_GE(watchdog()->looks(), looks_before + 3);
  EXPECT_EQ(watchdog()->samples(), 0u);
  EXPECT_EQ(watched.loop()->stall_detector().stall_count(), 0u);
  EXPECT_TRUE(watched.reports().empty());
  EXPECT_TRUE(watched.printed().empty());
}

// A threshold past the clock's range (Duration::max(): stalls never reported) leaves the
// watchdog asleep for its longest sleep (a second) while a task runs, not spinning on a
// wake-up time that overflowed into the past.
TEST(StallWatchdogTest, AThresholdOfDurationMaxKeepsTheWatchdogAsleep) {
  WatchedLoop watched(Duration::max());
  ASSERT_NE(watched.loop(), nullptr);
  const StallWatchdog* watchdog = watched.loop()->stall_watchdog();
  ASSERT_NE(watchdog, nullptr);
  uint64_t looks_before = 0;
  uint64_t looks_during = 0;
  watched.RunAndWait([&] {
    looks_before = watchdog->looks();
    const int64_t until = MonotonicNanos() + 100'000'000;
    while (MonotonicNanos() < until) {
    }
    looks_during = watchdog->looks() - looks_before;
  });
  EXPECT_LE(looks_during, 2u) << "the watchdog looked " << looks_during << " times in 100 ms";
  EXPECT_EQ(watchdog->samples(), 0u);
}

// A threshold lowered while a task runs (brrrctl stalls --threshold on a live server) reaches a
// task already running: the watchdog, which looked at the task under the old, hour-long
// threshold, does not sleep until that one would be crossed but looks again (every second at
// most) and samples the task under the new one.
TEST(StallWatchdogTest, AThresholdLoweredWhileATaskRunsIsSeenBeforeTheOldOneIsCrossed) {
  WatchedLoop watched(std::chrono::hours(1));
  ASSERT_NE(watched.loop(), nullptr);
  const StallWatchdog* watchdog = watched.loop()->stall_watchdog();
  ASSERT_NE(watchdog, nullptr);
  StallDetector& detector = watched.loop()->stall_detector();
  uint64_t looks_while_running = 0;
  watched.RunAndWait([&] {
    const int64_t give_up = MonotonicNanos() + kGiveUpNs;
    // Until the watchdog has looked at this task twice more: it has seen the hour-long
    // threshold and gone back to sleep.
    const uint64_t looks_at_start = watchdog->looks();
    while (watchdog->looks() < looks_at_start + 2 && MonotonicNanos() < give_up) {
    }
    looks_while_running = watchdog->looks() - looks_at_start;
    detector.set_threshold_ns(50'000'000);
    WatchdogTestSpinUntil(watched.answered(), 1, give_up);
  });
  EXPECT_GE(looks_while_running, 2u) << "the watchdog slept on through the task";
  EXPECT_GE(watched.answered().load(), 1) << "the lowered threshold was never applied to the running task";
}

// EventLoopOptions::stall_watchdog = false turns the watchdog off: the loop has none, and a
// task that blocks far past the threshold is still reported when it ends, with no stack
// sampled and no report while it ran.
TEST(StallWatchdogTest, OffTheLoopHasNoWatchdogAndAStallHasNoSamples) {
  static constexpr milliseconds kThreshold(20);
  WatchedLoop watched(kThreshold, /*watchdog=*/false);
  ASSERT_NE(watched.loop(), nullptr);
  // Ten thresholds and more: a watchdog would have sampled it (the tests above wait for one).
  watched.RunAndWait([] {
    const int64_t until = MonotonicNanos() + 10 * std::chrono::nanoseconds(kThreshold).count();
    while (MonotonicNanos() < until) {
    }
  });
  std::optional<StallReport> finished = watched.Finished();
  ASSERT_TRUE(finished.has_value()) << "the stall detector still reports a stall at its end";
  EXPECT_EQ(finished->task, "watchdog-test:block");
  EXPECT_TRUE(finished->samples.empty()) << Show(finished->samples.front());
  EXPECT_EQ(watched.loop()->stall_watchdog(), nullptr) << "the loop runs a watchdog all the same";
  for (const StallReport& r : watched.reports()) EXPECT_FALSE(r.in_progress) << "a report while the task ran";
  EXPECT_EQ(watched.loop()->stall_detector().stall_count(), 1u);
  std::vector<std::string> printed = watched.PrintedAtLeast(1);
  ASSERT_EQ(printed.size(), 1u);
  EXPECT_NE(printed[0].find("executing <watchdog-test:block> took"), std::string::npos) << printed[0];
  EXPECT_EQ(printed[0].find("stack sampled"), std::string::npos) << printed[0];
}

// Runs a loop with a watchdog on the calling thread until a task that spins has been sampled
// with frames (or the give-up time); returns the samples with frames.
int SampledWhileSpinningOnThisThread() {
  EventLoopOptions o;
  o.stall_threshold = milliseconds(50);
  o.stall_watchdog = true;
  o.stall_sink = [](const std::string&) {};
  std::unique_ptr<EventLoop> loop = testing::NewLoop("epoll", o);
  if (loop == nullptr) return -1;
  std::atomic<int> answered{0};
  loop->stall_detector().subscribe([&](const StallReport& r) {
    if (r.in_progress && !r.samples.empty() && !r.samples.back().frames.empty()) answered.fetch_add(1);
  });
  loop->call_soon([&] {
    WatchdogTestSpinUntil(answered, 1, MonotonicNanos() + 10'000'000'000);
    loop->stop();
  });
  loop->run_forever();
  return answered.load();
}

// A process forked from a loop's thread runs a loop of its own on its one thread (as a server
// that forks its workers does), and a stall there is still sampled: the signal goes to the
// child's thread, not to the id of the thread it was forked from (which is not in the child).
TEST(StallWatchdogTest, ALoopInAChildForkedFromALoopThreadIsSampled) {
  ASSERT_GE(SampledWhileSpinningOnThisThread(), 1);  // this thread's id is now known
  EXPECT_EQ(testing::RunInForkedChild([] { return SampledWhileSpinningOnThisThread() >= 1 ? 0 : 1; },
                                      std::chrono::seconds(30)),
            "")
      << "the child's stall was not sampled";
}

}  // namespace
}  // namespace brrr
