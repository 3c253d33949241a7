// wait_for.h: wait for a task with a time limit (asyncio.wait_for).
//
//   absl::StatusOr<Reply> r = co_await wait_for(call(), std::chrono::seconds(2));
//   if (absl::IsDeadlineExceeded(r.status())) ...   // it was cancelled after 2 s
//
// The result: absl::Status for a task of void; for a task that already returns a Status or a
// StatusOr<U>, that same type, holding the task's own result or the time limit's
// DeadlineExceeded (one level to look at: StatusOr<absl::Status> would hold the deadline as
// its value, an OK StatusOr); absl::StatusOr<T> for any other T.
//
// The task runs as its own task. If it finishes in time, its result comes back (its exception
// is rethrown). If not, it is cancelled, wait_for waits until it has actually finished, and
// returns DeadlineExceeded: a timeout is an outcome a caller acts on, so it is a Status, not an
// exception. A task that finished in the same instant the timer fired keeps its result:
// nothing it produced is thrown away. If wait_for itself is cancelled, it cancels the task,
// waits for it, and throws CancelledError.
//
// Threads: inside a task, on its loop's thread.
#ifndef BRRR_RUNTIME_WAIT_FOR_H_
#define BRRR_RUNTIME_WAIT_FOR_H_

#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "runtime/clock.h"
#include "runtime/create_task.h"
#include "runtime/future.h"
#include "runtime/task.h"

namespace brrr {

namespace detail {
template <typename T>
struct WaitResultOf {
  using type = absl::StatusOr<T>;
};
template <>
struct WaitResultOf<void> {
  using type = absl::Status;
};
template <>
struct WaitResultOf<absl::Status> {
  using type = absl::Status;
};
template <typename U>
struct WaitResultOf<absl::StatusOr<U>> {
  using type = absl::StatusOr<U>;
};
}  // namespace detail

template <typename T>
using WaitResult = typename detail::WaitResultOf<T>::type;

template <typename T>
Task<WaitResult<T>> wait_for(Task<T> task, Duration timeout) {
  EventLoop& loop = detail::CurrentLoopOrThrow("wait_for");
  Future<T> future = create_task(loop, std::move(task), "wait_for:task");
  bool timed_out = false;
  TimerHandle timer = loop.call_later(
      timeout,
      [future, &timed_out]() mutable {
        timed_out = true;
        future.cancel();
      },
      "wait_for:timeout");
  bool cancelled = false;
  // Wait until the task has finished, whatever happens to us meanwhile.
  while (!future.done()) {
    try {
      co_await future.wait();
    } catch (const CancelledError&) {
      cancelled = true;
      timer.cancel();
      future.cancel();
    }
  }
  timer.cancel();
  if (cancelled) throw CancelledError();
  if (timed_out && future.cancelled()) {
    co_return absl::DeadlineExceededError(absl::StrCat(
        "wait_for: the task did not finish within ",
        std::chrono::duration<double, std::milli>(timeout).count(), " ms and was cancelled"));
  }
  if constexpr (std::is_void_v<T>) {
    future.take_result();
    co_return absl::OkStatus();
  } else {
    co_return future.take_result();
  }
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_WAIT_FOR_H_
