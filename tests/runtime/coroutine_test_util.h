// coroutine_test_util.h: a loop for coroutine tests and a helper to run a task on it.
#ifndef BRRR_TESTS_RUNTIME_COROUTINE_TEST_UTIL_H_
#define BRRR_TESTS_RUNTIME_COROUTINE_TEST_UTIL_H_

#include <memory>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "tests/testing/backends.h"

namespace brrr::testing {

// Coroutines do not depend on the backend (event_loop_test covers every one); these tests
// run on the default backend, in virtual time that jumps to the next timer whenever the loop
// is idle (ManualClock::AutoAdvance): a `co_await sleep(1ms)` resumes only once everything
// ready before it has settled, and no test depends on how fast the machine runs it.
class CoroutineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EventLoopOptions options;
    if (virtual_time_) options.manual_clock = &clock_;
    auto loop = EventLoop::Create(options);
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }
  template <typename T>
  T Run(Task<T> task) {
    return run_until_complete(*loop_, std::move(task));
  }
  EventLoop& loop() { return *loop_; }

  ManualClock clock_{ManualClock::AutoAdvance{}};
  bool virtual_time_ = true;
  std::unique_ptr<EventLoop> loop_;
};

// The same on the monotonic clock, for tests whose coroutines wait for work on another thread
// (run_blocking): virtual time does not move while such work runs, as tokio's paused clock.
class RealTimeCoroutineTest : public CoroutineTest {
 protected:
  RealTimeCoroutineTest() { virtual_time_ = false; }
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_RUNTIME_COROUTINE_TEST_UTIL_H_
