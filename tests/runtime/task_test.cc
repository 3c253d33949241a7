// Task<T>, create_task and run_until_complete.
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/runtime/coroutine_test_util.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using TaskTest = testing::CoroutineTest;

Task<int> Constant(int v) { co_return v; }

Task<int> Sum(int a, int b) {
  int x = co_await Constant(a);
  int y = co_await Constant(b);
  co_return x + y;
}

TEST_F(TaskTest, RunUntilCompleteReturnsTheResult) { EXPECT_EQ(Run(Sum(2, 3)), 5); }

TEST_F(TaskTest, VoidTask) {
  bool ran = false;
  auto t = [&]() -> Task<> {
    ran = true;
    co_return;
  };
  Run(t());
  EXPECT_TRUE(ran);
}

TEST_F(TaskTest, ATaskDoesNotRunUntilAwaited) {
  std::vector<std::string> log;
  auto child = [&]() -> Task<> {
    log.push_back("child");
    co_return;
  };
  auto parent = [&]() -> Task<> {
    Task<> c = child();
    log.push_back("created");
    co_await sleep(milliseconds(1));
    log.push_back("awaiting");
    co_await std::move(c);
    log.push_back("done");
  };
  Run(parent());
  EXPECT_EQ(log, (std::vector<std::string>{"created", "awaiting", "child", "done"}));
}

// create_task.h: a task keeps running if its future is dropped.
TEST_F(TaskTest, ATaskWhoseFutureIsDroppedRunsToItsEnd) {
  bool finished = false;
  auto worker = [&]() -> Task<> {
    co_await sleep(milliseconds(1));
    finished = true;
  };
  auto main_task = [&]() -> Task<> {
    { Future<> dropped = create_task(loop(), worker()); }
    co_await sleep(milliseconds(5));
  };
  Run(main_task());
  EXPECT_TRUE(finished);
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

// sleep.h: a sleep of less than zero (Duration::min() too) is a yield, as a sleep of zero: no
// timer, and what was queued before it runs first.
TEST_F(TaskTest, ASleepOfLessThanZeroIsAYieldThatTakesNoTimer) {
  for (Duration delay : {Duration(-milliseconds(5)), Duration::min()}) {
    std::vector<std::string> log;
    size_t timers_while_yielded = 99;
    auto yielder = [&]() -> Task<> {
      loop().call_soon([&] {
        log.push_back("queued before");
        timers_while_yielded = loop().stats().pending_timers;
      });
      co_await sleep(delay);
      log.push_back("resumed");
    };
    Run(yielder());
    EXPECT_EQ(log, (std::vector<std::string>{"queued before", "resumed"})) << delay.count();
    EXPECT_EQ(timers_while_yielded, 0u) << delay.count();
  }
}

TEST_F(TaskTest, ADroppedTaskNeverRuns) {
  bool ran = false;
  auto child = [&]() -> Task<> {
    ran = true;
    co_return;
  };
  { Task<> never = child(); }
  EXPECT_FALSE(ran);
}

TEST_F(TaskTest, ExceptionsPropagateToTheAwaiter) {
  auto failing = []() -> Task<int> {
    throw std::runtime_error("inner");
    co_return 0;
  };
  auto outer = [&]() -> Task<std::string> {
    try {
      co_await failing();
    } catch (const std::runtime_error& e) {
      co_return std::string("caught ") + e.what();
    }
    co_return "not caught";
  };
  EXPECT_EQ(Run(outer()), "caught inner");
}

TEST_F(TaskTest, RunUntilCompleteRethrows) {
  auto failing = []() -> Task<> {
    throw std::invalid_argument("bad");
    co_return;
  };
  EXPECT_THROW(Run(failing()), std::invalid_argument);
}

TEST_F(TaskTest, MoveOnlyResults) {
  auto make = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(9); };
  auto outer = [&]() -> Task<int> {
    std::unique_ptr<int> p = co_await make();
    Future<std::unique_ptr<int>> f = create_task(make());
    std::unique_ptr<int> q = co_await f;
    co_return *p + *q;
  };
  EXPECT_EQ(Run(outer()), 18);
}

// ASan's and TSan's instrumentation prevents the tail call that keeps these in constant stack
// (see runtime/task.h); everywhere else they must not overflow an 8 MiB stack.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BRRR_SKIP_UNDER_STACK_INSTRUMENTATION() \
  GTEST_SKIP() << "ASan/TSan instrumentation prevents g++'s tail call for symmetric transfer"
#else
#define BRRR_SKIP_UNDER_STACK_INSTRUMENTATION() (void)0
#endif

Task<int> Depth(int n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await Depth(n - 1);
}

TEST_F(TaskTest, DeepAwaitChainsRunInConstantStack) {
  BRRR_SKIP_UNDER_STACK_INSTRUMENTATION();
  EXPECT_EQ(Run(Depth(200000)), 200000);
}

TEST_F(TaskTest, ALoopAwaitingChildrenThatFinishAtOnceRunsInConstantStack) {
  BRRR_SKIP_UNDER_STACK_INSTRUMENTATION();
  auto loop_task = []() -> Task<int64_t> {
    int64_t sum = 0;
    for (int i = 0; i < 2'000'000; ++i) sum += co_await Constant(1);
    co_return sum;
  };
  EXPECT_EQ(Run(loop_task()), 2'000'000);
}

TEST_F(TaskTest, ModerateAwaitChainsWorkInEveryBuild) { EXPECT_EQ(Run(Depth(1000)), 1000); }

TEST_F(TaskTest, CreateTaskStartsOnTheNextIterationAndRunsConcurrently) {
  std::vector<std::string> log;
  auto worker = [&](std::string name) -> Task<> {
    log.push_back(name + " start");
    co_await sleep(milliseconds(1));
    log.push_back(name + " end");
  };
  auto main_task = [&]() -> Task<> {
    Future<> a = create_task(worker("a"));
    Future<> b = create_task(worker("b"));
    log.push_back("created");
    EXPECT_FALSE(a.done());
    co_await a;
    co_await b;
  };
  Run(main_task());
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log[0], "created");
  EXPECT_EQ(log[1], "a start");
  EXPECT_EQ(log[2], "b start");
}

TEST_F(TaskTest, LiveTasksAreCounted) {
  Promise<> gate(loop());
  auto waiter = [&]() -> Task<> { co_await gate.get_future(); };
  Future<> a = create_task(loop(), waiter());
  Future<> b = create_task(loop(), waiter());
  EXPECT_EQ(loop().stats().live_tasks, 2u);
  loop().call_soon([&] { gate.set_result(); });
  b.add_done_callback([&] { loop().stop(); });
  loop().run_forever();
  EXPECT_TRUE(a.done());
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

TEST_F(TaskTest, CreateTaskWithoutALoopIsAClearError) {
  try {
    (void)create_task(Constant(1));
    FAIL() << "expected an exception";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a running event loop"), std::string::npos);
  }
}

// A Task with no frame (moved from: here, already handed to create_task) is a clear error to
// await or to start, not a call through a null coroutine handle.
TEST_F(TaskTest, AwaitingOrStartingATaskWithNoCoroutineIsAClearError) {
  auto main_task = [&]() -> Task<std::string> {
    Task<int> task = Constant(1);
    Future<int> started = create_task(std::move(task));
    std::string errors;
    try {
      co_await std::move(task);
    } catch (const std::logic_error& e) {
      errors += e.what();
    }
    try {
      (void)create_task(std::move(task));
    } catch (const std::logic_error& e) {
      errors += e.what();
    }
    EXPECT_EQ(co_await started, 1);
    co_return errors;
  };
  std::string errors = Run(main_task());
  EXPECT_NE(errors.find("awaiting a Task that holds no coroutine"), std::string::npos) << errors;
  EXPECT_NE(errors.find("create_task of a Task that holds no coroutine"), std::string::npos) << errors;
}

// A task that awaits its own future (create_task's), or a child coroutine of it that does, is a
// clear error at that await (asyncio: "Task cannot await on itself"): it waited for ever for its
// own end. In virtual time, so that the hour-long timer that stops a hang fires at once.
TEST_F(TaskTest, ATaskAwaitingItsOwnFutureIsAClearError) {
  Future<int> self;
  auto awaits_itself = [&]() -> Task<int> { co_return co_await self + 1; };
  auto waits_for_itself = [&]() -> Task<int> {
    co_await self.wait();
    co_return 1;
  };
  auto child_awaits_its_task = [&]() -> Task<int> {
    auto child = [&]() -> Task<int> { co_return co_await self; };
    co_return co_await child();
  };
  std::vector<std::function<Task<int>()>> bodies = {awaits_itself, waits_for_itself, child_awaits_its_task};
  for (size_t i = 0; i < bodies.size(); ++i) {
    self = create_task(loop(), bodies[i]());
    TimerHandle give_up = loop().call_later(std::chrono::hours(1), [&] { loop().stop(); });
    loop().run_until_complete(self);
    give_up.cancel();
    ASSERT_TRUE(self.done()) << "body " << i << " waited for itself (an hour of virtual time)";
    try {
      self.result();
      ADD_FAILURE() << "body " << i << " expected an exception";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("a task cannot await its own future"), std::string::npos)
          << "body " << i << ": " << e.what();
    }
  }
}

// A coroutine awaiting the Task it runs in (a Task already started, awaited a second time) is a
// clear error too, instead of resuming a frame that is running.
TEST_F(TaskTest, ACoroutineAwaitingTheTaskItRunsInIsAClearError) {
  Task<int>* self = nullptr;
  auto awaits_itself = [&]() -> Task<int> { co_return co_await std::move(*self) + 1; };
  Task<int> task = awaits_itself();
  self = &task;
  auto parent = [&]() -> Task<std::string> {
    try {
      co_await std::move(task);
    } catch (const std::logic_error& e) {
      co_return e.what();
    }
    co_return "no error";
  };
  std::string error = Run(parent());
  EXPECT_NE(error.find("awaiting a Task that is already running"), std::string::npos) << error;
}

TEST_F(TaskTest, RunUntilCompleteThrowsWhenTheLoopStopsBeforeTheTaskFinishes) {
  auto sleeper = []() -> Task<int> {
    co_await sleep(std::chrono::hours(1));
    co_return 1;
  };
  loop().call_soon([&] { loop().stop(); });
  try {
    Run(sleeper());
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("stopped before the task finished"), std::string::npos) << e.what();
  }
}

// The first task, left pending when its run stopped early, finishes during the next run:
// that run goes on until its own task has finished.
TEST_F(TaskTest, ATaskLeftByARunThatStoppedEarlyDoesNotStopTheNextRun) {
  auto sleeps_then_returns = [](Duration d, int v) -> Task<int> {
    co_await sleep(d);
    co_return v;
  };
  loop().call_soon([&] { loop().stop(); });
  EXPECT_THROW(Run(sleeps_then_returns(milliseconds(10), 1)), std::runtime_error);
  EXPECT_EQ(Run(sleeps_then_returns(milliseconds(20), 2)), 2);
}

// A stop() made before the run ends it after one iteration, as asyncio's: a task that finishes
// in its first step gives its result, one that does not the error. (The run returned before any
// iteration: every such run threw, its task never started.)
TEST_F(TaskTest, AStopBeforeRunUntilCompleteLetsTheTaskTakeOneStep) {
  loop().stop();
  EXPECT_EQ(Run(Sum(2, 3)), 5);
  auto sleeps_then_returns = [](Duration d, int v) -> Task<int> {
    co_await sleep(d);
    co_return v;
  };
  loop().stop();
  EXPECT_THROW(Run(sleeps_then_returns(milliseconds(10), 1)), std::runtime_error);
}

// A stop() made during a run_once() is spent by it: it does not end a later run_until_complete
// before its task has finished (it did, and the run threw).
TEST_F(TaskTest, AStopSpentByRunOnceDoesNotEndALaterRunUntilComplete) {
  loop().call_soon([&] { loop().stop(); });
  loop().run_once(Duration::zero());
  auto sleeps_then_returns = [](Duration d, int v) -> Task<int> {
    co_await sleep(d);
    co_return v;
  };
  EXPECT_EQ(Run(sleeps_then_returns(milliseconds(10), 7)), 7);
}

// A sleep past the clock's range never ends, even in virtual time that jumps to the next
// timer whenever the loop is idle; cancelling it still ends it.
TEST_F(TaskTest, ASleepOfDurationMaxNeverEnds) {
  auto sleeper = []() -> Task<> { co_await sleep(Duration::max()); };
  Future<> f = create_task(loop(), sleeper());
  loop().run_once(Duration::zero());
  loop().run_once(Duration::zero());
  EXPECT_FALSE(f.done()) << "the sleep ended";
  f.cancel();
  for (int i = 0; i < 10 && !f.done(); ++i) loop().run_once(Duration::zero());
  EXPECT_TRUE(f.cancelled());
}

TEST_F(TaskTest, SleepParksOnlyTheCallingTask) {
  std::vector<std::string> log;
  auto sleeper = [&]() -> Task<> {
    log.push_back("sleeper: before");
    co_await sleep(milliseconds(20));
    log.push_back("sleeper: after");
  };
  auto busy = [&]() -> Task<> {
    for (int i = 0; i < 3; ++i) {
      log.push_back("busy " + std::to_string(i));
      co_await sleep(Duration::zero());  // yield
    }
  };
  auto both = [&]() -> Task<> { co_await gather(sleeper(), busy()); };
  TimePoint start = loop().now();
  Run(both());
  EXPECT_EQ(loop().now() - start, milliseconds(20)) << "virtual time: the sleep, exactly";
  EXPECT_EQ(log, (std::vector<std::string>{"sleeper: before", "busy 0", "busy 1", "busy 2",
                                            "sleeper: after"}));
}

// A sleep of zero is a yield through the ready queue: what was queued before it runs first,
// the waiter a promise has just woken among them (as after asyncio.sleep(0)).
TEST_F(TaskTest, SleepZeroLetsWhatWasQueuedBeforeItRunFirst) {
  std::vector<std::string> log;
  Promise<int> promise(loop());
  auto waiter = [&]() -> Task<> {
    int value = co_await promise.get_future();
    log.push_back("waiter got " + std::to_string(value));
  };
  auto yielder = [&]() -> Task<> {
    loop().call_soon([&] { log.push_back("queued before the yield"); });
    promise.set_result(7);
    co_await sleep(Duration::zero());
    log.push_back("yielder resumed");
  };
  auto both = [&]() -> Task<> { co_await gather(waiter(), yielder()); };
  Run(both());
  EXPECT_EQ(log, (std::vector<std::string>{"queued before the yield", "waiter got 7", "yielder resumed"}));
}

// A cancel that comes while a task is yielded in a sleep of zero is thrown there when it
// resumes, and the task resumes once only.
TEST_F(TaskTest, ACancelDuringASleepOfZeroThrowsWhenTheTaskResumes) {
  int resumed = 0;
  bool cancelled = false;
  auto yielder = [&]() -> Task<> {
    try {
      co_await sleep(Duration::zero());
      ++resumed;
    } catch (const CancelledError&) {
      ++resumed;
      cancelled = true;
    }
  };
  Future<> task = create_task(loop(), yielder());
  // The task starts in the next iteration and yields; this runs just after, while its resume
  // waits in the queue.
  loop().call_soon([&] { EXPECT_TRUE(task.cancel()); });
  task.add_done_callback([&] { loop().stop(); });
  loop().run_forever();
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(resumed, 1);
}

}  // namespace
}  // namespace brrr
