// seed_examples.h: the examples of the tutorial brrr grew out of ("Making your server go
// Brrrrrrrr", ../shared/seed/), rewritten on brrr's runtime. Each prints through `print`, so
// the demo (seed_demo.cc) writes them to stdout and tests/seed asserts the printed order.
//
// Threads: each function runs the given loop on the calling thread until its example ends.
#ifndef BRRR_RUNTIME_EXAMPLES_SEED_EXAMPLES_H_
#define BRRR_RUNTIME_EXAMPLES_SEED_EXAMPLES_H_

#include <functional>
#include <string>

#include "runtime/clock.h"
#include "runtime/event_loop.h"

namespace brrr::seed {

using Print = std::function<void(const std::string& line)>;

// What holding the thread for a while does: by default what the tutorial does (a busy-wait,
// a thread sleep). Tests pass one that advances a ManualClock instead, so the stall it makes
// is exactly `delay` long whatever the machine's load.
using Hold = std::function<void(Duration delay)>;
void BusyWait(Duration delay);
void ThreadSleep(Duration delay);

// (1) Two tasks that reschedule themselves interleave: "Task 1 1", "Task 2 1", "Task 1 2"...
void NonBlockingTasks(EventLoop& loop, const Print& print);

// (2) Two tasks that do all their work in one go: all of task 1, then all of task 2.
void BlockingTasks(EventLoop& loop, const Print& print);

// (3a) A busy-wait "sleep" of `delay` holds the loop: the other task waits it out.
void BlockingSleep(EventLoop& loop, Duration delay, const Print& print, const Hold& hold = BusyWait);

// (3b) A scheduled continuation lets the other task run first:
// "Let's annoy the other task", "I didn't wait :)", "Failed to annoy the other task :(".
void NonBlockingSleep(EventLoop& loop, Duration delay, const Print& print);

// (3c) The same two sleeps as coroutines: std::this_thread::sleep_for vs co_await sleep().
void CoroutineSleeps(EventLoop& loop, Duration delay, const Print& print, const Hold& hold = ThreadSleep);

// (4) A coroutine that is created but not awaited does not run until it is awaited.
void CoroutineRunsWhenAwaited(EventLoop& loop, const Print& print);

// (5) A future: "<Future pending>", "<Future finished result=50>", "50".
void FutureSetLater(EventLoop& loop, const Print& print);

// (6) gather over three concurrent operations: all three start before any finishes. The
// operations are local (timers of different lengths), not requests to the internet.
void GatherThree(EventLoop& loop, const Print& print);

// (7) A generator yields 1..9 to the loop that drives it.
void GeneratorOneToNine(const Print& print);

}  // namespace brrr::seed

#endif  // BRRR_RUNTIME_EXAMPLES_SEED_EXAMPLES_H_
