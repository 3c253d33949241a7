// Stall detection: every task is measured; long ones are counted, reported (rate-limited),
// streamed to subscribers, and visible from another thread while they are still running.
#include "runtime/stall_detector.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/event_loop.h"
#include "tests/testing/backends.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;

void BusyWait(Duration d) {
  TimePoint until = Clock::now() + d;
  while (Clock::now() < until) {
  }
}

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

EventLoopOptions WithThreshold(Duration threshold, StallDetector::Sink sink) {
  EventLoopOptions o;
  o.stall_threshold = threshold;
  o.stall_sink = std::move(sink);
  o.loop_id = 3;
  return o;
}

TEST(StallDetectorTest, ReportsALongTaskByNameWithDurationAndTaskCount) {
  Lines printed;
  auto loop = testing::NewLoop("epoll", WithThreshold(milliseconds(50), printed.sink()));
  ASSERT_NE(loop, nullptr);
  std::vector<StallReport> streamed;
  loop->stall_detector().subscribe([&](const StallReport& r) { streamed.push_back(r); });
  for (int i = 0; i < 4; ++i) loop->call_soon([] {});
  loop->call_soon([] { BusyWait(milliseconds(80)); }, "busy-wait");
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();

  LoopStats s = loop->stats();
  EXPECT_EQ(s.stalls, 1u);
  EXPECT_GE(s.longest_task_ns, 80'000'000);
  EXPECT_EQ(s.longest_task, "busy-wait");
  ASSERT_EQ(streamed.size(), 1u);
  EXPECT_EQ(streamed[0].task, "busy-wait");
  EXPECT_EQ(streamed[0].loop_id, 3u);
  EXPECT_EQ(streamed[0].tasks_run_before, 4u);
  EXPECT_GE(streamed[0].duration_ns, 80'000'000);
  EXPECT_EQ(streamed[0].sequence, 1u);
  std::vector<std::string> lines = printed.get();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("brrr: loop 3: executing <busy-wait> took 0.", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(" seconds (after 4 tasks)"), std::string::npos) << lines[0];
  ASSERT_EQ(loop->stall_detector().recent().size(), 1u);
}

TEST(StallDetectorTest, UnnamedTaskIsReportedByItsCallSite) {
  Lines printed;
  auto loop = testing::NewLoop("epoll", WithThreshold(milliseconds(20), printed.sink()));
  ASSERT_NE(loop, nullptr);
  loop->call_soon([] { BusyWait(milliseconds(30)); });  // the line below names this one
  const int line = __LINE__ - 1;
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  ASSERT_EQ(loop->stall_detector().recent().size(), 1u);
  std::string task = loop->stall_detector().recent()[0].task;
  EXPECT_NE(task.find("stall_detector_test.cc:" + std::to_string(line)), std::string::npos) << task;
}

TEST(StallDetectorTest, QuickTasksAreNotStalls) {
  Lines printed;
  // A threshold no quick task gets near, even on a loaded machine.
  auto loop = testing::NewLoop("epoll", WithThreshold(std::chrono::seconds(10), printed.sink()));
  ASSERT_NE(loop, nullptr);
  for (int i = 0; i < 1000; ++i) loop->call_soon([] {});
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(loop->stats().stalls, 0u);
  EXPECT_TRUE(printed.get().empty());
  EXPECT_EQ(loop->stats().tasks_run, 1001u);
}

TEST(StallDetectorTest, ThresholdChangesLive) {
  Lines printed;
  auto loop = testing::NewLoop("epoll", WithThreshold(std::chrono::seconds(10), printed.sink()));
  ASSERT_NE(loop, nullptr);
  loop->call_soon([] { BusyWait(milliseconds(15)); }, "before");
  loop->call_soon([&] { loop->stall_detector().set_threshold_ns(10'000'000); });
  loop->call_soon([] { BusyWait(milliseconds(15)); }, "after");
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  ASSERT_EQ(loop->stats().stalls, 1u);
  EXPECT_EQ(loop->stall_detector().recent()[0].task, "after");
  EXPECT_EQ(loop->stats().stall_threshold_ns, 10'000'000);
}

TEST(StallDetectorTest, PrintingIsRateLimitedButCountingIsNot) {
  Lines printed;
  auto loop = testing::NewLoop("epoll", WithThreshold(milliseconds(1), printed.sink()));
  ASSERT_NE(loop, nullptr);
  int streamed = 0;
  loop->stall_detector().subscribe([&](const StallReport&) { ++streamed; });
  // 30 stalls of ~2 ms: 60 ms in all, far less than the 2 s the bucket would need to refill.
  for (int i = 0; i < 30; ++i) loop->call_soon([] { BusyWait(milliseconds(2)); }, "burst");
  loop->call_soon([&] { loop->stop(); });
  loop->run_forever();
  EXPECT_EQ(loop->stats().stalls, 30u);
  EXPECT_EQ(streamed, 30);
  std::vector<std::string> lines = printed.get();
  EXPECT_GE(lines.size(), 10u);
  EXPECT_LT(lines.size(), 30u);
  // The suppressed ones are mentioned by the next printed line.
  loop->call_later(std::chrono::milliseconds(300), [] { BusyWait(milliseconds(2)); }, "later");
  loop->call_later(std::chrono::milliseconds(301), [&] { loop->stop(); });
  loop->run_forever();
  lines = printed.get();
  EXPECT_NE(lines.back().find("more stalls not printed]"), std::string::npos) << lines.back();
}

TEST(StallDetectorTest, UnsubscribedListenersHearNothingMore) {
  StallDetector d(0, 1, [](const std::string&) {});
  int heard = 0;
  uint64_t id = d.subscribe([&](const StallReport&) { ++heard; });
  d.report(TaskLabel("x"), 5, 0, 1);
  d.unsubscribe(id);
  d.report(TaskLabel("x"), 5, 1, 2);
  EXPECT_EQ(heard, 1);
  EXPECT_EQ(d.stall_count(), 2u);
}

TEST(StallDetectorTest, RecentKeepsTheLastReportsOnly) {
  StallDetector d(0, 1, [](const std::string&) {});
  for (int i = 0; i < 100; ++i) d.report(TaskLabel("x"), 5, static_cast<uint64_t>(i), i);
  std::vector<StallReport> recent = d.recent();
  ASSERT_EQ(recent.size(), StallDetector::kRecentCapacity);
  EXPECT_EQ(recent.back().tasks_run_before, 99u);
  EXPECT_EQ(recent.back().sequence, 100u);
}

// Another thread sees a stall while it is still happening: which task, and for how long.
TEST(StallDetectorTest, AnotherThreadSeesTheStallInProgress) {
  Lines printed;
  auto loop = testing::NewLoop("epoll", WithThreshold(milliseconds(100), printed.sink()));
  ASSERT_NE(loop, nullptr);
  std::atomic<bool> observed{false};
  LoopStats seen;
  loop->call_soon(
      [&] {
        // Hold the loop until the observer has seen us at least 20 ms in. Bounded at 30 s.
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
      if (s.current_task == "hog" && s.current_task_running_ns >= 20'000'000) {
        seen = s;
        break;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
    observed = true;
  });
  loop->run_forever();
  observer.join();
  EXPECT_EQ(seen.current_task, "hog");
  EXPECT_GE(seen.current_task_running_ns, 20'000'000);
  EXPECT_EQ(loop->stats().current_task_running_ns, 0) << "nothing runs once the loop stopped";
}

TEST(StallDetectorTest, TimersAreMeasuredToo) {
  Lines printed;
  auto loop = testing::NewLoop("epoll", WithThreshold(milliseconds(20), printed.sink()));
  ASSERT_NE(loop, nullptr);
  loop->call_later(milliseconds(1), [] { BusyWait(milliseconds(30)); }, "slow-timer");
  loop->call_later(milliseconds(2), [&] { loop->stop(); });
  loop->run_forever();
  ASSERT_EQ(loop->stats().stalls, 1u);
  EXPECT_EQ(loop->stall_detector().recent()[0].task, "slow-timer");
  // The stop timer was due during the stall: it ran late, and the lateness shows that.
  EXPECT_GE(loop->stats().timer_lateness.max_ns, 20'000'000);
}

}  // namespace
}  // namespace brrr
