// run_blocking: blocking work runs on the pool while the loop keeps serving other tasks.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "runtime/blocking_pool.h"
#include "runtime/stack_sampler.h"
#include "tests/runtime/coroutine_test_util.h"
#include "tests/runtime/dropped_work.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using RunBlockingTest = testing::CoroutineTest;
using RunBlockingRealTimeTest = testing::RealTimeCoroutineTest;

using testing::RunsOnDestruction;
using testing::WaitUntil;

// Lines appended from any thread.
class SharedLog {
 public:
  void add(std::string line) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(std::move(line));
  }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;  // guarded by mu_
};

// While it lives, the system refuses every new thread, as under a thread or memory limit: a
// new thread's stack, by default larger than the address space, cannot be mapped (EAGAIN).
class NewThreadsRefused {
 public:
  NewThreadsRefused() {
    pthread_attr_t attr;
    pthread_getattr_default_np(&attr);
    pthread_attr_getstacksize(&attr, &stack_size_);
    pthread_attr_setstacksize(&attr, size_t{1} << 50);
    pthread_setattr_default_np(&attr);
    pthread_attr_destroy(&attr);
  }
  ~NewThreadsRefused() {
    pthread_attr_t attr;
    pthread_getattr_default_np(&attr);
    pthread_attr_setstacksize(&attr, stack_size_);
    pthread_setattr_default_np(&attr);
    pthread_attr_destroy(&attr);
  }
  NewThreadsRefused(const NewThreadsRefused&) = delete;
  NewThreadsRefused& operator=(const NewThreadsRefused&) = delete;

  // Whether the refusal holds here (it rests on how glibc sizes a new thread's stack).
  static bool Holds() {
    NewThreadsRefused refused;
    try {
      std::thread([] {}).join();
      return false;
    } catch (const std::system_error&) {
      return true;
    }
  }

 private:
  size_t stack_size_ = 0;
};

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

// The auto-advancing clock jumps to the next timer only when nothing could still happen
// before it: not while blocking work is queued or running. Its check once looked at the pool's
// running and queued jobs one after the other and at the inbox before both, so a job between
// two looks (taken from the queue, or done and its result posted) was in none of them: the
// clock jumped an hour while the job ran, in about one await in six.
TEST_F(RunBlockingTest, TheClockDoesNotJumpWhileBlockingWorkIsUnfinished) {
  constexpr int kAwaits = 300;
  int jumped = 0;
  auto run = [&]() -> Task<> {
    for (int i = 0; i < kAwaits; ++i) {
      const int64_t before = clock_.now_ns();
      Future<> sleeper = create_task([]() -> Task<> { co_await sleep(std::chrono::hours(1)); }());
      co_await sleep(Duration::zero());  // the sleeper has started: its hour-long timer is set
      co_await sleep(Duration::zero());
      co_await run_blocking([] {
        TimePoint until = Clock::now() + std::chrono::microseconds(200);  // real time passes
        while (Clock::now() < until) {
        }
      });
      if (clock_.now_ns() != before || sleeper.done()) ++jumped;
      sleeper.cancel();
      co_await sleeper.wait();
    }
  };
  Run(run());
  EXPECT_EQ(jumped, 0) << "of " << kAwaits << " awaits of blocking work";
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

// The job's work uses the awaiting task's frame: had the job stayed queued after the await
// failed, the next thread the pool starts would run it against a frame that is gone.
TEST_F(RunBlockingTest, WhenNoThreadCanStartTheAwaitFailsAndTheWorkNeverRuns) {
  if (!NewThreadsRefused::Holds()) GTEST_SKIP() << "cannot make the system refuse a thread here";
  std::atomic<int> runs_of_refused_work{0};
  auto refused = [&]() -> Task<std::string> {
    std::string frame_local = "in the frame";
    try {
      NewThreadsRefused no_threads;
      co_await run_blocking([&] {
        ++runs_of_refused_work;
        return frame_local.size();
      });
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "no error";
  };
  std::string error = Run(refused());
  EXPECT_THAT(error, ::testing::HasSubstr("cannot start a thread"));
  // The pool starts its first thread now, and runs what it has queued.
  auto later = [&]() -> Task<int> { co_return co_await run_blocking([] { return 7; }); };
  EXPECT_EQ(Run(later()), 7);
  EXPECT_EQ(runs_of_refused_work.load(), 0) << "the refused job stayed queued and ran";
}

TEST(BlockingPoolTest, WithNoThreadAndNoneToBeHadAJobIsRefused) {
  if (!NewThreadsRefused::Holds()) GTEST_SKIP() << "cannot make the system refuse a thread here";
  BlockingPool pool(2);
  std::atomic<bool> refused_job_ran{false};
  absl::Status queued;
  {
    NewThreadsRefused no_threads;
    queued = pool.submit([&] { refused_job_ran = true; });
  }
  EXPECT_EQ(queued.code(), absl::StatusCode::kUnavailable) << queued;
  EXPECT_EQ(pool.queued(), 0u);
  std::atomic<bool> next_ran{false};
  ASSERT_TRUE(pool.submit([&] { next_ran = true; }).ok());
  ASSERT_TRUE(WaitUntil([&] { return next_ran.load(); }));
  EXPECT_FALSE(refused_job_ran.load());
}

// A job refused for want of a thread is destroyed outside the pool's lock too (its capture here
// uses the pool). Submitted from a thread of its own, so that a deadlock fails the test instead
// of hanging it.
TEST(BlockingPoolTest, TheCapturesOfARefusedJobMayUseThePoolAsTheyAreDestroyed) {
  if (!NewThreadsRefused::Holds()) GTEST_SKIP() << "cannot make the system refuse a thread here";
  // On the heap, and left there if the submit deadlocks: the stuck thread still uses it.
  struct Shared {
    BlockingPool pool{2};
    std::atomic<int> queued_seen{-1};
    std::promise<void> go;
    std::promise<absl::Status> submitted;
  };
  auto* shared = new Shared;
  std::future<absl::Status> submitted = shared->submitted.get_future();
  std::thread submitter([shared] {  // started before threads are refused
    shared->go.get_future().wait();
    auto uses_the_pool = std::make_shared<RunsOnDestruction>(
        [shared] { shared->queued_seen = static_cast<int>(shared->pool.queued()); });
    shared->submitted.set_value(shared->pool.submit([u = std::move(uses_the_pool)] {}));
  });
  std::future_status status;
  {
    NewThreadsRefused no_threads;
    shared->go.set_value();
    status = submitted.wait_for(seconds(20));
  }
  if (status != std::future_status::ready) {
    submitter.detach();
    FAIL() << "BlockingPool::submit deadlocked destroying a refused job whose capture uses the pool";
  }
  submitter.join();
  absl::Status refused = submitted.get();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_EQ(shared->queued_seen.load(), 0) << "the refused job was out of the queue";
  delete shared;
}

TEST(BlockingPoolTest, WhenNoMoreThreadsCanStartAJobWaitsForABusyOne) {
  if (!NewThreadsRefused::Holds()) GTEST_SKIP() << "cannot make the system refuse a thread here";
  BlockingPool pool(2);
  std::atomic<bool> release{false};
  ASSERT_TRUE(pool.submit([&] { WaitUntil([&] { return release.load(); }); }).ok());
  std::atomic<bool> second_ran{false};
  {
    NewThreadsRefused no_threads;
    EXPECT_TRUE(pool.submit([&] { second_ran = true; }).ok());
  }
  EXPECT_EQ(pool.threads(), 1u);
  release = true;
  EXPECT_TRUE(WaitUntil([&] { return second_ran.load(); }));
}

TEST(BlockingPoolTest, StartsThreadsOnDemandUpToTheLimit) {
  BlockingPool pool(2);
  EXPECT_EQ(pool.threads(), 0u);
  std::atomic<int> done{0};
  std::atomic<bool> release{false};
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(pool.submit([&] {
                      while (!release.load()) std::this_thread::sleep_for(milliseconds(1));
                      ++done;
                    })
                    .ok());
  }
  EXPECT_EQ(pool.threads(), 2u);
  release = true;
  TimePoint give_up = Clock::now() + seconds(30);
  while (done.load() < 5 && Clock::now() < give_up) std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(done.load(), 5);
}

// Threads start on demand only: jobs submitted one at a time, each finished before the next,
// find the pool's one thread idle and run on it; no second thread is started for them.
TEST(BlockingPoolTest, OneJobAtATimeKeepsOneThread) {
  BlockingPool pool(4);
  for (int i = 0; i < 5; ++i) {
    std::atomic<bool> ran{false};
    ASSERT_TRUE(pool.submit([&] { ran = true; }).ok());
    ASSERT_TRUE(WaitUntil([&] { return ran.load(); }));
    // Finished and back waiting: a worker counts itself idle under the same lock in which it
    // stops counting the job as running.
    ASSERT_TRUE(WaitUntil([&] { return pool.unfinished() == 0; }));
    EXPECT_EQ(pool.threads(), 1u) << "after job " << i;
  }
}

TEST(BlockingPoolTest, QueuedJobsRunFirstInFirstOut) {
  BlockingPool pool(1);
  std::atomic<bool> release{false};
  EXPECT_TRUE(pool.submit([&] { WaitUntil([&] { return release.load(); }); }).ok());  // holds the only thread
  SharedLog order;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(pool.submit([&order, i] { order.add(std::to_string(i)); }).ok());
  release = true;
  ASSERT_TRUE(WaitUntil([&] { return order.lines().size() == 5; }));
  EXPECT_EQ(order.lines(), (std::vector<std::string>{"0", "1", "2", "3", "4"}));
}

// The queued job's capture lets the running job finish once it is destroyed: so the running
// job ends only after the pool has dropped the queued one, and before the destructor returns.
TEST(BlockingPoolTest, DestructionLetsTheRunningJobFinishAndDropsTheQueuedOnes) {
  std::atomic<bool> started{false};
  std::atomic<bool> released{false};
  std::atomic<bool> finished{false};
  std::atomic<bool> queued_job_ran{false};
  {
    BlockingPool pool(1);
    EXPECT_TRUE(pool.submit([&] {
                      started = true;
                      WaitUntil([&] { return released.load(); });
                      finished = true;
                    })
                    .ok());
    auto releaser = std::make_shared<RunsOnDestruction>([&] { released = true; });
    EXPECT_TRUE(pool.submit([&queued_job_ran, releaser] { queued_job_ran = true; }).ok());
    releaser.reset();
    ASSERT_TRUE(WaitUntil([&] { return started.load(); }));
    EXPECT_EQ(pool.queued(), 1u);
  }
  EXPECT_TRUE(finished.load()) << "the destructor waited for the running job";
  EXPECT_TRUE(released.load()) << "the queued job was destroyed";
  EXPECT_FALSE(queued_job_ran.load()) << "the queued job was dropped without running";
}

// The queued jobs the destructor drops are destroyed outside the pool's lock: a capture whose
// destructor uses the pool (queued(), submit(), which take that lock) deadlocked it. Destroyed
// on a thread of its own, so that a deadlock fails the test instead of hanging it.
TEST(BlockingPoolTest, TheCapturesOfDroppedJobsMayUseThePoolAsTheyAreDestroyed) {
  // On the heap, and left there if the destructor deadlocks: the stuck threads still use it.
  struct Shared {
    BlockingPool* pool = new BlockingPool(1);
    std::atomic<bool> started{false};
    std::atomic<bool> released{false};
    std::atomic<int> queued_seen{-1};
    std::atomic<int> resubmitted{-1};
    std::promise<void> destroyed;
  };
  auto* shared = new Shared;
  BlockingPool* pool = shared->pool;
  ASSERT_TRUE(pool->submit([shared] {
                    shared->started = true;
                    WaitUntil([shared] { return shared->released.load(); });
                  })
                  .ok());
  ASSERT_TRUE(WaitUntil([shared] { return shared->started.load(); }));
  auto uses_the_pool = std::make_shared<RunsOnDestruction>([shared, pool] {
    shared->queued_seen = static_cast<int>(pool->queued());
    shared->resubmitted = pool->submit([] {}).ok() ? 1 : 0;
    shared->released = true;  // the running job may finish now
  });
  ASSERT_TRUE(pool->submit([uses_the_pool] {}).ok());
  uses_the_pool.reset();
  std::future<void> destroyed = shared->destroyed.get_future();
  std::thread destroyer([shared] {
    delete shared->pool;
    shared->destroyed.set_value();
  });
  if (destroyed.wait_for(seconds(20)) != std::future_status::ready) {
    destroyer.detach();
    FAIL() << "~BlockingPool deadlocked destroying a queued job whose capture uses the pool";
  }
  destroyer.join();
  EXPECT_EQ(shared->queued_seen.load(), 0) << "the dropped jobs were out of the queue";
  EXPECT_EQ(shared->resubmitted.load(), 1) << "a submit to a pool being destroyed is dropped as the queued jobs are";
  delete shared;
}

// A loop destroyed while one run_blocking job runs and another waits in the queue (one pool
// thread). The destructor waits for the running job, refuses what it posts back, drops the
// queued one (whose capture lets the running one finish), and destroys the task awaiting the
// running job only then: its frame, whose locals such a job may use, outlives the job.
TEST(RunBlockingShutdownTest, DestroyingTheLoopWaitsForRunningWorkBeforeDestroyingItsTask) {
  auto created = EventLoop::Create({.blocking_threads = 1});
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<EventLoop> loop = *std::move(created);
  EventLoop* l = loop.get();
  SharedLog log;
  std::atomic<bool> released{false};
  std::atomic<int> post_accepted{-1};
  auto awaits_running_job = [&]() -> Task<> {
    RunsOnDestruction frame_local([&] { log.add("frame destroyed"); });
    co_await run_blocking([&] {
      l->call_soon_threadsafe([l] { l->stop(); });  // running: the loop can stop now
      WaitUntil([&] { return released.load(); });
      post_accepted = l->call_soon_threadsafe([] {}) ? 1 : 0;
      log.add("job finished");
    });
  };
  auto awaits_queued_job = [&](std::shared_ptr<RunsOnDestruction> releaser) -> Task<> {
    // Built apart from the co_await: g++ 12 destroys the captures of a lambda written inside a
    // co_await expression twice (here a double free, once the pool has dropped the job).
    auto job = [r = std::move(releaser)] {};
    co_await run_blocking(std::move(job));
  };
  Future<> running = create_task(*loop, awaits_running_job());
  Future<> queued = create_task(*loop, awaits_queued_job(std::make_shared<RunsOnDestruction>([&] { released = true; })));
  loop->run_forever();
  EXPECT_FALSE(running.done());
  loop.reset();
  EXPECT_EQ(log.lines(), (std::vector<std::string>{"job finished", "frame destroyed"}));
  EXPECT_EQ(post_accepted.load(), 0) << "call_soon_threadsafe refuses posts once the loop is being destroyed";
  EXPECT_TRUE(running.cancelled());
  EXPECT_TRUE(queued.cancelled());
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
    EXPECT_TRUE(pool.submit([&] { blocked_in_job = Blocks(signal) ? 1 : 0; }).ok());
    TimePoint give_up = Clock::now() + seconds(30);
    while (blocked_in_job.load() < 0 && Clock::now() < give_up) std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_EQ(blocked_in_job.load(), 1) << "a pool thread takes the stall signal";
  EXPECT_FALSE(Blocks(signal)) << "submit() left the submitting thread's mask changed";
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
}

}  // namespace
}  // namespace brrr
