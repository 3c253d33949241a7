// loop_hold.h: holds an event loop's thread in a task of the test's. While it holds, whatever
// the test posts runs in the loop's next iterations, in the order posted, and no timer of the
// loop fires: a test lines up, in one iteration, things a loaded machine may line up.
//
//   testing::LoopHold hold;
//   ASSERT_TRUE(loop.call_soon_threadsafe(hold.task(), "test:hold"));  // or call_soon, on the loop
//   hold.wait_until_held();
//   ...                                                                // post what must run together
//   hold.release();
//
// Threads: the task runs on the loop's thread; the rest from the test's. Post the task once.
#ifndef BRRR_TESTS_TESTING_LOOP_HOLD_H_
#define BRRR_TESTS_TESTING_LOOP_HOLD_H_

#include <cstdint>
#include <future>
#include <memory>

#include "runtime/clock.h"

namespace brrr::testing {

class LoopHold {
 public:
  LoopHold() : state_(std::make_shared<State>()), held_(state_->held.get_future()) {
    state_->released = state_->release.get_future().share();
  }
  ~LoopHold() { release(); }
  LoopHold(const LoopHold&) = delete;
  LoopHold& operator=(const LoopHold&) = delete;

  // The task that holds the loop until release(). It owns what it uses: a loop that runs it
  // after the hold is gone returns at once.
  auto task() {
    return [state = state_] {
      state->held_at_ns = MonotonicNanos();
      state->held.set_value();
      state->released.wait();
    };
  }
  void wait_until_held() { held_.wait(); }
  // When the loop reached the task (MonotonicNanos); after wait_until_held().
  int64_t held_at_ns() const { return state_->held_at_ns; }
  void release() {
    if (!released_) state_->release.set_value();
    released_ = true;
  }

 private:
  struct State {
    std::promise<void> held;
    std::promise<void> release;
    std::shared_future<void> released;
    int64_t held_at_ns = 0;
  };
  std::shared_ptr<State> state_;
  std::future<void> held_;
  bool released_ = false;
};

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_LOOP_HOLD_H_
