// Event: a flag tasks wait for; set() wakes every waiter, clear() makes later waits wait again.
#include "runtime/event.h"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/runtime/coroutine_test_util.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using EventTest = testing::CoroutineTest;

TEST_F(EventTest, ConstructingOneWithoutARunningLoopIsAClearError) {
  try {
    Event event;
    FAIL() << "expected an exception";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("Event() needs a running event loop"), std::string::npos) << e.what();
  }
}

// A task that waits for an event already set goes on without giving up its turn: it logs
// again before a task queued behind it runs.
TEST_F(EventTest, WaitingForASetEventReturnsAtOnce) {
  Event event(loop());
  event.set();
  std::vector<std::string> log;
  auto waiter = [&]() -> Task<> {
    log.push_back("waiter: before wait");
    co_await event.wait();
    log.push_back("waiter: after wait");
  };
  auto other = [&]() -> Task<> {
    log.push_back("other");
    co_return;
  };
  auto run = [&]() -> Task<> {
    Future<> a = create_task(waiter());
    Future<> b = create_task(other());
    co_await a;
    co_await b;
  };
  Run(run());
  EXPECT_EQ(log, (std::vector<std::string>{"waiter: before wait", "waiter: after wait", "other"}));
}

TEST_F(EventTest, SetWakesEveryWaiterThroughTheReadyQueue) {
  int woken = 0;
  auto run = [&]() -> Task<> {
    Event event;
    auto waiter = [&]() -> Task<> {
      co_await event.wait();
      ++woken;
    };
    for (int i = 0; i < 3; ++i) create_task(waiter());
    co_await sleep(milliseconds(1));
    EXPECT_EQ(woken, 0) << "nobody is woken before set()";
    event.set();
    EXPECT_TRUE(event.is_set());
    EXPECT_EQ(woken, 0) << "set() does not run the waiters on its own stack";
    co_await sleep(milliseconds(1));
    EXPECT_EQ(woken, 3);
  };
  Run(run());
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

TEST_F(EventTest, AfterClearAWaitWaitsForTheNextSet) {
  bool woken = false;
  auto run = [&]() -> Task<> {
    Event event;
    event.set();
    event.clear();
    EXPECT_FALSE(event.is_set());
    auto waiter = [&]() -> Task<> {
      co_await event.wait();
      woken = true;
    };
    create_task(waiter());
    co_await sleep(milliseconds(1));
    EXPECT_FALSE(woken) << "a cleared event makes its waiters wait";
    event.set();
    co_await sleep(milliseconds(1));
    EXPECT_TRUE(woken);
  };
  Run(run());
}

TEST_F(EventTest, ACancelledWaiterThrowsAndTheOthersStillWaitForSet) {
  std::vector<std::string> log;
  auto run = [&]() -> Task<> {
    Event event;
    auto waiter = [&](std::string name) -> Task<> {
      try {
        co_await event.wait();
      } catch (const CancelledError&) {
        log.push_back(name + " cancelled");
        throw;
      }
      log.push_back(name + " woken");
    };
    Future<> cancelled = create_task(waiter("first"));
    Future<> kept = create_task(waiter("second"));
    co_await sleep(milliseconds(1));
    cancelled.cancel();
    co_await sleep(milliseconds(1));
    EXPECT_TRUE(cancelled.cancelled());
    EXPECT_FALSE(kept.done()) << "cancelling one waiter leaves the event unset";
    EXPECT_FALSE(event.is_set());
    event.set();
    co_await kept;
  };
  Run(run());
  EXPECT_EQ(log, (std::vector<std::string>{"first cancelled", "second woken"}));
}

// An event destroyed unset will never be set: its waiters are told so (BrokenPromiseError)
// instead of going on as if it had been.
TEST_F(EventTest, DestroyingAnEventUnsetWakesItsWaitersWithBrokenPromiseError) {
  std::vector<std::string> log;
  auto run = [&]() -> Task<> {
    auto event = std::make_unique<Event>(loop());
    auto waiter = [&]() -> Task<> {
      try {
        co_await event->wait();
        log.push_back("woken as if set");
      } catch (const BrokenPromiseError&) {
        log.push_back("told the event is gone");
      }
    };
    Future<> waiting = create_task(waiter());
    co_await sleep(milliseconds(1));
    event.reset();
    co_await waiting;
  };
  Run(run());
  EXPECT_EQ(log, (std::vector<std::string>{"told the event is gone"}));
}

}  // namespace
}  // namespace brrr
