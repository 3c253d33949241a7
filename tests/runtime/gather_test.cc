// gather: concurrent start, results in argument order, failure cancels the rest.
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/runtime/coroutine_test_util.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using GatherTest = testing::CoroutineTest;

TEST_F(GatherTest, AllStartBeforeAnyFinishesAndResultsKeepArgumentOrder) {
  std::vector<std::string> log;
  auto op = [&](int id, int ms) -> Task<int> {
    log.push_back("start " + std::to_string(id));
    co_await sleep(milliseconds(ms));
    log.push_back("end " + std::to_string(id));
    co_return id;
  };
  auto run = [&]() -> Task<std::tuple<int, int, int>> { co_return co_await gather(op(1, 15), op(2, 1), op(3, 8)); };
  auto [a, b, c] = Run(run());
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(c, 3);
  ASSERT_EQ(log.size(), 6u);
  EXPECT_EQ(log[0], "start 1");
  EXPECT_EQ(log[1], "start 2");
  EXPECT_EQ(log[2], "start 3");
}

TEST_F(GatherTest, MixedTypesAndVoid) {
  auto number = []() -> Task<int> { co_return 4; };
  auto text = []() -> Task<std::string> { co_return "four"; };
  auto nothing = []() -> Task<> { co_return; };
  auto run = [&]() -> Task<std::string> {
    auto [n, t, v] = co_await gather(number(), text(), nothing());
    static_assert(std::is_same_v<decltype(v), std::monostate>);
    co_return std::to_string(n) + t;
  };
  EXPECT_EQ(Run(run()), "4four");
}

TEST_F(GatherTest, VectorForm) {
  auto square = [](int i) -> Task<int> {
    co_await sleep(milliseconds(10 - i));
    co_return i * i;
  };
  auto run = [&]() -> Task<std::vector<int>> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 10; ++i) tasks.push_back(square(i));
    co_return co_await gather(std::move(tasks));
  };
  std::vector<int> expected;
  for (int i = 0; i < 10; ++i) expected.push_back(i * i);
  EXPECT_EQ(Run(run()), expected);
}

TEST_F(GatherTest, EmptyVector) {
  auto run = [&]() -> Task<size_t> { co_return (co_await gather(std::vector<Task<int>>{})).size(); };
  EXPECT_EQ(Run(run()), 0u);
}

TEST_F(GatherTest, OneFailureCancelsTheOthersWaitsForThemAndRethrows) {
  std::vector<std::string> log;
  auto slow = [&]() -> Task<int> {
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      log.push_back("slow cancelled");
      throw;
    }
    co_return 1;
  };
  auto failing = [&]() -> Task<int> {
    co_await sleep(milliseconds(1));
    log.push_back("failing throws");
    throw std::runtime_error("first failure");
  };
  auto run = [&]() -> Task<std::string> {
    try {
      co_await gather(slow(), failing());
    } catch (const std::runtime_error& e) {
      log.push_back("gather rethrew");
      co_return e.what();
    }
    co_return "no exception";
  };
  EXPECT_EQ(Run(run()), "first failure");
  EXPECT_EQ(log, (std::vector<std::string>{"failing throws", "slow cancelled", "gather rethrew"}));
  EXPECT_EQ(loop().stats().live_tasks, 0u) << "no child outlives gather";
  EXPECT_EQ(loop().stats().pending_timers, 0u);
}

// The later of two failures is not the one rethrown, even when its child comes first in the
// arguments: the first child fails only while gather cancels it, after the second has failed.
TEST_F(GatherTest, TwoFailuresRethrowOnlyTheFirst) {
  auto fails_when_cancelled = []() -> Task<int> {
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      throw std::runtime_error("second failure");
    }
    co_return 1;
  };
  auto fails_first = []() -> Task<int> {
    co_await sleep(milliseconds(1));
    throw std::runtime_error("first failure");
  };
  auto run = [&]() -> Task<std::string> {
    try {
      co_await gather(fails_when_cancelled(), fails_first());
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no exception";
  };
  EXPECT_EQ(Run(run()), "first failure");
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

TEST_F(GatherTest, VectorFormFailureCancelsTheOthersWaitsForThemAndRethrows) {
  int cancelled = 0;
  auto slow = [&]() -> Task<int> {
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      ++cancelled;
      throw;
    }
    co_return 1;
  };
  auto failing = []() -> Task<int> {
    co_await sleep(milliseconds(1));
    throw std::runtime_error("vector failure");
  };
  auto run = [&]() -> Task<std::string> {
    std::vector<Task<int>> tasks;
    tasks.push_back(slow());
    tasks.push_back(slow());
    tasks.push_back(failing());
    try {
      co_await gather(std::move(tasks));
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no exception";
  };
  EXPECT_EQ(Run(run()), "vector failure");
  EXPECT_EQ(cancelled, 2) << "both other children were cancelled before gather returned";
  EXPECT_EQ(loop().stats().live_tasks, 0u);
  EXPECT_EQ(loop().stats().pending_timers, 0u);
}

// A child cancelled by someone else finishes with CancelledError (future.h), which gather
// handles as any failure: the others are cancelled and waited for, and the CancelledError is
// rethrown to a caller that was not itself cancelled, so it can go on.
TEST_F(GatherTest, AChildCancelledFromOutsideCancelsTheOthersAndIsRethrown) {
  std::vector<std::string> log;
  auto child = [&](std::string name) -> Task<int> {
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      log.push_back(name + " cancelled");
      throw;
    }
    co_return 1;
  };
  Future<int> victim;
  auto victim_task = [&]() -> Task<int> {
    victim = create_task(child("victim"));
    co_return co_await victim;
  };
  auto run = [&]() -> Task<std::string> {
    try {
      co_await gather(victim_task(), child("other"));
    } catch (const CancelledError&) {
      log.push_back("gather threw CancelledError");
    }
    co_await sleep(milliseconds(1));  // the caller was not cancelled: it can still await
    co_return "caller went on";
  };
  auto canceller = [&]() -> Task<> {
    co_await sleep(milliseconds(1));
    victim.cancel();
  };
  Future<> c = create_task(loop(), canceller());
  EXPECT_EQ(Run(run()), "caller went on");
  EXPECT_TRUE(c.done());
  EXPECT_EQ(log, (std::vector<std::string>{"victim cancelled", "other cancelled", "gather threw CancelledError"}));
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

TEST_F(GatherTest, CancellingGatherCancelsEveryChild) {
  int cancelled = 0;
  auto child = [&]() -> Task<> {
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      ++cancelled;
      throw;
    }
  };
  auto main_task = [&]() -> Task<> {
    auto g = [&]() -> Task<> { co_await gather(child(), child(), child()); };
    Future<> f = create_task(g());
    co_await sleep(milliseconds(1));
    f.cancel();
    co_await f.wait();
    EXPECT_TRUE(f.cancelled());
  };
  Run(main_task());
  EXPECT_EQ(cancelled, 3);
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

// Cancelled before it ever ran, gather makes no child: none starts. Cancelled in the iteration
// that made its children (before they first ran), it cancels every one (each takes its first
// step first, as with asyncio's TaskGroup: the cancel reaches gather when it resumes, after the
// children queued before it), none completes, and gather throws CancelledError once they have
// all finished.
TEST_F(GatherTest, CancellingGatherBeforeItOrItsChildrenRanCancelsEveryChild) {
  int started = 0;
  int cancelled = 0;
  int completed = 0;
  auto child = [&]() -> Task<int> {
    ++started;
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      ++cancelled;
      throw;
    }
    ++completed;
    co_return 1;
  };
  auto main_task = [&]() -> Task<> {
    auto g = [&]() -> Task<> { (void)co_await gather(child(), child()); };
    Future<> before_gather_ran = create_task(g());
    before_gather_ran.cancel();
    co_await before_gather_ran.wait();
    EXPECT_TRUE(before_gather_ran.cancelled());
    EXPECT_EQ(started, 0);
    Future<> before_children_ran = create_task(g());
    co_await sleep(Duration::zero());  // g takes its first step (making the children) before this resumes
    EXPECT_EQ(started, 0);
    before_children_ran.cancel();
    co_await before_children_ran.wait();
    EXPECT_TRUE(before_children_ran.cancelled());
  };
  Run(main_task());
  EXPECT_EQ(cancelled, started);
  EXPECT_EQ(completed, 0);
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

// A cancelled gather throws only once every child has finished its cleanup, here a 1 ms sleep
// after the cancellation reached it.
TEST_F(GatherTest, CancellingGatherWaitsForTheChildrensCleanup) {
  std::vector<std::string> log;
  auto child = [&]() -> Task<> {
    bool cancelled = false;
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {  // (no co_await inside a handler)
      co_await sleep(milliseconds(1));
      log.push_back("cleaned");
      throw CancelledError();
    }
  };
  auto g = [&]() -> Task<> {
    try {
      co_await gather(child(), child(), child());
    } catch (const CancelledError&) {
      log.push_back("gather threw CancelledError");
      throw;
    }
  };
  auto main_task = [&]() -> Task<> {
    Future<> f = create_task(g());
    co_await sleep(milliseconds(1));
    f.cancel();
    co_await f.wait();
    EXPECT_TRUE(f.cancelled());
  };
  Run(main_task());
  EXPECT_EQ(log, (std::vector<std::string>{"cleaned", "cleaned", "cleaned", "gather threw CancelledError"}));
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

}  // namespace
}  // namespace brrr
