// gather.h: run several tasks concurrently and wait for all of them (asyncio.gather).
//
//   auto [a, b] = co_await gather(fetch(1), fetch(2));         // std::tuple, argument order
//   std::vector<int> all = co_await gather(std::move(tasks));  // std::vector, same order
//
// Every task is started with create_task before any of them runs, so all of them start
// before any finishes, and results come back in argument order whatever order they finish
// in. A Task<void> contributes std::monostate to the tuple.
//
// When one fails: the others are cancelled, gather waits until every one of them has
// finished (so none outlives the call, still using what the caller lent it), then rethrows
// the first failure. This differs from asyncio.gather's default, which leaves the others
// running; it is what asyncio.TaskGroup does. When gather itself is cancelled, it cancels all
// of them, waits for them, and throws CancelledError.
//
// Threads: inside a task, on its loop's thread.
#ifndef BRRR_RUNTIME_GATHER_H_
#define BRRR_RUNTIME_GATHER_H_

#include <exception>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "runtime/create_task.h"
#include "runtime/future.h"
#include "runtime/task.h"

namespace brrr {
namespace detail {

template <typename T>
using GatherValue = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// Counts finished children; on the first failure cancels the rest; finishes `all_done` when
// every child has finished.
class GatherBarrier {
 public:
  GatherBarrier(EventLoop& loop, std::vector<FutureBase> children)
      : children_(std::move(children)), remaining_(children_.size()), all_done_(loop) {}

  void watch() {
    if (children_.empty()) all_done_.set_result();
    for (size_t i = 0; i < children_.size(); ++i) {
      children_[i].add_done_callback([this, i] { on_child_done(i); }, "gather");
    }
  }

  Future<> all_done() const { return all_done_.get_future(); }
  void cancel_all() {
    for (FutureBase& f : children_) f.cancel();
  }
  const std::exception_ptr& first_error() const { return first_error_; }

 private:
  void on_child_done(size_t i) {
    if (children_[i].exception() && !first_error_) {
      first_error_ = children_[i].exception();
      cancel_all();
    }
    if (--remaining_ == 0) all_done_.set_result();
  }

  std::vector<FutureBase> children_;
  size_t remaining_;
  std::exception_ptr first_error_;
  Promise<> all_done_;
};

// Waits for the barrier whatever happens; reports whether this task was cancelled meanwhile.
// Callbacks registered on the children point at the barrier, so it must outlive them.
inline Task<bool> WaitForAll(GatherBarrier& barrier) {
  bool cancelled = false;
  Future<> done = barrier.all_done();
  while (!done.done()) {
    try {
      co_await done.wait();
    } catch (const CancelledError&) {
      cancelled = true;
      barrier.cancel_all();
    }
  }
  co_return cancelled;
}

template <typename T>
GatherValue<T> TakeValue(Future<T>& f) {
  if constexpr (std::is_void_v<T>) {
    f.take_result();
    return {};
  } else {
    return f.take_result();
  }
}

}  // namespace detail

template <typename... Ts>
Task<std::tuple<detail::GatherValue<Ts>...>> gather(Task<Ts>... tasks) {
  EventLoop& loop = detail::CurrentLoopOrThrow("gather");
  std::tuple<Future<Ts>...> futures{create_task(loop, std::move(tasks), "gather:child")...};
  detail::GatherBarrier barrier(
      loop, std::apply([](auto&... f) { return std::vector<FutureBase>{f...}; }, futures));
  barrier.watch();
  if (co_await detail::WaitForAll(barrier)) throw CancelledError();
  if (barrier.first_error()) std::rethrow_exception(barrier.first_error());
  co_return std::apply(
      [](auto&... f) { return std::tuple<detail::GatherValue<Ts>...>{detail::TakeValue(f)...}; },
      futures);
}

template <typename T>
Task<std::vector<detail::GatherValue<T>>> gather(std::vector<Task<T>> tasks) {
  EventLoop& loop = detail::CurrentLoopOrThrow("gather");
  std::vector<Future<T>> futures;
  futures.reserve(tasks.size());
  for (Task<T>& t : tasks) futures.push_back(create_task(loop, std::move(t), "gather:child"));
  detail::GatherBarrier barrier(loop, std::vector<FutureBase>(futures.begin(), futures.end()));
  barrier.watch();
  if (co_await detail::WaitForAll(barrier)) throw CancelledError();
  if (barrier.first_error()) std::rethrow_exception(barrier.first_error());
  std::vector<detail::GatherValue<T>> results;
  results.reserve(futures.size());
  for (Future<T>& f : futures) results.push_back(detail::TakeValue(f));
  co_return results;
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_GATHER_H_
