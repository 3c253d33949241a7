// create_task.h: run a coroutine concurrently as a task of its own, or run one to completion.
//
//   Future<int> f = create_task(compute(), "compute");  // scheduled; runs when the loop does
//   f.cancel();                                          // cancels the task
//   int v = run_until_complete(loop, compute());         // drives the loop until it finishes
//
// A task starts on the loop's next iteration (like asyncio.create_task), so the caller keeps
// running until it awaits. The future finishes when the coroutine does: with its result, its
// exception, or cancelled. A task keeps running if its future is dropped; it is destroyed
// with the loop if the loop goes away first.
//
// Threads: loop thread (or the thread that owns a loop not yet running).
#ifndef BRRR_RUNTIME_CREATE_TASK_H_
#define BRRR_RUNTIME_CREATE_TASK_H_

#include <memory>
#include <source_location>
#include <stdexcept>
#include <utility>

#include "runtime/event_loop.h"
#include "runtime/future.h"
#include "runtime/task.h"
#include "runtime/task_context.h"
#include "runtime/internal/loop_internals.h"

namespace brrr {
namespace detail {

// A running task: owns the top coroutine frame until it finishes, then completes the future
// and deletes itself.
template <typename T>
class RunningTask final : public TaskContext {
 public:
  RunningTask(EventLoop& loop, Task<T> task, TaskLabel label)
      : TaskContext(loop, label),
        handle_(task.release()),
        state_(std::make_shared<FutureState<T>>(loop)) {
    handle_.promise().context_ = this;
    state_->set_task(this);
    LoopInternals::register_task(loop, this);
  }

  Future<T> future() const { return Future<T>(state_); }

  void start() {
    loop().call_soon([this] { first_step(); }, label());
  }

  void finish_root() override {
    // Called from the frame's final suspend point: the frame may be destroyed here.
    try {
      if constexpr (std::is_void_v<T>) {
        handle_.promise().take_result();
        state_->set_value();
      } else {
        state_->set_value(handle_.promise().take_result());
      }
    } catch (...) {
      state_->fail(std::current_exception());
    }
    finish();
  }

  void destroy_unfinished() override {
    state_->fail(std::make_exception_ptr(CancelledError()));
    finish();
  }

 private:
  void first_step() {
    if (take_cancel_request()) {  // cancelled before it ever ran
      state_->fail(std::make_exception_ptr(CancelledError()));
      finish();
      return;
    }
    handle_.resume();
  }

  // Destroys the frame first: the destructors of a suspended frame's awaiters still use this
  // context. (From finish_root, destroying the frame at its final suspend point is allowed:
  // nothing touches it afterwards.)
  void finish() {
    done_ = true;
    std::exchange(handle_, {}).destroy();
    LoopInternals::unregister_task(loop(), this);
    delete this;
  }

  typename Task<T>::Handle handle_;
  std::shared_ptr<FutureState<T>> state_;
};

inline EventLoop& CurrentLoopOrThrow(const char* what) {
  EventLoop* loop = EventLoop::current();
  if (loop == nullptr) {
    throw std::logic_error(std::string("brrr: ") + what +
                           " needs a running event loop on this thread; pass the loop explicitly");
  }
  return *loop;
}

}  // namespace detail

template <typename T>
Future<T> create_task(EventLoop& loop, Task<T> task,
                      TaskLabel label = std::source_location::current()) {
  LoopInternals::check_thread(loop, "create_task");
  if (!task.valid()) throw std::logic_error("brrr: create_task of a Task that holds no coroutine (moved from?)");
  auto* running = new detail::RunningTask<T>(loop, std::move(task), label);
  Future<T> future = running->future();
  running->start();
  return future;
}

// On the loop running on this thread.
template <typename T>
Future<T> create_task(Task<T> task, TaskLabel label = std::source_location::current()) {
  return create_task(detail::CurrentLoopOrThrow("create_task"), std::move(task), label);
}

// Runs the loop until `task` finishes; returns its result or rethrows its exception.
template <typename T>
T run_until_complete(EventLoop& loop, Task<T> task,
                     TaskLabel label = std::source_location::current()) {
  Future<T> future = create_task(loop, std::move(task), label);
  loop.run_until_complete(future);
  if (!future.done()) {
    throw std::runtime_error("brrr: the event loop stopped before the task finished");
  }
  return future.take_result();
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_CREATE_TASK_H_
