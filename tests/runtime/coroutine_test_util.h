// coroutine_test_util.h: a loop for coroutine tests and a helper to run a task on it.
#ifndef BRRR_TESTS_RUNTIME_COROUTINE_TEST_UTIL_H_
#define BRRR_TESTS_RUNTIME_COROUTINE_TEST_UTIL_H_

#include <memory>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "tests/testing/backends.h"

namespace brrr::testing {

// Coroutines do not depend on the backend (event_loop_test covers every one); these tests
// run on the default backend.
class CoroutineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }
  template <typename T>
  T Run(Task<T> task) {
    return run_until_complete(*loop_, std::move(task));
  }
  EventLoop& loop() { return *loop_; }

  std::unique_ptr<EventLoop> loop_;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_RUNTIME_COROUTINE_TEST_UTIL_H_
