// Micro-costs of the runtime, each beside its floor, in one run:
//
//   bazel run -c opt //bench:runtime_bench
//
//   BM_DequeOfStdFunction   the floor: the tutorial's loop with std::deque<std::function>
//   BM_CallSoonDispatch     EventLoop::call_soon + running it (with per-task timing and stats)
//   BM_CallSoonDispatchWithoutWatchdog   the same with the stall watchdog off (its A/B)
//   BM_TaskResume           resuming a suspended coroutine (the cost of one co_await round trip)
//   BM_TaskCreateAwait      creating a child Task, running it to completion, destroying it
//   BM_TimerInsertCancel    TimerQueue schedule + cancel with 1M timers pending
//   BM_LoopTimerInsertCancel   the same through EventLoop::call_later / TimerHandle::cancel
//   BM_CallSoonThreadsafe   callbacks posted from another thread, run by the loop
#include <atomic>
#include <chrono>
#include <coroutine>
#include <deque>
#include <functional>
#include <random>
#include <thread>

#include "benchmark/benchmark.h"
#include "runtime/async.h"
#include "runtime/thread_cpu_clock.h"
#include "runtime/timer_queue.h"

namespace brrr {
namespace {

constexpr int kBatch = 1024;

std::unique_ptr<EventLoop> MakeLoop(bool stall_watchdog = true) {
  EventLoopOptions options;
  options.backend = "epoll";
  options.stall_watchdog = stall_watchdog;
  auto loop = EventLoop::Create(options);
  if (!loop.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loop.status().message()).c_str());
    std::abort();
  }
  return *std::move(loop);
}

void BM_DequeOfStdFunction(benchmark::State& state) {
  std::deque<std::function<void()>> tasks;
  int64_t counter = 0;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) tasks.emplace_back([&counter] { ++counter; });
    while (!tasks.empty()) {
      std::function<void()> task = std::move(tasks.front());
      tasks.pop_front();
      task();
    }
  }
  benchmark::DoNotOptimize(counter);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_DequeOfStdFunction);

void CallSoonDispatch(benchmark::State& state, bool stall_watchdog) {
  auto loop = MakeLoop(stall_watchdog);
  int64_t counter = 0;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) loop->call_soon([&counter] { ++counter; });
    loop->run_once(Duration::zero());
  }
  benchmark::DoNotOptimize(counter);
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_CallSoonDispatch(benchmark::State& state) { CallSoonDispatch(state, true); }
BENCHMARK(BM_CallSoonDispatch);

// The watchdog's cost to a busy loop is what the loop does for it: per task nothing beyond
// the current-task publication it did anyway, per run_once two atomic exchanges; its thread
// looks once per stall threshold. This A/B shows it.
void BM_CallSoonDispatchWithoutWatchdog(benchmark::State& state) { CallSoonDispatch(state, false); }
BENCHMARK(BM_CallSoonDispatchWithoutWatchdog);

// A task that suspends at every step; the benchmark resumes it directly.
Task<> Stepper(int64_t* steps) {
  for (;;) {
    ++*steps;
    co_await std::suspend_always{};
  }
}

void BM_TaskResume(benchmark::State& state) {
  int64_t steps = 0;
  Task<> task = Stepper(&steps);
  std::coroutine_handle<> h = task.release();
  for (auto _ : state) h.resume();
  h.destroy();
  benchmark::DoNotOptimize(steps);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TaskResume);

Task<int> Leaf(int v) { co_return v; }

Task<> AwaitLeaves(int64_t n, int64_t* sum) {
  for (int64_t i = 0; i < n; ++i) *sum += co_await Leaf(1);
}

void BM_TaskCreateAwait(benchmark::State& state) {
  auto loop = MakeLoop();
  int64_t sum = 0;
  for (auto _ : state) run_until_complete(*loop, AwaitLeaves(kBatch, &sum));
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_TaskCreateAwait);

constexpr int kPendingTimers = 1'000'000;

void BM_TimerInsertCancel(benchmark::State& state) {
  TimerQueue timers;
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> deadline(1'000'000'000, 2'000'000'000);
  for (int i = 0; i < kPendingTimers; ++i) timers.schedule(deadline(rng), [] {}, "pending");
  for (auto _ : state) {
    TimerId id = timers.schedule(deadline(rng), [] {}, "bench");
    timers.cancel(id);
  }
  state.counters["pending"] = static_cast<double>(timers.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TimerInsertCancel);

void BM_LoopTimerInsertCancel(benchmark::State& state) {
  auto loop = MakeLoop();
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> delay_ms(60'000, 120'000);
  for (int i = 0; i < kPendingTimers; ++i) {
    loop->call_later(std::chrono::milliseconds(delay_ms(rng)), [] {}, "pending");
  }
  for (auto _ : state) {
    TimerHandle t = loop->call_later(std::chrono::milliseconds(delay_ms(rng)), [] {}, "bench");
    t.cancel();
  }
  state.counters["pending"] = static_cast<double>(loop->stats().pending_timers);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LoopTimerInsertCancel);

void BM_CallSoonThreadsafe(benchmark::State& state) {
  auto loop = MakeLoop();
  constexpr int64_t kPosts = 1'000'000;
  for (auto _ : state) {
    std::atomic<int64_t> ran{0};
    std::thread producer([&] {
      for (int64_t i = 0; i < kPosts; ++i) {
        loop->call_soon_threadsafe([&] {
          if (ran.fetch_add(1, std::memory_order_relaxed) + 1 == kPosts) loop->stop();
        });
      }
    });
    loop->run_forever();
    producer.join();
  }
  state.SetItemsProcessed(state.iterations() * kPosts);
}
BENCHMARK(BM_CallSoonThreadsafe)->Unit(benchmark::kMillisecond)->UseRealTime();

// What reading a loop thread's figures costs a reader on another thread (GetStats, a scrape):
// its CPU clock (a clock_gettime) and its run-queue wait (a /proc schedstat read: open, read,
// close), each per loop per read.
void BM_ThreadCpuClockRead(benchmark::State& state, bool run_queue_wait) {
  ThreadCpuClock clock;
  std::atomic<bool> following{false}, done{false};
  std::thread followed([&] {
    clock.follow_current_thread();
    following = true;
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (!following) std::this_thread::yield();
  for (auto _ : state) benchmark::DoNotOptimize(run_queue_wait ? clock.run_queue_wait_ns() : clock.total_ns());
  done = true;
  followed.join();
}
BENCHMARK_CAPTURE(BM_ThreadCpuClockRead, cpu, false);
BENCHMARK_CAPTURE(BM_ThreadCpuClockRead, run_queue_wait, true);

}  // namespace
}  // namespace brrr
