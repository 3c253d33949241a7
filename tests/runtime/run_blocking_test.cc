// run_blocking: blocking work runs on the pool while the loop keeps serving other tasks.
#include <atomic>
#include <stdexcept>
#include <thread>

#include "runtime/blocking_pool.h"
#include "tests/runtime/coroutine_test_util.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using RunBlockingTest = testing::CoroutineTest;
using RunBlockingRealTimeTest = testing::RealTimeCoroutineTest;

TEST_F(RunBlockingTest, RunsOnAnotherThreadAndResumesOnTheLoopThread) {
  std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id job_thread;
  std::thread::id resumed_on;
  auto run = [&]() -> Task<int> {
    int v = co_await run_blocking([&] {
      job_thread = std::this_thread::get_id();
      return 21;
    });
    resumed_on = std::this_thread::get_id();
    co_return v * 2;
  };
  EXPECT_EQ(Run(run()), 42);
  EXPECT_NE(job_thread, loop_thread);
  EXPECT_EQ(resumed_on, loop_thread);
}

TEST_F(RunBlockingRealTimeTest, TheLoopKeepsRunningWhileTheJobBlocks) {
  // The job blocks until a task on the loop has run 10 times: only possible if the loop
  // keeps going. Bounded at 30 s so a broken pool fails instead of hanging.
  std::atomic<int> ticks{0};
  auto blocker = [&]() -> Task<bool> {
    co_return co_await run_blocking([&] {
      TimePoint give_up = Clock::now() + seconds(30);
      while (ticks.load() < 10 && Clock::now() < give_up) std::this_thread::sleep_for(milliseconds(1));
      return ticks.load() >= 10;
    });
  };
  auto ticker = [&]() -> Task<> {
    for (int i = 0; i < 10; ++i) {
      co_await sleep(milliseconds(1));
      ++ticks;
    }
  };
  auto run = [&]() -> Task<bool> {
    auto [saw_ticks, ignored] = co_await gather(blocker(), ticker());
    (void)ignored;
    co_return saw_ticks;
  };
  EXPECT_TRUE(Run(run()));
}

TEST_F(RunBlockingTest, ExceptionsComeBackToTheAwaiter) {
  auto run = [&]() -> Task<> {
    co_await run_blocking([] { throw std::domain_error("from the pool"); });
  };
  EXPECT_THROW(Run(run()), std::domain_error);
}

TEST_F(RunBlockingTest, VoidJobs) {
  std::atomic<bool> ran{false};
  auto run = [&]() -> Task<> { co_await run_blocking([&] { ran = true; }); };
  Run(run());
  EXPECT_TRUE(ran.load());
}

TEST(BlockingPoolTest, StartsThreadsOnDemandUpToTheLimit) {
  BlockingPool pool(2);
  EXPECT_EQ(pool.threads(), 0u);
  std::atomic<int> done{0};
  std::atomic<bool> release{false};
  for (int i = 0; i < 5; ++i) {
    pool.submit([&] {
      while (!release.load()) std::this_thread::sleep_for(milliseconds(1));
      ++done;
    });
  }
  EXPECT_EQ(pool.threads(), 2u);
  release = true;
  TimePoint give_up = Clock::now() + seconds(30);
  while (done.load() < 5 && Clock::now() < give_up) std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(done.load(), 5);
}

}  // namespace
}  // namespace brrr
