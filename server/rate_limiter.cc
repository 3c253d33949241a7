#include "server/rate_limiter.h"

#include <algorithm>

namespace brrr::server {

int64_t RateStep::Advance(int64_t paid_off_ns, uint64_t units, uint64_t rate_per_second, int64_t now_ns) {
  // units * 1e9 / rate, without overflow for any chunk size a socket delivers.
  __int128 cost = static_cast<__int128>(units) * 1'000'000'000 / rate_per_second;
  return std::max(paid_off_ns, now_ns) + static_cast<int64_t>(std::min<__int128>(cost, INT64_MAX / 4));
}

int64_t RateStep::WaitNs(int64_t paid_off_ns, int64_t now_ns) {
  return std::max<int64_t>(0, paid_off_ns - now_ns - kBurstNs);
}

int64_t RateLimiter::charge(uint64_t units, uint64_t rate_per_second, int64_t now_ns) {
  if (rate_per_second == 0) {
    paid_off_ns_ = 0;
    return 0;
  }
  paid_off_ns_ = RateStep::Advance(paid_off_ns_, units, rate_per_second, now_ns);
  return RateStep::WaitNs(paid_off_ns_, now_ns);
}

int64_t SharedRateLimiter::charge(uint64_t units, uint64_t rate_per_second, int64_t now_ns) {
  if (rate_per_second == 0) {
    // Written only when there is a debt to forget: unlimited loops do not share a cache line.
    if (paid_off_ns_.load(std::memory_order_relaxed) != 0) paid_off_ns_.store(0, std::memory_order_relaxed);
    return 0;
  }
  return RateStep::WaitNs(advance(units, rate_per_second, now_ns), now_ns);
}

int64_t SharedRateLimiter::charge_turn(uint64_t units, uint64_t rate_per_second, int64_t now_ns) {
  int64_t before = 0;
  advance(units, rate_per_second, now_ns, &before);
  return RateStep::WaitNs(before, now_ns);
}

int64_t SharedRateLimiter::advance(uint64_t units, uint64_t rate_per_second, int64_t now_ns, int64_t* before_ns) {
  int64_t before = paid_off_ns_.load(std::memory_order_relaxed);
  int64_t after = RateStep::Advance(before, units, rate_per_second, now_ns);
  while (!paid_off_ns_.compare_exchange_weak(before, after, std::memory_order_relaxed)) {
    after = RateStep::Advance(before, units, rate_per_second, now_ns);
  }
  if (before_ns != nullptr) *before_ns = before;
  return after;
}

}  // namespace brrr::server
