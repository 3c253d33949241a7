// Cancellation: a cancelled task resumes with CancelledError at its await point, and what it
// was waiting on (timer, future registration, blocking call) is released.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "tests/runtime/coroutine_test_util.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using CancellationTest = testing::CoroutineTest;
using CancellationRealTimeTest = testing::RealTimeCoroutineTest;

TEST_F(CancellationTest, CancelledSleepThrowsAtTheAwaitAndReleasesItsTimer) {
  std::vector<std::string> log;
  auto sleeper = [&]() -> Task<> {
    log.push_back("sleeping");
    try {
      co_await sleep(seconds(3600));
      log.push_back("woke");
    } catch (const CancelledError&) {
      log.push_back("cancelled at the await");
      throw;
    }
  };
  auto main_task = [&]() -> Task<> {
    Future<> f = create_task(sleeper());
    co_await sleep(milliseconds(1));
    EXPECT_EQ(loop().stats().pending_timers, 1u) << "the hour-long sleep";
    EXPECT_TRUE(f.cancel());
    EXPECT_EQ(loop().stats().pending_timers, 0u) << "released at once";
    co_await f.wait();
    EXPECT_TRUE(f.cancelled());
  };
  Run(main_task());
  EXPECT_EQ(log, (std::vector<std::string>{"sleeping", "cancelled at the await"}));
  EXPECT_EQ(loop().stats().live_tasks, 0u);
}

TEST_F(CancellationTest, CancelBeforeTheTaskEverRan) {
  bool ran = false;
  auto body = [&]() -> Task<> {
    ran = true;
    co_return;
  };
  auto main_task = [&]() -> Task<> {
    Future<> f = create_task(body());
    f.cancel();
    co_await f.wait();
    EXPECT_TRUE(f.cancelled());
  };
  Run(main_task());
  EXPECT_FALSE(ran);
}

TEST_F(CancellationTest, CancelWhileAwaitingAFutureUnregistersTheWaiter) {
  Promise<int> never(loop());
  auto waiter = [&]() -> Task<int> { co_return co_await never.get_future(); };
  auto main_task = [&]() -> Task<> {
    Future<int> f = create_task(waiter());
    co_await sleep(milliseconds(1));
    f.cancel();
    co_await f.wait();
    EXPECT_TRUE(f.cancelled());
    never.set_result(1);  // nobody is registered any more: nothing resumes a dead frame
    co_await sleep(milliseconds(1));
  };
  Run(main_task());
}

TEST_F(CancellationTest, CancellationIsDeliveredOnceAndCanBeHandled) {
  std::vector<std::string> log;
  auto stubborn = [&]() -> Task<int> {
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      log.push_back("cleaning up");
    }
    co_await sleep(milliseconds(1));  // a second await runs normally
    log.push_back("finished anyway");
    co_return 7;
  };
  auto main_task = [&]() -> Task<> {
    Future<int> f = create_task(stubborn());
    co_await sleep(milliseconds(1));
    f.cancel();
    EXPECT_EQ(co_await f, 7);
  };
  Run(main_task());
  EXPECT_EQ(log, (std::vector<std::string>{"cleaning up", "finished anyway"}));
}

// A second cancel() while the first one's CancelledError is on its way (the sleep released,
// the task not yet resumed) is the same request: the cleanup the task does on catching it is
// not cut short. A cancel() after it landed is a new request, and interrupts the next await.
TEST_F(CancellationTest, CancellingAgainBeforeTheTaskResumesIsTheSameRequest) {
  std::vector<std::string> log;
  auto stubborn = [&]() -> Task<int> {
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      log.push_back("cleaning up");
    }
    co_await sleep(milliseconds(1));
    log.push_back("cleaned up");
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      log.push_back("cancelled again");
    }
    co_return 7;
  };
  auto main_task = [&]() -> Task<> {
    Future<int> f = create_task(stubborn());
    co_await sleep(milliseconds(1));
    EXPECT_TRUE(f.cancel());
    EXPECT_TRUE(f.cancel()) << "the task has not finished";
    co_await sleep(milliseconds(2));
    EXPECT_EQ(log, (std::vector<std::string>{"cleaning up", "cleaned up"}));
    EXPECT_TRUE(f.cancel());
    EXPECT_EQ(co_await f, 7);
  };
  Run(main_task());
  EXPECT_EQ(log, (std::vector<std::string>{"cleaning up", "cleaned up", "cancelled again"}));
}

TEST_F(CancellationTest, SelfCancelThrowsAtTheNextSuspendingAwait) {
  std::vector<std::string> log;
  Future<> self;
  auto body = [&]() -> Task<> {
    self.cancel();  // running: takes effect at the next await that would suspend
    log.push_back("still running");
    co_await sleep(milliseconds(1));
    log.push_back("not reached");
  };
  auto main_task = [&]() -> Task<> {
    self = create_task(body());
    co_await self.wait();
    EXPECT_TRUE(self.cancelled());
  };
  Run(main_task());
  EXPECT_EQ(log, (std::vector<std::string>{"still running"}));
}

TEST_F(CancellationTest, CancellingAnAwaitingParentReachesTheInnermostAwait) {
  std::vector<std::string> log;
  auto leaf = [&]() -> Task<> {
    try {
      co_await sleep(seconds(3600));
    } catch (const CancelledError&) {
      log.push_back("leaf cancelled");
      throw;
    }
  };
  auto middle = [&]() -> Task<> {
    co_await leaf();
    log.push_back("middle not reached");
  };
  auto main_task = [&]() -> Task<> {
    Future<> f = create_task(middle());
    co_await sleep(milliseconds(1));
    f.cancel();
    co_await f.wait();
    EXPECT_TRUE(f.cancelled());
  };
  Run(main_task());
  EXPECT_EQ(log, (std::vector<std::string>{"leaf cancelled"}));
}

TEST_F(CancellationTest, CancellingAFinishedTaskIsANoOp) {
  auto quick = []() -> Task<int> { co_return 1; };
  auto main_task = [&]() -> Task<> {
    Future<int> f = create_task(quick());
    EXPECT_EQ(co_await f, 1);
    EXPECT_FALSE(f.cancel());
    EXPECT_EQ(f.result(), 1);
  };
  Run(main_task());
}

TEST_F(CancellationRealTimeTest, CancelledRunBlockingResumesAtOnceAndDiscardsTheResult) {
  std::atomic<bool> job_started{false};
  std::atomic<bool> release{false};
  std::atomic<bool> job_finished{false};
  auto caller = [&]() -> Task<int> {
    co_return co_await run_blocking([&] {
      job_started = true;
      TimePoint give_up = Clock::now() + seconds(30);
      while (!release.load() && Clock::now() < give_up) std::this_thread::sleep_for(milliseconds(1));
      job_finished = true;
      return 5;
    });
  };
  auto main_task = [&]() -> Task<> {
    Future<int> f = create_task(caller());
    // Wait for the job itself (bounded by the test's timeout), not for a guess at how long
    // it takes to start.
    while (!job_started.load()) co_await sleep(milliseconds(1));
    f.cancel();
    co_await f.wait();
    EXPECT_TRUE(f.cancelled());
    EXPECT_FALSE(job_finished.load()) << "the task did not wait for the blocking job";
    release = true;
    // The job's completion arrives later and must be dropped quietly.
    while (!job_finished.load()) co_await sleep(milliseconds(1));
    co_await sleep(milliseconds(5));
  };
  Run(main_task());
}

}  // namespace
}  // namespace brrr
