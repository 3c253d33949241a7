// sleep.h: a non-blocking sleep that parks only the calling task (asyncio.sleep).
//
//   co_await sleep(std::chrono::milliseconds(5));   // other tasks run meanwhile
//   co_await sleep(Duration::zero());               // yield: let everything ready run first
//
// Compare a busy-wait or std::this_thread::sleep_for, which hold the whole loop (and show up
// as stalls). Cancelling a sleeping task cancels its timer and throws CancelledError here.
// A sleep of zero (or less) takes no timer: the task goes to the back of the ready queue, so
// what was queued before it (a waiter a promise just woke) runs first, as asyncio.sleep(0)
// does; a cancel that comes meanwhile throws CancelledError when it resumes. A sleep past the
// clock's range (Duration::max()) lasts until the task is cancelled.
//
// Threads: inside a task, on its loop's thread.
#ifndef BRRR_RUNTIME_SLEEP_H_
#define BRRR_RUNTIME_SLEEP_H_

#include <coroutine>

#include "runtime/clock.h"
#include "runtime/event_loop.h"
#include "runtime/task_context.h"

namespace brrr {

class SleepAwaiter final : public Suspension {
 public:
  explicit SleepAwaiter(Duration delay) : delay_(delay) {}
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  ~SleepAwaiter() {
    if (timer_.pending()) timer_.cancel();
  }

  bool await_ready() const noexcept { return false; }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    context_ = h.promise().context();
    if (context_->take_cancel_request()) {
      cancelled_ = true;
      return false;
    }
    handle_ = h;
    if (delay_ <= Duration::zero()) {
      // A yield: nothing to cancel while queued (a cancel is taken on resuming).
      yielded_ = true;
      context_->schedule_resume(h);
      return true;
    }
    context_->set_suspension(this);
    timer_ = context_->loop().call_later(
        delay_,
        [this] {
          context_->set_suspension(nullptr);
          handle_.resume();
        },
        context_->label());
    return true;
  }

  void await_resume() const {
    if (cancelled_ || (yielded_ && context_->take_cancel_request())) context_->throw_cancelled();
  }

  void cancel_suspension() override {
    timer_.cancel();
    cancelled_ = true;
    context_->take_cancel_request();
    context_->set_suspension(nullptr);
    context_->schedule_resume(handle_);
  }

 private:
  Duration delay_;
  TaskContext* context_ = nullptr;
  std::coroutine_handle<> handle_;
  TimerHandle timer_;
  bool cancelled_ = false;
  bool yielded_ = false;  // a sleep of zero: resumed through the ready queue, not a timer
};

inline SleepAwaiter sleep(Duration delay) { return SleepAwaiter(delay); }

}  // namespace brrr

#endif  // BRRR_RUNTIME_SLEEP_H_
