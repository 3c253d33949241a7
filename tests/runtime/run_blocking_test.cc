// run_blocking: blocking work runs on the pool while the loop keeps serving other tasks.
#include <signal.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "runtime/blocking_pool.h"
#include "runtime/stack_sampler.h"
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

// Whether this thread blocks `signal`.
bool Blocks(int signal) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signal) == 1;
}

// A loop thread has the stall sampler's signal open (StackSampler::ThreadScope) and submits the
// loop's blocking jobs; the pool's threads must not inherit it: only loop threads take it.
TEST(BlockingPoolTest, ItsThreadsStartWithTheStallSignalBlocked) {
  const int signal = StackSampler::Signal();
  sigset_t open;
  sigset_t before;
  sigemptyset(&open);
  sigaddset(&open, signal);
  ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &open, &before), 0);  // as on a loop thread
  std::atomic<int> blocked_in_job{-1};
  {
    BlockingPool pool(1);
    pool.submit([&] { blocked_in_job = Blocks(signal) ? 1 : 0; });
    TimePoint give_up = Clock::now() + seconds(30);
    while (blocked_in_job.load() < 0 && Clock::now() < give_up) std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_EQ(blocked_in_job.load(), 1) << "a pool thread takes the stall signal";
  EXPECT_FALSE(Blocks(signal)) << "submit() left the submitting thread's mask changed";
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

}  // namespace
}  // namespace brrr
