// call_in_loop.h: run a function on a loop's thread from another thread, and wait for its
// result, with a time limit: how the admin plane acts inside the loop it targets.
//
//   absl::StatusOr<std::vector<SocketInfo>> sockets = CallInLoop(
//       loop, [&loop] { return loop.socket_infos(); }, std::chrono::seconds(5),
//       "admin:list_sockets");
//
// When the loop does not begin the function in time (a task blocks it, or it has stopped) the
// caller gets UNAVAILABLE saying so, with the task that holds the loop, and the function never
// runs: an action either ran (and its answer is returned) or did not happen. A time limit past
// the clock's range (Duration::max()) is none: the caller waits until the loop runs the call,
// or refuses it (EventLoop::finish()). Its queued call outlives the caller's wait, so the
// function must not capture anything by reference that the caller's return frees (copy what it
// needs, or capture objects that outlive the loop). An exception the function throws on the
// loop is rethrown in the caller, as if it had called it.
//
// CallInLoops asks several loops at once, so that one blocked loop costs the caller one
// timeout, not one per loop, and does not keep it from the others' answers:
//
//   std::vector<std::optional<absl::StatusOr<SocketInfo>>> answers = CallInLoops(
//       loops, [fd](size_t i) { return CloseOn(i, fd); },
//       [](const absl::StatusOr<SocketInfo>& a) { return !absl::IsNotFound(a.status()); },  // the owner answered
//       std::chrono::seconds(5), "admin:close_connection");
//
// Threads: any thread but the loops' own (that would wait for itself).
#ifndef BRRR_RUNTIME_CALL_IN_LOOP_H_
#define BRRR_RUNTIME_CALL_IN_LOOP_H_

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/clock.h"
#include "runtime/event_loop.h"

namespace brrr {

namespace detail {
// The UNAVAILABLE answer for a loop that did not run a call in time.
absl::Status LoopDidNotAnswer(const EventLoop& loop, Duration timeout);
}  // namespace detail

// Runs fn(i) on loops[i], for every i at once, and waits until every loop has answered, until
// one answer satisfies `enough`, or until `timeout` has passed. Answer i is nullopt for a loop
// that had not begun the call by then (detail::LoopDidNotAnswer says why), or had shut down, or
// was not waited for once another's answer was enough: that call never runs. `fn` and `enough`
// are copied into each loop's call. If fn or enough throws on a loop, the wait ends as for an
// answer that is enough, and the first such exception is rethrown here once every call that
// had begun has ended.
template <typename F, typename Enough, typename T = std::invoke_result_t<F&, size_t>>
std::vector<std::optional<T>> CallInLoops(const std::vector<EventLoop*>& loops, F fn, Enough enough, Duration timeout,
                                          const char* static_label) {
  static_assert(!std::is_void_v<T>, "return a value (a Status will do)");
  struct Shared {
    std::mutex mu;
    std::condition_variable done;
    std::vector<std::optional<T>> answers;  // guarded by mu
    std::vector<bool> started;              // guarded by mu: loop i has begun running fn(i)
    std::vector<bool> ended;                // guarded by mu: loop i has answered, or thrown
    std::exception_ptr error;               // guarded by mu: the first exception fn or enough threw
    bool abandoned = false;                 // guarded by mu: calls not begun by now never run
    bool enough = false;                    // guarded by mu
  };
  auto shared = std::make_shared<Shared>();
  shared->answers.resize(loops.size());
  shared->started.resize(loops.size());
  shared->ended.resize(loops.size());
  std::vector<bool> asked(loops.size());
  for (size_t i = 0; i < loops.size(); ++i) {
    asked[i] = loops[i]->call_soon_threadsafe(
        [shared, fn, enough, i]() mutable {
          {
            std::lock_guard<std::mutex> lock(shared->mu);
            if (shared->abandoned) return;
            shared->started[i] = true;
          }
          // Exceptions are caught here: the loop would only log them, and the caller would wait
          // for ever.
          std::optional<T> value;
          std::exception_ptr error;
          try {
            value.emplace(fn(i));
          } catch (...) {
            error = std::current_exception();
          }
          std::lock_guard<std::mutex> lock(shared->mu);
          if (error == nullptr) {
            try {
              if (enough(*value)) shared->enough = true;
            } catch (...) {
              error = std::current_exception();
            }
          }
          if (error == nullptr) {
            shared->answers[i].emplace(std::move(*value));
          } else if (shared->error == nullptr) {
            shared->error = error;
          }
          shared->ended[i] = true;
          shared->done.notify_all();
        },
        static_label);
  }
  auto answered = [&] {
    for (size_t i = 0; i < loops.size(); ++i) {
      if (asked[i] && !shared->ended[i]) return false;
    }
    return true;
  };
  auto over = [&] { return shared->enough || shared->error != nullptr || answered(); };
  std::unique_lock<std::mutex> lock(shared->mu);
  // Not condition_variable::wait_for: it adds the limit to the clock, and Duration::max()
  // overflowed into the past there (the wait gave up at once, the calls never ran).
  if (int64_t deadline = DeadlineAfter(MonotonicNanos(), timeout); deadline == kNeverNanos) {
    shared->done.wait(lock, over);
  } else {
    shared->done.wait_until(lock, FromNanos(std::max<int64_t>(0, deadline)), over);
  }
  shared->abandoned = true;
  // Calls a loop has begun are waited for: their answers are on the way (and what they did, done).
  shared->done.wait(lock, [&] {
    for (size_t i = 0; i < loops.size(); ++i) {
      if (shared->started[i] && !shared->ended[i]) return false;
    }
    return true;
  });
  if (shared->error != nullptr) std::rethrow_exception(shared->error);
  // Nothing writes them any more: the calls not begun never will.
  return std::move(shared->answers);
}

template <typename F, typename T = std::invoke_result_t<F&>>
absl::StatusOr<T> CallInLoop(EventLoop& loop, F fn, Duration timeout, const char* static_label) {
  // Shared, so that a function that cannot be copied goes too.
  auto shared_fn = std::make_shared<F>(std::move(fn));
  std::vector<std::optional<T>> answer = CallInLoops(
      {&loop}, [shared_fn](size_t) { return (*shared_fn)(); }, [](const T&) { return false; }, timeout,
      static_label);
  if (!answer[0].has_value()) return detail::LoopDidNotAnswer(loop, timeout);
  return std::move(*answer[0]);
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_CALL_IN_LOOP_H_
