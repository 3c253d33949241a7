// future.h: Future<T>, a value that is set later, and Promise<T>, the side that sets it.
//
// As in asyncio: a future is pending, then finished with a result, with an exception, or
// cancelled. Awaiting it suspends the awaiting task until it finishes and then yields the
// result (or rethrows). Done-callbacks and waiting tasks are resumed through the loop's ready
// queue, never inline, so setting a result never runs other code on the setter's stack.
// create_task() returns a Future<T> for the task's result; cancelling that future cancels the
// task.
//
//   Promise<int> promise;                      // on the current loop
//   Future<int> future = promise.get_future();
//   future.ToString();                         // "<Future pending>"
//   promise.set_result(50);
//   future.ToString();                         // "<Future finished result=50>"
//   int v = co_await future;                   // 50
//
// A task that awaits its own future (create_task's), in its own body or in a coroutine it
// awaits, gets std::logic_error there instead of waiting for ever.
//
// Future is a cheap shared handle (copies see the same state). Awaiting a future of a
// copyable T yields a copy; a move-only T is moved out, so such a future is awaited once.
// A Promise destroyed without setting anything fails its future with BrokenPromiseError,
// so no waiter hangs forever.
//
// Threads: a future belongs to its loop's thread. From another thread, set it through
// loop.call_soon_threadsafe.
//
// Lifetime: done-callbacks run on the future's loop. Finishing a future that has some
// (setting, failing or cancelling it, or destroying its Promise unset) queues them there, as
// add_done_callback on a finished future does: neither may happen once the loop is destroyed
// (the loop's memory would be used). A Promise that outlives its loop must be finished before
// it, or have no done-callbacks; a finished future may still be read.
#ifndef BRRR_RUNTIME_FUTURE_H_
#define BRRR_RUNTIME_FUTURE_H_

#include <algorithm>
#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "runtime/callback.h"
#include "runtime/event_loop.h"
#include "runtime/task_context.h"

namespace brrr {

// The future's promise was destroyed before it set a result.
class BrokenPromiseError : public std::logic_error {
 public:
  BrokenPromiseError() : std::logic_error("brrr: promise destroyed without setting a result") {}
};

// Future::result() was called on a pending future.
class InvalidStateError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

// Something waiting for a future: told once, when it finishes.
class FutureWaiter {
 public:
  virtual void on_future_done() = 0;

 protected:
  ~FutureWaiter() = default;
};

class FutureStateBase {
 public:
  enum class Status { kPending, kResult, kException, kCancelled };

  explicit FutureStateBase(EventLoop& loop) : loop_(loop) {}
  virtual ~FutureStateBase() = default;

  EventLoop& loop() const { return loop_; }
  Status status() const { return status_; }
  bool done() const { return status_ != Status::kPending; }
  const std::exception_ptr& error() const { return error_; }

  void add_done_callback(Callback cb, TaskLabel label) {
    if (done()) {
      loop_.call_soon(std::move(cb), label);
    } else {
      callbacks_.push_back({std::move(cb), label});
    }
  }
  void add_waiter(FutureWaiter* w) { waiters_.push_back(w); }
  void remove_waiter(FutureWaiter* w) { std::erase(waiters_, w); }

  // The task whose result this is, if any (cancel() cancels it), until it finishes.
  void set_task(TaskContext* task) { task_ = task; }
  const TaskContext* task() const { return task_; }

  bool cancel() {
    if (done()) return false;
    if (task_ != nullptr) return task_->cancel();  // finishes when the task does
    fail(std::make_exception_ptr(CancelledError()));
    return true;
  }

  // Finishes with an exception (CancelledError means cancelled).
  void fail(std::exception_ptr error) {
    if (done()) return;
    status_ = Status::kException;
    try {
      std::rethrow_exception(error);
    } catch (const CancelledError&) {
      status_ = Status::kCancelled;
    } catch (...) {
    }
    error_ = std::move(error);
    notify();
  }

 protected:
  // Marks the result set and wakes everything waiting.
  void finish_with_result() {
    status_ = Status::kResult;
    notify();
  }

  void rethrow_if_failed() const {
    if (status_ == Status::kPending) throw InvalidStateError("brrr: the future is still pending");
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void notify() {
    task_ = nullptr;
    for (auto& [cb, label] : callbacks_) loop_.call_soon(std::move(cb), label);
    callbacks_.clear();
    std::vector<FutureWaiter*> waiters;
    waiters.swap(waiters_);
    for (FutureWaiter* w : waiters) w->on_future_done();
  }

  EventLoop& loop_;
  Status status_ = Status::kPending;
  std::exception_ptr error_;
  std::vector<std::pair<Callback, TaskLabel>> callbacks_;
  std::vector<FutureWaiter*> waiters_;
  TaskContext* task_ = nullptr;
};

template <typename T>
class FutureState : public FutureStateBase {
 public:
  using FutureStateBase::FutureStateBase;
  using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

  template <typename... Args>
  void set_value(Args&&... args) {
    if (done()) return;
    value_.emplace(std::forward<Args>(args)...);
    finish_with_result();
  }

  // For awaiting: a copy when T is copyable, else the value itself (moved out).
  T get() {
    rethrow_if_failed();
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_copy_constructible_v<T>) {
      return *value_;
    } else {
      return std::move(*value_);
    }
  }

  const Stored& peek() const {
    rethrow_if_failed();
    return *value_;
  }

  Stored take() {
    rethrow_if_failed();
    return std::move(*value_);
  }

 private:
  std::optional<Stored> value_;
};

// Awaits a future. kYieldResult: yields its result; else only waits until it is done.
template <typename T, bool kYieldResult>
class FutureAwaiter final : public Suspension, public FutureWaiter {
 public:
  explicit FutureAwaiter(std::shared_ptr<FutureState<T>> state) : state_(std::move(state)) {}
  FutureAwaiter(const FutureAwaiter&) = delete;
  FutureAwaiter& operator=(const FutureAwaiter&) = delete;
  ~FutureAwaiter() {
    if (waiting_) state_->remove_waiter(this);
  }

  bool await_ready() const noexcept { return state_->done(); }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    context_ = h.promise().context();
    // Its own end, which could then never come (asyncio: "Task cannot await on itself").
    if (state_->task() == context_) {
      throw std::logic_error("brrr: a task cannot await its own future: it would wait for ever");
    }
    if (context_->take_cancel_request()) {
      cancelled_ = true;
      return false;
    }
    handle_ = h;
    state_->add_waiter(this);
    waiting_ = true;
    context_->set_suspension(this);
    return true;
  }

  auto await_resume() {
    if (cancelled_) context_->throw_cancelled();
    if constexpr (kYieldResult) {
      return state_->get();
    }
  }

  void on_future_done() override {
    waiting_ = false;
    context_->set_suspension(nullptr);
    context_->schedule_resume(handle_);
  }

  void cancel_suspension() override {
    state_->remove_waiter(this);
    waiting_ = false;
    cancelled_ = true;
    context_->take_cancel_request();
    context_->set_suspension(nullptr);
    context_->schedule_resume(handle_);
  }

 private:
  std::shared_ptr<FutureState<T>> state_;
  TaskContext* context_ = nullptr;
  std::coroutine_handle<> handle_;
  bool waiting_ = false;
  bool cancelled_ = false;
};

template <typename T>
std::string DescribeValue(const T& value) {
  if constexpr (requires(std::ostream& os) { os << value; }) {
    std::ostringstream os;
    os << value;
    return os.str();
  } else {
    return "...";
  }
}

}  // namespace detail

// The type-independent part of a future handle.
class FutureBase {
 public:
  bool valid() const { return state_ != nullptr; }
  bool done() const { return state_->done(); }
  bool cancelled() const { return state_->status() == detail::FutureStateBase::Status::kCancelled; }
  bool failed() const { return state_->status() == detail::FutureStateBase::Status::kException; }
  // The exception it finished with (CancelledError when cancelled), else null.
  std::exception_ptr exception() const { return state_->error(); }
  EventLoop& loop() const { return state_->loop(); }

  // Runs cb on the loop (via the ready queue) once the future is done; soon, if it already is.
  void add_done_callback(Callback cb, TaskLabel label = std::source_location::current()) {
    state_->add_done_callback(std::move(cb), label);
  }

  // Cancels the future, or the task behind it. False if it is already done.
  bool cancel() { return state_->cancel(); }

 protected:
  explicit FutureBase(std::shared_ptr<detail::FutureStateBase> state) : state_(std::move(state)) {}
  FutureBase() = default;
  std::shared_ptr<detail::FutureStateBase> state_;
};

template <typename T = void>
class Future : public FutureBase {
 public:
  Future() = default;
  explicit Future(std::shared_ptr<detail::FutureState<T>> state)
      : FutureBase(state), typed_(std::move(state)) {}

  // The result (rethrows the exception, CancelledError if cancelled). Throws
  // InvalidStateError while pending.
  decltype(auto) result() const {
    if constexpr (std::is_void_v<T>) {
      typed_->peek();
    } else {
      return typed_->peek();
    }
  }

  // Moves the result out (for move-only T).
  T take_result() {
    if constexpr (std::is_void_v<T>) {
      typed_->take();
    } else {
      return typed_->take();
    }
  }

  // "<Future pending>", "<Future finished result=50>", "<Future cancelled>",
  // "<Future finished exception=...>".
  std::string ToString() const {
    switch (typed_->status()) {
      case detail::FutureStateBase::Status::kPending:
        return "<Future pending>";
      case detail::FutureStateBase::Status::kCancelled:
        return "<Future cancelled>";
      case detail::FutureStateBase::Status::kException:
        try {
          std::rethrow_exception(typed_->error());
        } catch (const std::exception& e) {
          return std::string("<Future finished exception=") + e.what() + ">";
        } catch (...) {
          return "<Future finished exception=...>";
        }
      case detail::FutureStateBase::Status::kResult:
        if constexpr (std::is_void_v<T>) {
          return "<Future finished result=None>";
        } else {
          return "<Future finished result=" + detail::DescribeValue(typed_->peek()) + ">";
        }
    }
    return "<Future>";
  }

  auto operator co_await() const { return detail::FutureAwaiter<T, true>(typed_); }

  // An awaitable that waits for the future to finish without yielding or rethrowing its
  // result; it throws only if the awaiting task is cancelled.
  auto wait() const { return detail::FutureAwaiter<T, false>(typed_); }

  const std::shared_ptr<detail::FutureState<T>>& state() const { return typed_; }

 private:
  std::shared_ptr<detail::FutureState<T>> typed_;
};

template <typename T = void>
class Promise {
 public:
  // A promise on `loop`; by default the loop running on this thread.
  Promise() : Promise(CurrentLoopOrDie()) {}
  explicit Promise(EventLoop& loop) : state_(std::make_shared<detail::FutureState<T>>(loop)) {}
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      abandon();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() { abandon(); }

  Future<T> get_future() const { return Future<T>(state_); }

  // Each of these finishes the future; once it is done, further calls are ignored.
  template <typename... Args>
  void set_result(Args&&... args) {
    state_->set_value(std::forward<Args>(args)...);
  }
  void set_exception(std::exception_ptr error) { state_->fail(std::move(error)); }

 private:
  static EventLoop& CurrentLoopOrDie();
  void abandon() {
    if (state_ && !state_->done()) state_->fail(std::make_exception_ptr(BrokenPromiseError()));
  }

  std::shared_ptr<detail::FutureState<T>> state_;
};

template <typename T>
EventLoop& Promise<T>::CurrentLoopOrDie() {
  EventLoop* loop = EventLoop::current();
  if (loop == nullptr) {
    throw std::logic_error("brrr: Promise() needs a running event loop; pass the loop explicitly");
  }
  return *loop;
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_FUTURE_H_
