// Future<T> and Promise<T>.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/runtime/coroutine_test_util.h"

namespace brrr {
namespace {

using FutureTest = testing::CoroutineTest;

// Awaiting a future of a copyable T yields a copy (the future keeps its value, for the next
// await); of a move-only T, the value itself, moved out: the future is left holding what is left.
TEST_F(FutureTest, ACopyableValueIsCopiedToEachAwaiterAndAMoveOnlyOneMovedOut) {
  auto run = [&]() -> Task<> {
    Promise<std::string> text(loop());
    Future<std::string> shared = text.get_future();
    text.set_result("kept");
    EXPECT_EQ(co_await shared, "kept");
    EXPECT_EQ(co_await shared, "kept");
    EXPECT_EQ(shared.result(), "kept");
    Promise<std::unique_ptr<int>> owned(loop());
    Future<std::unique_ptr<int>> once = owned.get_future();
    owned.set_result(std::make_unique<int>(5));
    std::unique_ptr<int> value = co_await once;
    EXPECT_EQ(value != nullptr ? *value : -1, 5);
    EXPECT_EQ(once.result(), nullptr) << "moved out to the awaiter";
  };
  Run(run());
}

TEST_F(FutureTest, PendingThenSetThenAwaited) {
  std::vector<std::string> printed;
  auto run = [&]() -> Task<> {
    Promise<int> p;
    Future<int> f = p.get_future();
    printed.push_back(f.ToString());
    EXPECT_FALSE(f.done());
    EXPECT_THROW(f.result(), InvalidStateError);
    p.set_result(50);
    printed.push_back(f.ToString());
    EXPECT_TRUE(f.done());
    printed.push_back(std::to_string(co_await f));
  };
  Run(run());
  EXPECT_EQ(printed, (std::vector<std::string>{"<Future pending>", "<Future finished result=50>", "50"}));
}

TEST_F(FutureTest, AwaitingSuspendsUntilSetFromAnotherTask) {
  Promise<std::string> p(loop());
  std::vector<std::string> log;
  auto waiter = [&]() -> Task<> {
    log.push_back("waiting");
    log.push_back(co_await p.get_future());
  };
  auto setter = [&]() -> Task<> {
    log.push_back("setting");
    p.set_result("value");
    co_return;
  };
  auto both = [&]() -> Task<> { co_await gather(waiter(), setter()); };
  Run(both());
  EXPECT_EQ(log, (std::vector<std::string>{"waiting", "setting", "value"}));
}

TEST_F(FutureTest, ManyAwaitersAllGetTheValue) {
  Promise<int> p(loop());
  int total = 0;
  auto waiter = [&]() -> Task<> { total += co_await p.get_future(); };
  auto run = [&]() -> Task<> {
    std::vector<Task<>> waiters;
    for (int i = 0; i < 5; ++i) waiters.push_back(waiter());
    loop().call_soon([&] { p.set_result(7); });
    co_await gather(std::move(waiters));
  };
  Run(run());
  EXPECT_EQ(total, 35);
}

TEST_F(FutureTest, ExceptionIsRethrownToEveryAwaiter) {
  Promise<int> p(loop());
  p.set_exception(std::make_exception_ptr(std::runtime_error("nope")));
  Future<int> f = p.get_future();
  EXPECT_TRUE(f.failed());
  EXPECT_EQ(f.ToString(), "<Future finished exception=nope>");
  auto run = [&]() -> Task<int> { co_return co_await f; };
  EXPECT_THROW(Run(run()), std::runtime_error);
}

TEST_F(FutureTest, DoneCallbacksRunThroughTheLoopNotInline) {
  Promise<> p(loop());
  Future<> f = p.get_future();
  std::vector<std::string> log;
  f.add_done_callback([&] { log.push_back("callback"); });
  loop().call_soon([&] {
    p.set_result();
    log.push_back("after set_result");
  });
  f.add_done_callback([&] { loop().stop(); });
  loop().run_forever();
  EXPECT_EQ(log, (std::vector<std::string>{"after set_result", "callback"}));
  // Added after completion: still scheduled, not run inline.
  bool late = false;
  f.add_done_callback([&] { late = true; });
  EXPECT_FALSE(late);
  loop().run_once(Duration::zero());
  EXPECT_TRUE(late);
}

TEST_F(FutureTest, ABrokenPromiseFailsTheFuture) {
  Future<int> f;
  {
    Promise<int> p(loop());
    f = p.get_future();
  }
  EXPECT_TRUE(f.failed());
  EXPECT_THROW(f.result(), BrokenPromiseError);
}

TEST_F(FutureTest, SecondResultIsIgnored) {
  Promise<int> p(loop());
  p.set_result(1);
  p.set_result(2);
  EXPECT_EQ(p.get_future().result(), 1);
}

// Once a future is done, set_exception (a promise's, or a task's failure racing its result) is
// ignored as a second set_result is: the result stays, and its waiters are told only once.
TEST_F(FutureTest, AnExceptionAfterTheResultIsIgnored) {
  Promise<int> p(loop());
  Future<int> f = p.get_future();
  int callbacks = 0;
  f.add_done_callback([&] { ++callbacks; });
  p.set_result(1);
  p.set_exception(std::make_exception_ptr(std::runtime_error("too late")));
  EXPECT_FALSE(f.failed());
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_EQ(f.result(), 1);
  EXPECT_EQ(f.ToString(), "<Future finished result=1>");
  auto run = [&]() -> Task<int> { co_return co_await f; };
  EXPECT_EQ(Run(run()), 1);
  EXPECT_EQ(callbacks, 1);
}

TEST_F(FutureTest, CancelAPlainFuture) {
  Promise<int> p(loop());
  Future<int> f = p.get_future();
  EXPECT_TRUE(f.cancel());
  EXPECT_TRUE(f.cancelled());
  EXPECT_EQ(f.ToString(), "<Future cancelled>");
  EXPECT_THROW(f.result(), CancelledError);
  EXPECT_FALSE(f.cancel());
}

TEST_F(FutureTest, VoidFuture) {
  Promise<> p(loop());
  Future<> f = p.get_future();
  p.set_result();
  EXPECT_EQ(f.ToString(), "<Future finished result=None>");
  auto run = [&]() -> Task<> { co_await f; };
  Run(run());
}

TEST_F(FutureTest, SetFromAnotherThreadThroughCallSoonThreadsafe) {
  Promise<int> p(loop());
  std::thread other([&] {
    loop().call_soon_threadsafe([&] { p.set_result(42); });
  });
  auto run = [&]() -> Task<int> { co_return co_await p.get_future(); };
  EXPECT_EQ(Run(run()), 42);
  other.join();
}

}  // namespace
}  // namespace brrr
