#include "runtime/waiting_time.h"

#include <algorithm>
#include <thread>

namespace brrr {

void WaitingTime::begin(int64_t since_ns) {
  const uint32_t s = sequence_.load(std::memory_order_relaxed);
  sequence_.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  since_ns_.store(since_ns, std::memory_order_relaxed);
  sequence_.store(s + 2, std::memory_order_release);
}

void WaitingTime::end(int64_t waited_ns) {
  const int64_t ended = ended_ns_.load(std::memory_order_relaxed) + waited_ns;
  if (since_ns_.load(std::memory_order_relaxed) == kNotWaiting) {
    // Unannounced: readers see the one value change.
    ended_ns_.store(ended, std::memory_order_relaxed);
    return;
  }
  const uint32_t s = sequence_.load(std::memory_order_relaxed);
  sequence_.store(s + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  ended_ns_.store(ended, std::memory_order_relaxed);
  since_ns_.store(kNotWaiting, std::memory_order_relaxed);
  sequence_.store(s + 2, std::memory_order_release);
}

int64_t WaitingTime::total_ns(int64_t now_ns) const {
  int64_t total = 0;
  for (;;) {
    const uint32_t before = sequence_.load(std::memory_order_acquire);
    const int64_t ended = ended_ns_.load(std::memory_order_relaxed);
    const int64_t since = since_ns_.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if ((before & 1) == 0 && sequence_.load(std::memory_order_relaxed) == before) {
      total = ended + (since == kNotWaiting ? 0 : std::max<int64_t>(0, now_ns - since));
      break;
    }
    std::this_thread::yield();  // the loop is between its stores (or was preempted there)
  }
  int64_t given = given_ns_.load(std::memory_order_relaxed);
  while (total > given && !given_ns_.compare_exchange_weak(given, total, std::memory_order_relaxed)) {
  }
  return std::max(total, given);
}

}  // namespace brrr
