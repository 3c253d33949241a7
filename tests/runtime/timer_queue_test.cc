#include "runtime/timer_queue.h"

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace brrr {
namespace {

// Pops everything due by `now` and runs it.
int RunDue(TimerQueue& q, int64_t now) {
  int n = 0;
  DueTimer due;
  while (q.pop_due(now, &due)) {
    due.fn();
    ++n;
  }
  return n;
}

TEST(TimerQueueTest, FiresInDeadlineOrder) {
  TimerQueue q;
  std::vector<int> order;
  q.schedule(30, [&] { order.push_back(30); }, "t");
  q.schedule(10, [&] { order.push_back(10); }, "t");
  q.schedule(20, [&] { order.push_back(20); }, "t");
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.next_deadline(), 10);
  EXPECT_EQ(RunDue(q, 100), 3);
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.next_deadline(), std::nullopt);
}

TEST(TimerQueueTest, EqualDeadlinesFireInTheOrderScheduled) {
  TimerQueue q;
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) q.schedule(5, [&order, i] { order.push_back(i); }, "t");
  RunDue(q, 5);
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(TimerQueueTest, OnlyDueTimersPop) {
  TimerQueue q;
  int fired = 0;
  q.schedule(10, [&] { ++fired; }, "t");
  q.schedule(20, [&] { ++fired; }, "t");
  EXPECT_EQ(RunDue(q, 9), 0);
  EXPECT_EQ(RunDue(q, 10), 1);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(RunDue(q, 25), 1);
  EXPECT_EQ(fired, 2);
}

// may_have_due is the loop's cheap look before its timer phase: never false while pop_due
// would find a timer, and false whenever the earliest entry (a cancelled one included) is not
// due yet.
// A due timer scheduled after `scheduled_before` with an earlier deadline than the others
// (in the past) does not hide the older ones, and is back in the queue once pop_due says no.
TEST(TimerQueueTest, ATooNewTimerDoesNotHideOlderDueTimers) {
  TimerQueue q;
  std::vector<std::string> order;
  q.schedule(5, [&] { order.push_back("A"); }, "t");
  q.schedule(5, [&] { order.push_back("B"); }, "t");
  const uint64_t before = q.next_sequence();
  q.schedule(1, [&] { order.push_back("C"); }, "t");
  DueTimer due;
  while (q.pop_due(10, &due, before)) due.fn();
  EXPECT_EQ(order, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.next_deadline(), 1);
  EXPECT_TRUE(q.may_have_due(10));
  EXPECT_EQ(RunDue(q, 10), 1);
  EXPECT_EQ(order, (std::vector<std::string>{"A", "B", "C"}));
}

TEST(TimerQueueTest, MayHaveDueNeverMissesADueTimer) {
  TimerQueue q;
  EXPECT_FALSE(q.may_have_due(1000));
  TimerId early = q.schedule(10, [] {}, "t");
  q.schedule(20, [] {}, "t");
  EXPECT_FALSE(q.may_have_due(9));
  EXPECT_TRUE(q.may_have_due(10));
  ASSERT_TRUE(q.cancel(early));
  // The cancelled entry may still head the heap: a look says "maybe", pop_due finds none.
  DueTimer due;
  if (q.may_have_due(15)) {
    EXPECT_FALSE(q.pop_due(15, &due));
  }
  EXPECT_FALSE(q.may_have_due(15)) << "pop_due dropped the cancelled entry: nothing is due by 15";
  EXPECT_TRUE(q.may_have_due(20));
  EXPECT_EQ(RunDue(q, 20), 1);
  EXPECT_FALSE(q.may_have_due(1000));
}

TEST(TimerQueueTest, CancelledTimerNeverRunsAndIsReleasedAtOnce) {
  TimerQueue q;
  auto owned = std::make_shared<int>(1);
  std::weak_ptr<int> watch = owned;
  bool ran = false;
  TimerId id = q.schedule(10, [o = std::move(owned), &ran] { ran = true; }, "t");
  EXPECT_TRUE(q.is_pending(id));
  EXPECT_TRUE(q.cancel(id));
  EXPECT_TRUE(watch.expired()) << "the callback's captures must be released on cancel";
  EXPECT_FALSE(q.is_pending(id));
  EXPECT_FALSE(q.cancel(id)) << "second cancel is a no-op";
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(RunDue(q, 100), 0);
  EXPECT_FALSE(ran);
}

TEST(TimerQueueTest, StaleIdDoesNotCancelATimerThatReusedItsSlot) {
  TimerQueue q;
  TimerId first = q.schedule(10, [] {}, "t");
  ASSERT_TRUE(q.cancel(first));
  bool ran = false;
  TimerId second = q.schedule(10, [&] { ran = true; }, "t");
  EXPECT_EQ(first.slot, second.slot) << "the freed slot is reused";
  EXPECT_FALSE(q.cancel(first));
  EXPECT_TRUE(q.is_pending(second));
  RunDue(q, 10);
  EXPECT_TRUE(ran);
}

TEST(TimerQueueTest, CannotCancelATimerThatAlreadyRan) {
  TimerQueue q;
  TimerId id = q.schedule(1, [] {}, "t");
  RunDue(q, 1);
  EXPECT_FALSE(q.cancel(id));
}

TEST(TimerQueueTest, ManyCancellationsKeepOrderAndCounts) {
  TimerQueue q;
  std::vector<TimerId> ids;
  std::vector<int64_t> fired;
  for (int64_t i = 0; i < 10000; ++i) {
    ids.push_back(q.schedule(10000 - i, [&fired, i] { fired.push_back(10000 - i); }, "t"));
  }
  // Cancel every timer whose deadline is odd: enough tombstones to force sweeps.
  for (int64_t i = 0; i < 10000; ++i) {
    if ((10000 - i) % 2 == 1) {
      EXPECT_TRUE(q.cancel(ids[i]));
    }
  }
  EXPECT_EQ(q.size(), 5000u);
  RunDue(q, 20000);
  ASSERT_EQ(fired.size(), 5000u);
  for (size_t i = 0; i < fired.size(); ++i) EXPECT_EQ(fired[i], static_cast<int64_t>(2 * (i + 1)));
}

TEST(TimerQueueTest, ClearDropsEverythingWithoutRunning) {
  TimerQueue q;
  bool ran = false;
  q.schedule(1, [&] { ran = true; }, "t");
  q.clear();
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(RunDue(q, 100), 0);
  EXPECT_FALSE(ran);
}

// Runs `on_destroy` when the callback that holds it is destroyed (not when it is moved).
class DestroyGuard {
 public:
  explicit DestroyGuard(std::function<void()> on_destroy) : on_destroy_(std::move(on_destroy)) {}
  DestroyGuard(DestroyGuard&& other) noexcept : on_destroy_(std::exchange(other.on_destroy_, nullptr)) {}
  DestroyGuard& operator=(DestroyGuard&&) = delete;
  ~DestroyGuard() {
    if (on_destroy_) on_destroy_();
  }

 private:
  std::function<void()> on_destroy_;
};

// Each callback's destructor cancels another timer, half the queue away. Enough timers that
// the cancels would sweep the heap's tombstones (more than 1,024 entries, over half of them
// dead) while clear() walks it.
TEST(TimerQueueTest, ClearSurvivesCallbacksWhoseDestructorsCancelTimers) {
  constexpr int kTimers = 2100;
  TimerQueue q;
  int ran = 0;
  int destroyed = 0;
  std::vector<TimerId> ids(kTimers);
  for (int i = 0; i < kTimers; ++i) {
    DestroyGuard guard([&q, &ids, &destroyed, i] {
      ++destroyed;
      q.cancel(ids[(i + kTimers / 2) % kTimers]);
    });
    ids[i] = q.schedule(1000 + i, [&ran, g = std::move(guard)] { ++ran; }, "t");
  }
  q.clear();
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(destroyed, kTimers);
  EXPECT_EQ(RunDue(q, 100), 0);
  EXPECT_EQ(ran, 0);
  for (TimerId id : ids) EXPECT_FALSE(q.is_pending(id));
  // The queue works on.
  q.schedule(5, [&ran] { ++ran; }, "t");
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(RunDue(q, 100), 1);
  EXPECT_EQ(ran, 1);
}

// A callback whose destructor schedules a timer, which grows the slot table the cancel is
// working in (one slot, full: the new timer needs a second).
TEST(TimerQueueTest, CancelSurvivesACallbackWhoseDestructorSchedulesATimer) {
  TimerQueue q;
  int ran = 0;
  TimerId scheduled_by_destructor;
  DestroyGuard guard([&] { scheduled_by_destructor = q.schedule(7, [&ran] { ran += 10; }, "from-destructor"); });
  TimerId first = q.schedule(5, [&ran, g = std::move(guard)] { ++ran; }, "first");
  EXPECT_TRUE(q.cancel(first));
  EXPECT_FALSE(q.is_pending(first));
  EXPECT_TRUE(q.is_pending(scheduled_by_destructor));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(RunDue(q, 100), 1);
  EXPECT_EQ(ran, 10);
  EXPECT_EQ(q.size(), 0u);
}

// clear() with a callback whose destructor schedules a timer: that timer is pending after it.
TEST(TimerQueueTest, ClearKeepsATimerScheduledByACallbacksDestructor) {
  TimerQueue q;
  int ran = 0;
  DestroyGuard guard([&] { q.schedule(7, [&ran] { ran += 10; }, "from-destructor"); });
  q.schedule(5, [&ran, g = std::move(guard)] { ++ran; }, "first");
  q.clear();
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(RunDue(q, 100), 1);
  EXPECT_EQ(ran, 10);
}

TEST(TimerQueueTest, KeepsTheLabel) {
  TimerQueue q;
  q.schedule(1, [] {}, "my-timer");
  DueTimer due;
  ASSERT_TRUE(q.pop_due(1, &due));
  EXPECT_EQ(due.label.ToString(), "my-timer");
  EXPECT_EQ(due.deadline_ns, 1);
}

}  // namespace
}  // namespace brrr
