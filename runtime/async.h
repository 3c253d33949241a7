// async.h: everything needed to write coroutines on brrr's event loop, in one include.
//
//   #include "runtime/async.h"
//   using namespace std::chrono_literals;
//
//   brrr::Task<int> slow_double(int x) { co_await brrr::sleep(10ms); co_return 2 * x; }
//   brrr::Task<int> main_task() {
//     auto [a, b] = co_await brrr::gather(slow_double(1), slow_double(2));  // concurrently
//     co_return a + b;
//   }
//   int main() {
//     auto loop = brrr::EventLoop::Create().value();
//     return brrr::run_until_complete(*loop, main_task()) == 6 ? 0 : 1;
//   }
#ifndef BRRR_RUNTIME_ASYNC_H_
#define BRRR_RUNTIME_ASYNC_H_

#include "runtime/create_task.h"  // IWYU pragma: export
#include "runtime/event.h"        // IWYU pragma: export
#include "runtime/event_loop.h"   // IWYU pragma: export
#include "runtime/future.h"       // IWYU pragma: export
#include "runtime/gather.h"       // IWYU pragma: export
#include "runtime/generator.h"    // IWYU pragma: export
#include "runtime/run_blocking.h" // IWYU pragma: export
#include "runtime/sleep.h"        // IWYU pragma: export
#include "runtime/task.h"         // IWYU pragma: export
#include "runtime/wait_for.h"     // IWYU pragma: export

#endif  // BRRR_RUNTIME_ASYNC_H_
