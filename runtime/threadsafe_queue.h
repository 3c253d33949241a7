// threadsafe_queue.h: how other threads hand work to an event loop (call_soon_threadsafe).
//
// Producers append under a mutex; the loop takes everything in one swap. The first push after
// the loop last drained the queue wakes the loop (through its reactor); later pushes see the
// `notified_` flag already set and skip the system call, so a burst of posts costs one wake-up.
// `wake` runs under the mutex, so it must not call back into this queue.
// The loop clears the flag before it swaps, so a push that races with a drain either lands in
// the drained batch or wakes the loop again: nothing is left behind while the loop sleeps.
//
// Threads: push(), close() and close_and_take() from any thread; drain_into() from the loop thread.
#ifndef BRRR_RUNTIME_THREADSAFE_QUEUE_H_
#define BRRR_RUNTIME_THREADSAFE_QUEUE_H_

#include <atomic>
#include <functional>
#include <mutex>
#include <vector>

#include "runtime/ready_queue.h"

namespace brrr {

class ThreadsafeQueue {
 public:
  // `wake` is called (under the lock) when the loop must be woken.
  explicit ThreadsafeQueue(std::function<void()> wake) : wake_(std::move(wake)) {}

  // Returns false, dropping the task, once the queue is closed (the loop is shutting down).
  bool push(ReadyTask task) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    pending_.push_back(std::move(task));
    depth_.store(pending_.size(), std::memory_order_relaxed);
    // Woken under the lock, so that once close() returns no thread is still about to wake a
    // loop that may be tearing its backend down. Only the first post after a drain gets here.
    if (!notified_.exchange(true, std::memory_order_acq_rel)) wake_();
    return true;
  }

  // Moves every pending task, in order, to the back of `ready`. Returns how many. The loop
  // calls it twice an iteration and almost always finds nothing: that case is a load.
  size_t drain_into(ReadyQueue& ready) {
    if (!notified_.load(std::memory_order_acquire)) return 0;
    return drain_notified(ready);
  }

  // Refuses further pushes and destroys what is pending, without running it.
  void close() { std::vector<ReadyTask> dropped = close_and_take(); }

  // Refuses further pushes and returns what is pending, in the order it was pushed.
  std::vector<ReadyTask> close_and_take() {
    std::vector<ReadyTask> pending;
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    pending.swap(pending_);
    depth_.store(0, std::memory_order_relaxed);
    return pending;
  }

  // Tasks pushed and not yet drained. Any thread.
  size_t depth() const { return depth_.load(std::memory_order_relaxed); }

 private:
  // drain_into's work once a push has notified the loop; out of line, so that drain_into's
  // test stays a load at its two call sites.
  __attribute__((noinline)) size_t drain_notified(ReadyQueue& ready) {
    notified_.store(false, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch_.swap(pending_);
      depth_.store(0, std::memory_order_relaxed);
    }
    size_t n = batch_.size();
    for (ReadyTask& t : batch_) ready.push(std::move(t));
    batch_.clear();
    return n;
  }

  std::function<void()> wake_;
  std::atomic<bool> notified_{false};
  std::atomic<size_t> depth_{0};
  std::mutex mu_;
  std::vector<ReadyTask> pending_;  // guarded by mu_
  bool closed_ = false;             // guarded by mu_
  std::vector<ReadyTask> batch_;    // loop thread only
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_THREADSAFE_QUEUE_H_
