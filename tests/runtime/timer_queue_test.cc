#include "runtime/timer_queue.h"

#include <string>
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
