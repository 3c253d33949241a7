#include "runtime/loop_time.h"

#include <algorithm>

namespace brrr {

LoopTime::Totals LoopTime::totals(int64_t now_ns) const {
  Totals t = lock_.read([&] {
    Totals ended{.running_ns = running_ns_.load(std::memory_order_relaxed),
                 .waiting_ns = waiting_ns_.load(std::memory_order_relaxed)};
    const int64_t span = std::max<int64_t>(0, now_ns - since_ns_.load(std::memory_order_relaxed));
    const uint32_t state = state_.load(std::memory_order_relaxed);
    if (state == kRunning) ended.running_ns += span;
    if (state == kWaiting) ended.waiting_ns += span;
    return ended;
  });
  return Totals{.running_ns = running_given_.give(t.running_ns), .waiting_ns = waiting_given_.give(t.waiting_ns)};
}

}  // namespace brrr
