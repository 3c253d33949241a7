// call_in_loop.h: run a function on a loop's thread from another thread, and wait for its
// result, with a time limit: how the admin plane acts inside the loop it targets.
//
//   absl::StatusOr<std::vector<SocketInfo>> sockets = CallInLoop(
//       loop, [&loop] { return loop.socket_infos(); }, std::chrono::seconds(5),
//       "admin:list_sockets");
//
// When the loop does not run the function in time (a task blocks it, or it has stopped) the
// caller gets UNAVAILABLE saying so, with the task that holds the loop; the function may still
// run later, so it must not capture anything by reference that the caller's return frees
// (copy what it needs, or capture objects that outlive the loop).
//
// Threads: any thread but the loop's own (that would wait for itself).
#ifndef BRRR_RUNTIME_CALL_IN_LOOP_H_
#define BRRR_RUNTIME_CALL_IN_LOOP_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "runtime/event_loop.h"

namespace brrr {

namespace detail {
// The UNAVAILABLE answer for a loop that did not run a call in time.
absl::Status LoopDidNotAnswer(const EventLoop& loop, Duration timeout);
}  // namespace detail

template <typename F, typename T = std::invoke_result_t<F&>>
absl::StatusOr<T> CallInLoop(EventLoop& loop, F fn, Duration timeout, const char* static_label) {
  static_assert(!std::is_void_v<T>, "return a value (a Status will do)");
  struct Shared {
    std::mutex mu;
    std::condition_variable done;
    std::optional<T> result;
  };
  auto shared = std::make_shared<Shared>();
  bool queued = loop.call_soon_threadsafe(
      [shared, fn = std::move(fn)]() mutable {
        T value = fn();
        std::lock_guard<std::mutex> lock(shared->mu);
        shared->result.emplace(std::move(value));
        shared->done.notify_all();
      },
      static_label);
  if (!queued) return absl::UnavailableError(absl::StrCat("loop ", loop.loop_id(), " has shut down"));
  std::unique_lock<std::mutex> lock(shared->mu);
  if (!shared->done.wait_for(lock, timeout, [&] { return shared->result.has_value(); })) {
    return detail::LoopDidNotAnswer(loop, timeout);
  }
  return std::move(*shared->result);
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_CALL_IN_LOOP_H_
