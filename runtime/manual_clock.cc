#include "runtime/manual_clock.h"

#include <vector>

namespace brrr {

void ManualClock::advance(Duration d) {
  if (d.count() > 0) now_ns_.fetch_add(d.count(), std::memory_order_acq_rel);
  std::vector<std::function<void()>> wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, w] : wakers_) wake.push_back(w);
  }
  for (const auto& w : wake) w();
}

void ManualClock::advance_to(int64_t ns) {
  int64_t now = now_ns();
  if (ns > now) advance(Duration(ns - now));
}

uint64_t ManualClock::attach(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t id = next_id_++;
  wakers_.emplace(id, std::move(wake));
  return id;
}

void ManualClock::detach(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  wakers_.erase(id);
}

}  // namespace brrr
