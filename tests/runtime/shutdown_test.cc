// Destroying a loop with coroutine tasks still suspended: frames are destroyed, their awaits
// release what they hold, futures of those tasks become cancelled, nothing leaks (ASan). What
// the destructors of dropped work do to the dying loop is dropped in turn, or refused.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/blocking_pool.h"
#include "runtime/internal/loop_internals.h"
#include "tests/runtime/coroutine_test_util.h"
#include "tests/runtime/dropped_work.h"

namespace brrr {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

using testing::RunsOnDestruction;
using testing::WaitUntil;

TEST(ShutdownTest, UnfinishedTasksAreDestroyedWithTheLoop) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  auto owned = std::make_shared<int>(0);
  std::weak_ptr<int> watch = owned;
  Promise<int> never(**loop);
  auto sleeper = [](std::shared_ptr<int> keep) -> Task<> {
    co_await sleep(seconds(3600));
    (void)keep;
  };
  auto waiter = [&]() -> Task<int> { co_return co_await never.get_future(); };
  auto nested = [&]() -> Task<> { co_await waiter(); };
  Future<> a = create_task(**loop, sleeper(owned));
  Future<> b = create_task(**loop, nested());
  Future<> not_started = create_task(**loop, sleeper(owned));
  owned.reset();
  (*loop)->run_once(std::chrono::milliseconds(0));  // a and b start and suspend
  EXPECT_EQ((*loop)->stats().live_tasks, 3u);
  loop->reset();
  EXPECT_TRUE(watch.expired()) << "the frames (and what they captured) are gone";
  EXPECT_TRUE(a.cancelled());
  EXPECT_TRUE(b.cancelled());
  EXPECT_TRUE(not_started.cancelled());
}

// What run_blocking submits once the loop is being destroyed, here from the capture of a pool
// job the destructor drops: the pool has shut down and drops it unrun, starting no thread. (The
// loop's pool was reset, not shut down: the call found a null pointer and made a new pool, with
// a thread, during the loop's destruction.)
TEST(ShutdownTest, PoolWorkSubmittedAsTheLoopDropsItsPoolJobsIsDroppedUnrun) {
  auto created = EventLoop::Create({.blocking_threads = 1});
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<EventLoop> loop = *std::move(created);
  EventLoop* l = loop.get();
  struct Shared {
    std::atomic<bool> started{false};
    std::atomic<bool> released{false};
    std::atomic<bool> late_job_ran{false};
  };
  auto shared = std::make_shared<Shared>();
  BlockingPool& pool = LoopInternals::blocking_pool(*loop);
  ASSERT_TRUE(pool.submit([shared] {
                    shared->started = true;
                    WaitUntil([&] { return shared->released.load(); });
                  })
                  .ok());
  ASSERT_TRUE(WaitUntil([&] { return shared->started.load(); }));
  std::weak_ptr<int> late_job;
  size_t threads_after_late_submit = 99;
  absl::Status late_submit = absl::UnknownError("not submitted");
  auto submits_as_dropped = std::make_shared<RunsOnDestruction>([&, l, shared] {
    auto token = std::make_shared<int>(0);
    late_job = token;
    BlockingPool& reached = LoopInternals::blocking_pool(*l);  // as run_blocking reaches it
    late_submit = reached.submit([shared, token] { shared->late_job_ran = true; });
    threads_after_late_submit = reached.threads();
    shared->released = true;  // the running job may finish now
  });
  ASSERT_TRUE(pool.submit([submits_as_dropped] {}).ok());  // queued behind the running one
  submits_as_dropped.reset();
  loop.reset();
  EXPECT_TRUE(late_submit.ok()) << late_submit;
  EXPECT_EQ(threads_after_late_submit, 0u) << "no pool thread starts while the loop is destroyed";
  EXPECT_TRUE(late_job.expired()) << "the late job was dropped";
  EXPECT_FALSE(shared->late_job_ran.load());
}

// The same when the loop never made its pool: what first reaches it during destruction finds a
// pool that refuses, with no thread.
TEST(ShutdownTest, APoolFirstReachedAsTheLoopIsDestroyedStartsNoThread) {
  auto created = EventLoop::Create();
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<EventLoop> loop = *std::move(created);
  EventLoop* l = loop.get();
  auto ran = std::make_shared<std::atomic<bool>>(false);
  std::weak_ptr<int> late_job;
  size_t threads_after_late_submit = 99;
  l->call_soon([r = std::make_shared<RunsOnDestruction>([&, l, ran] {
                  auto token = std::make_shared<int>(0);
                  late_job = token;
                  BlockingPool& reached = LoopInternals::blocking_pool(*l);
                  (void)reached.submit([ran, token] { *ran = true; });
                  threads_after_late_submit = reached.threads();
                })] {});
  loop.reset();
  EXPECT_EQ(threads_after_late_submit, 0u);
  EXPECT_TRUE(late_job.expired());
  EXPECT_FALSE(ran->load());
}

// call_soon, call_later and create_task from the destructors of what the loop drops (a timer's
// capture, a ready callback's, a suspended task's frame local): what they schedule is dropped
// in turn, unrun, and a task made then is destroyed unfinished, its future cancelled. (Timers
// and ready work were cleared once each, after the tasks: a task made from their destructors
// was never destroyed, its future left pending, its frame leaked; a timer scheduled as the
// ready queue was cleared was destroyed with the loop's members, half of them gone.)
TEST(ShutdownTest, WhatTheDestructorsOfDroppedWorkScheduleIsDroppedInTurn) {
  auto created = EventLoop::Create();
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<EventLoop> loop = *std::move(created);
  EventLoop* l = loop.get();
  auto ran = std::make_shared<int>(0);
  std::vector<Future<>> made;
  std::vector<std::weak_ptr<int>> scheduled;
  int destructors_run = 0;
  auto sleeper = [](std::shared_ptr<int> keep) -> Task<> {
    co_await sleep(hours(1));
    (void)keep;
  };
  auto schedule_more = [&] {
    ++destructors_run;
    auto token = std::make_shared<int>(0);
    scheduled.push_back(token);
    l->call_soon([token, ran] { ++*ran; });
    l->call_later(milliseconds(0), [token, ran] { ++*ran; });
    l->call_later(hours(1), [token, ran] { ++*ran; });
    made.push_back(create_task(*l, sleeper(token)));
  };
  l->call_later(hours(2), [r = std::make_shared<RunsOnDestruction>(schedule_more)] {});
  auto holds_a_local = [&]() -> Task<> {
    RunsOnDestruction local(schedule_more);
    co_await sleep(hours(3));
  };
  Future<> suspended = create_task(*l, holds_a_local());
  l->run_once(milliseconds(0));  // the task starts and suspends
  l->call_soon([r = std::make_shared<RunsOnDestruction>(schedule_more)] {});
  loop.reset();
  EXPECT_EQ(destructors_run, 3);
  EXPECT_EQ(*ran, 0) << "nothing scheduled during the destruction ran";
  EXPECT_TRUE(suspended.cancelled());
  ASSERT_EQ(made.size(), 3u);
  for (size_t i = 0; i < made.size(); ++i)
    EXPECT_TRUE(made[i].cancelled()) << "task " << i << ": " << made[i].ToString();
  for (size_t i = 0; i < scheduled.size(); ++i) EXPECT_TRUE(scheduled[i].expired()) << "what was scheduled from " << i;
}

}  // namespace
}  // namespace brrr
