// run_blocking.h: run blocking work on the loop's worker pool and await its result
// (asyncio.to_thread).
//
//   std::string body = co_await run_blocking([&] { return read_whole_file(path); });
//
// The calling task is parked; the loop keeps serving everything else; when the work is done
// the task resumes on its own loop's thread with the result (or the work's exception).
// Cancelling the task resumes it at once with CancelledError; the work itself cannot be
// interrupted, so it runs to the end and its result is discarded. When the pool has no thread
// and the system refuses it one, the await throws std::runtime_error and the work never runs.
// Awaited once its loop is being destroyed (from a destructor of what the loop drops), the
// work is dropped unrun and the task is destroyed unfinished with the loop's others.
//
// With g++ 12 (Debian 12's), a lambda written inside the co_await expression has its captures
// destroyed twice when the work is dropped (the loop destroyed first): a capture that owns
// something (`[s = std::move(s)]`) is freed twice. Build such a lambda on a line of its own:
//
//   auto work = [s = std::move(s)] { return parse(s); };
//   auto result = co_await run_blocking(std::move(work));
//
// Threads: await from a task; `fn` runs on a pool thread and must not touch loop-owned state.
#ifndef BRRR_RUNTIME_RUN_BLOCKING_H_
#define BRRR_RUNTIME_RUN_BLOCKING_H_

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "runtime/blocking_pool.h"
#include "runtime/event_loop.h"
#include "runtime/internal/loop_internals.h"
#include "runtime/task_context.h"

namespace brrr {
namespace detail {

// Shared by the awaiting task and the pool job; touched on the loop thread except `value` and
// `error`, which the job writes before posting to the loop (the post orders the accesses).
template <typename R>
struct BlockingCall {
  std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>> value;
  std::exception_ptr error;
  TaskContext* context = nullptr;
  std::coroutine_handle<> handle;
  bool abandoned = false;  // the awaiting task was cancelled or destroyed
};

template <typename F>
class BlockingAwaiter final : public Suspension {
 public:
  using Result = std::invoke_result_t<F&>;

  explicit BlockingAwaiter(F fn) : fn_(std::move(fn)), call_(std::make_shared<BlockingCall<Result>>()) {}
  BlockingAwaiter(const BlockingAwaiter&) = delete;
  BlockingAwaiter& operator=(const BlockingAwaiter&) = delete;
  ~BlockingAwaiter() { call_->abandoned = true; }

  bool await_ready() const noexcept { return false; }

  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) {
    TaskContext* context = h.promise().context();
    call_->context = context;  // before a cancel's throw_cancelled() needs it
    if (context->take_cancel_request()) {
      cancelled_ = true;
      return false;
    }
    call_->handle = h;
    EventLoop* loop = &context->loop();
    absl::Status queued = LoopInternals::blocking_pool(*loop).submit([call = call_, fn = std::move(fn_), loop,
                                                                      label = context->label()]() mutable {
      try {
        if constexpr (std::is_void_v<Result>) {
          fn();
          call->value.emplace();
        } else {
          call->value.emplace(fn());
        }
      } catch (...) {
        call->error = std::current_exception();
      }
      loop->call_soon_threadsafe(
          [call] {
            if (call->abandoned) return;
            call->context->set_suspension(nullptr);
            call->handle.resume();
          },
          label);
    });
    if (!queued.ok()) {  // the job was dropped unrun: the task goes on at once, with the error
      call_->error = std::make_exception_ptr(std::runtime_error(std::string(queued.message())));
      return false;
    }
    // Only now: the job's result comes back through this loop, after this returns.
    context->set_suspension(this);
    return true;
  }

  Result await_resume() {
    if (cancelled_) call_->context->throw_cancelled();
    if (call_->error) std::rethrow_exception(call_->error);
    if constexpr (!std::is_void_v<Result>) return std::move(*call_->value);
  }

  void cancel_suspension() override {
    call_->abandoned = true;
    cancelled_ = true;
    call_->context->take_cancel_request();
    call_->context->set_suspension(nullptr);
    call_->context->schedule_resume(call_->handle);
  }

 private:
  F fn_;
  std::shared_ptr<BlockingCall<Result>> call_;
  bool cancelled_ = false;
};

}  // namespace detail

template <typename F>
auto run_blocking(F fn) {
  return detail::BlockingAwaiter<F>(std::move(fn));
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_RUN_BLOCKING_H_
