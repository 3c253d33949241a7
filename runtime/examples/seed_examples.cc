#include "runtime/examples/seed_examples.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/async.h"

namespace brrr::seed {
namespace {

using std::chrono::milliseconds;

// Runs the loop until it has nothing left to do: no ready task, no timer, no task alive.
void RunUntilIdle(EventLoop& loop) {
  for (;;) {
    LoopStats s = loop.stats();
    if (s.iterations > 0 && s.ready_queue_depth == 0 && s.pending_timers == 0 && s.live_tasks == 0 &&
        s.threadsafe_queue_depth == 0) {
      return;
    }
    loop.run_once(std::chrono::seconds(1));
  }
}

}  // namespace

// The tutorial's busy-wait: holds the thread, and with it the loop, for `delay`.
void BusyWait(Duration delay) {
  TimePoint until = Clock::now() + delay;
  while (Clock::now() < until) {
  }
}

void ThreadSleep(Duration delay) { std::this_thread::sleep_for(delay); }

void NonBlockingTasks(EventLoop& loop, const Print& print) {
  // Each call does one step, then schedules the next: add_task(task1, cnt + 1).
  std::function<void(int, int)> task = [&](int id, int cnt) {
    print(absl::StrCat("Task ", id, " ", cnt));
    if (cnt == 5) return;
    loop.call_soon([&task, id, cnt] { task(id, cnt + 1); }, "seed:task");
  };
  loop.call_soon([&] { task(1, 1); }, "seed:task1");
  loop.call_soon([&] { task(2, 1); }, "seed:task2");
  RunUntilIdle(loop);
}

void BlockingTasks(EventLoop& loop, const Print& print) {
  auto task = [&](int id, int cnt) {
    for (int i = 0; i < cnt; ++i) print(absl::StrCat("Task ", id, " ", i + 1));
  };
  loop.call_soon([&] { task(1, 5); }, "seed:task1");
  loop.call_soon([&] { task(2, 5); }, "seed:task2");
  RunUntilIdle(loop);
}

void BlockingSleep(EventLoop& loop, Duration delay, const Print& print, const Hold& hold) {
  loop.call_soon(
      [&] {
        print("Let's annoy the other task");
        hold(delay);
      },
      "seed:busy_wait");
  loop.call_soon([&] { print("Let's wait :("); }, "seed:waiter");
  RunUntilIdle(loop);
}

void NonBlockingSleep(EventLoop& loop, Duration delay, const Print& print) {
  loop.call_soon(
      [&] {
        print("Let's annoy the other task");
        loop.call_later(delay, [&] { print("Failed to annoy the other task :("); }, "seed:task3");
      },
      "seed:task1");
  loop.call_soon([&] { print("I didn't wait :)"); }, "seed:task2");
  RunUntilIdle(loop);
}

void CoroutineSleeps(EventLoop& loop, Duration delay, const Print& print, const Hold& hold) {
  auto blocking = [&]() -> Task<> {
    print("time.sleep: Let's annoy the other task");
    hold(delay);
    print("time.sleep: done");
    co_return;
  };
  auto non_blocking = [&]() -> Task<> {
    print("asyncio.sleep: Let's annoy the other task");
    co_await sleep(delay);
    print("asyncio.sleep: Failed to annoy the other task :(");
  };
  auto other = [&](const char* which) -> Task<> {
    print(absl::StrCat(which, ": the other task ran"));
    co_return;
  };
  auto both = [&]() -> Task<> {
    co_await gather(blocking(), other("time.sleep"));
    co_await gather(non_blocking(), other("asyncio.sleep"));
  };
  run_until_complete(loop, both());
}

void CoroutineRunsWhenAwaited(EventLoop& loop, const Print& print) {
  auto fn = [&]() -> Task<> {
    print("Here's your co-routine sir/ma'am");
    co_return;
  };
  auto run = [&]() -> Task<> {
    Task<> a = fn();
    print("<coroutine object fn> (created, not awaited)");
    co_await sleep(milliseconds(10));  // the tutorial's time.sleep(5): still not running
    print("awaiting it now");
    co_await std::move(a);
  };
  run_until_complete(loop, run());
}

void FutureSetLater(EventLoop& loop, const Print& print) {
  auto run = [&]() -> Task<> {
    Promise<int> promise;
    Future<int> future = promise.get_future();
    print(future.ToString());
    promise.set_result(50);
    print(future.ToString());
    int res = co_await future;
    print(absl::StrCat(res));
  };
  run_until_complete(loop, run());
}

void GatherThree(EventLoop& loop, const Print& print) {
  auto fetch_data = [&](int index, Duration latency) -> Task<int> {
    print(absl::StrCat("Start async task: ", index));
    co_await sleep(latency);  // the request's round trip
    print(absl::StrCat("Finished async task: ", index));
    co_return index * 10;
  };
  auto run = [&]() -> Task<> {
    auto [a, b, c] = co_await gather(fetch_data(1, milliseconds(30)), fetch_data(2, milliseconds(10)),
                                     fetch_data(3, milliseconds(20)));
    print(absl::StrCat("Results: ", a, " ", b, " ", c));
  };
  run_until_complete(loop, run());
}

void GeneratorOneToNine(const Print& print) {
  auto task = []() -> Generator<int> {
    for (int i = 1; i < 10; ++i) co_yield i;
  };
  Generator<int> t = task();
  print("<generator object task>");
  for (int i : t) print(absl::StrCat(i));
}

}  // namespace brrr::seed
