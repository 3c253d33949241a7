// never_falling.h: a figure that readers on any threads see rise only. A figure read from
// another thread's state can come out a little below a read before it (a span in progress
// counted up to the reader's clock, then ended by its owner at a timestamp a little short of
// it; a thread's CPU clock that no longer reads once the thread has ended): a counter that fell
// would read as a reset to Prometheus. Each reading goes through give(), which returns the most
// any reader has been given.
//
//   NeverFalling<int64_t> given;
//   int64_t total = given.give(computed_total);   // any thread
//
// Threads: any; one atomic.
#ifndef BRRR_RUNTIME_NEVER_FALLING_H_
#define BRRR_RUNTIME_NEVER_FALLING_H_

#include <algorithm>
#include <atomic>

namespace brrr {

template <typename T>
class NeverFalling {
 public:
  // `value`, or the most a reader has been given if that is more.
  T give(T value) const {
    T most = most_.load(std::memory_order_relaxed);
    while (value > most && !most_.compare_exchange_weak(most, value, std::memory_order_relaxed)) {
    }
    return std::max(value, most);
  }

 private:
  mutable std::atomic<T> most_{};
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_NEVER_FALLING_H_
