// task_context.h: the state a running coroutine task shares with every await inside it.
//
// create_task() turns a Task<T> into a running task with one TaskContext: the loop it runs
// on, its label, and its cancellation state. Child coroutines it awaits share the context,
// so a cancellation reaches whatever the task is awaiting, however deep.
//
// Cancellation (asyncio's model): cancel() is a request. If the task is suspended at an await
// that supports it (sleep, a future, I/O, run_blocking), that await releases what it holds
// (its timer, its pending I/O) and the task resumes there with CancelledError thrown. If the
// task is running or about to resume, the next await that would suspend throws instead. A
// task cancelled before it ever ran finishes cancelled without running. The request is
// delivered once: code that catches CancelledError may go on (to clean up, say). Requests made
// while a CancelledError is on its way to the task (taken by an await, not yet thrown) are that
// same request, as asyncio counts them: a wait_for's limit and its caller's cancel coming
// together do not interrupt the cleanup the first one started.
//
// For authors of awaitables: in await_suspend, call take_cancel_request() (true: do not
// suspend, throw from await_resume through throw_cancelled()), else set_suspension(this) and,
// when done, set_suspension(nullptr) and resume through schedule_resume() or a timer. A
// request taken ends in throw_cancelled(), which marks it delivered.
//
// Threads: loop thread only.
#ifndef BRRR_RUNTIME_TASK_CONTEXT_H_
#define BRRR_RUNTIME_TASK_CONTEXT_H_

#include <coroutine>
#include <exception>

#include "runtime/event_loop.h"
#include "runtime/task_label.h"

namespace brrr {

// Thrown at the await point of a cancelled task.
class CancelledError : public std::exception {
 public:
  const char* what() const noexcept override { return "brrr: the task was cancelled"; }
};

// An await point that a cancellation can interrupt.
class Suspension {
 public:
  // Release what the await holds and arrange for the task to resume and throw
  // CancelledError (or, for I/O that already finished, to resume with its result).
  virtual void cancel_suspension() = 0;

 protected:
  ~Suspension() = default;
};

class TaskContext {
 public:
  TaskContext(EventLoop& loop, TaskLabel label) : loop_(loop), label_(label) {}
  TaskContext(const TaskContext&) = delete;
  TaskContext& operator=(const TaskContext&) = delete;

  EventLoop& loop() const { return loop_; }
  const TaskLabel& label() const { return label_; }
  bool done() const { return done_; }

  // Requests cancellation. False if the task has already finished.
  bool cancel() {
    if (done_) return false;
    if (cancel_taken_) return true;  // a CancelledError is already on its way
    cancel_requested_ = true;
    if (suspension_ != nullptr) suspension_->cancel_suspension();
    return true;
  }
  bool cancel_requested() const { return cancel_requested_; }

  // Consumes a pending request: true means the caller must throw_cancelled() at its await.
  bool take_cancel_request() {
    if (!cancel_requested_) return false;
    cancel_requested_ = false;
    cancel_taken_ = true;
    return true;
  }
  // Throws the CancelledError of the request taken; a cancel() from here on is a new request.
  [[noreturn]] void throw_cancelled() {
    cancel_taken_ = false;
    throw CancelledError();
  }

  void set_suspension(Suspension* s) { suspension_ = s; }

  // Queues h.resume() on this task's loop, labelled as this task.
  void schedule_resume(std::coroutine_handle<> h) {
    loop_.call_soon([h] { h.resume(); }, label_);
  }

  // The task's top coroutine reached its final suspend point.
  virtual void finish_root() = 0;
  // The loop is being destroyed with this task unfinished.
  virtual void destroy_unfinished() = 0;

 protected:
  virtual ~TaskContext() = default;
  bool done_ = false;

 private:
  friend class EventLoop;  // links live tasks into its list

  EventLoop& loop_;
  TaskLabel label_;
  bool cancel_requested_ = false;
  bool cancel_taken_ = false;  // taken by an await, its CancelledError not yet thrown
  Suspension* suspension_ = nullptr;
  TaskContext* prev_task_ = nullptr;
  TaskContext* next_task_ = nullptr;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_TASK_CONTEXT_H_
