// task.h: Task<T>, a lazily started coroutine that returns T.
//
// Like a Python coroutine object, calling a Task-returning function runs nothing: the body
// starts when the task is awaited (it then runs as part of the awaiting task) or handed to
// create_task() (it then runs concurrently, as its own task on the loop).
//
//   Task<int> answer() { co_await sleep(10ms); co_return 42; }
//   Task<> run() {
//     Task<int> t = answer();          // not running yet
//     int v = co_await std::move(t);   // runs now; v == 42
//   }
//
// Awaiting a child resumes the parent directly when the child finishes (symmetric transfer:
// no trip through the ready queue). An exception thrown in the child is rethrown from the
// parent's co_await.
//
// Stack depth: g++ turns symmetric transfer into a tail call, so a loop that awaits a million
// children that finish at once runs in constant stack, but only with
// -foptimize-sibling-calls (every brrr target has it, at every -O level). ASan's stack
// instrumentation and TSan's function hooks prevent that tail call: under those sanitizers
// each such await nests a call, so very long chains of awaits that never suspend can exhaust
// the stack. Awaits that suspend (I/O, sleep, futures) return to the loop and never nest.
//
// Threads: a task runs on one loop's thread. Ownership: a Task owns its coroutine frame until
// it is awaited to completion or handed to create_task().
#ifndef BRRR_RUNTIME_TASK_H_
#define BRRR_RUNTIME_TASK_H_

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "runtime/task_context.h"

namespace brrr {

template <typename T = void>
class Task;

namespace detail {

class TaskPromiseBase {
 public:
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      TaskPromiseBase& p = h.promise();
      if (p.continuation_) return p.continuation_;
      // The top of a running task: its context takes the result and frees the frame.
      p.context_->finish_root();
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { error_ = std::current_exception(); }

  TaskContext* context() const { return context_; }

  std::coroutine_handle<> continuation_;
  TaskContext* context_ = nullptr;
  std::exception_ptr error_;
};

template <typename T>
class TaskPromise : public TaskPromiseBase {
 public:
  template <typename U>
    requires std::is_constructible_v<T, U&&>
  void return_value(U&& value) {
    value_.emplace(std::forward<U>(value));
  }

  // Rethrows the coroutine's exception, else moves its result out.
  T take_result() {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class TaskPromise<void> : public TaskPromiseBase {
 public:
  void return_void() noexcept {}
  void take_result() {
    if (error_) std::rethrow_exception(error_);
  }
};

}  // namespace detail

template <typename T>
class [[nodiscard]] Task {
 public:
  using value_type = T;

  struct promise_type : detail::TaskPromise<T> {
    Task get_return_object() noexcept {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
  };
  using Handle = std::coroutine_handle<promise_type>;

  Task() noexcept = default;
  explicit Task(Handle h) noexcept : handle_(h) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  bool valid() const { return static_cast<bool>(handle_); }

  // Gives up ownership of the frame (create_task takes it).
  Handle release() { return std::exchange(handle_, {}); }

  class Awaiter {
   public:
    explicit Awaiter(Handle child) : child_(child) {}
    bool await_ready() const noexcept { return child_.done(); }
    template <typename ParentPromise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<ParentPromise> parent) noexcept {
      child_.promise().continuation_ = parent;
      child_.promise().context_ = parent.promise().context();
      return child_;
    }
    T await_resume() { return child_.promise().take_result(); }

   private:
    Handle child_;
  };

  // Awaiting runs the task inside the awaiting one and yields its result. Awaiting a Task with
  // no frame (default-constructed, or moved from: handed to create_task, say) throws
  // std::logic_error, as does awaiting one that is already running (awaited and not finished:
  // a coroutine awaiting itself or one that awaits it, or a Task awaited twice at once).
  Awaiter operator co_await() && {
    if (!handle_) throw std::logic_error("brrr: awaiting a Task that holds no coroutine (moved from?)");
    // Set when it is awaited (Awaiter::await_suspend) or started by create_task.
    if (handle_.promise().context_ != nullptr && !handle_.done()) {
      throw std::logic_error(
          "brrr: awaiting a Task that is already running (a coroutine awaiting itself or what awaits it, or a "
          "Task awaited twice)");
    }
    return Awaiter(handle_);
  }

 private:
  void reset() {
    if (handle_) handle_.destroy();
    handle_ = {};
  }

  Handle handle_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_TASK_H_
