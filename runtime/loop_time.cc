#include "runtime/loop_time.h"

#include <algorithm>
#include <thread>

namespace brrr {
namespace {

// The most any reader has been given of a total, `total` now included.
int64_t NeverBelowWhatWasGiven(std::atomic<int64_t>& given, int64_t total) {
  int64_t was = given.load(std::memory_order_relaxed);
  while (total > was && !given.compare_exchange_weak(was, total, std::memory_order_relaxed)) {
  }
  return std::max(total, was);
}

}  // namespace

LoopTime::Totals LoopTime::totals(int64_t now_ns) const {
  Totals t;
  for (;;) {
    const uint32_t before = sequence_.load(std::memory_order_acquire);
    const uint32_t state = state_.load(std::memory_order_relaxed);
    const int64_t since = since_ns_.load(std::memory_order_relaxed);
    t.running_ns = running_ns_.load(std::memory_order_relaxed);
    t.waiting_ns = waiting_ns_.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if ((before & 1) == 0 && sequence_.load(std::memory_order_relaxed) == before) {
      const int64_t span = std::max<int64_t>(0, now_ns - since);
      if (state == kRunning) t.running_ns += span;
      if (state == kWaiting) t.waiting_ns += span;
      break;
    }
    std::this_thread::yield();  // the loop is between its stores (or was preempted there)
  }
  t.running_ns = NeverBelowWhatWasGiven(running_given_ns_, t.running_ns);
  t.waiting_ns = NeverBelowWhatWasGiven(waiting_given_ns_, t.waiting_ns);
  return t;
}

}  // namespace brrr
