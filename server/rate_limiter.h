// rate_limiter.h: "at most R units per second" with a small burst, as the generic cell rate
// algorithm (GCRA): the limiter keeps one timestamp, the time at which the units charged so far
// would have been paid off at the rate. Charging moves it forward; the caller waits for as long
// as it runs ahead of now by more than the burst allowance.
//
//   RateLimiter per_connection;
//   Duration wait = per_connection.charge(bytes, /*rate=*/10'000, now_ns);   // 0: go on
//
// SharedRateLimiter is the same for several threads at once (a compare-and-swap loop, no lock).
// A rate of 0 means unlimited: charge() then returns 0 and forgets any debt.
//
// Threads: RateLimiter is for one thread; SharedRateLimiter for any.
#ifndef BRRR_SERVER_RATE_LIMITER_H_
#define BRRR_SERVER_RATE_LIMITER_H_

#include <atomic>
#include <cstdint>

namespace brrr::server {

// The part both limiters share: the new paid-off time, and how long to wait for it.
struct RateStep {
  // `paid_off_ns`: the limiter's timestamp before the charge. Returns the timestamp after.
  static int64_t Advance(int64_t paid_off_ns, uint64_t units, uint64_t rate_per_second, int64_t now_ns);
  // Nanoseconds to wait before using more, given the timestamp after a charge.
  static int64_t WaitNs(int64_t paid_off_ns, int64_t now_ns);
  // How far ahead of now the timestamp may run without waiting.
  static constexpr int64_t kBurstNs = 50'000'000;
};

class RateLimiter {
 public:
  // Charges `units`; returns how many nanoseconds to wait before using more (0: none).
  int64_t charge(uint64_t units, uint64_t rate_per_second, int64_t now_ns);
  // How long until more may be used, without charging.
  int64_t wait_ns(int64_t now_ns) const { return RateStep::WaitNs(paid_off_ns_, now_ns); }
  // Forgets the debt (the rate was lifted).
  void reset() { paid_off_ns_ = 0; }

 private:
  int64_t paid_off_ns_ = 0;
};

class SharedRateLimiter {
 public:
  int64_t charge(uint64_t units, uint64_t rate_per_second, int64_t now_ns);
  // Charges `units` as charge() does, but returns how long until *these* may be used (0: now),
  // where charge() returns how long until more may be: for users that each hold what they
  // took (accepted connections) until its turn. `rate_per_second` > 0.
  int64_t charge_turn(uint64_t units, uint64_t rate_per_second, int64_t now_ns);
  int64_t wait_ns(int64_t now_ns) const { return RateStep::WaitNs(paid_off_ns_.load(std::memory_order_relaxed), now_ns); }
  void reset() { paid_off_ns_.store(0, std::memory_order_relaxed); }

 private:
  // Charges `units` (compare-and-swap); returns the timestamp after, and the one before in
  // `before_ns` if given.
  int64_t advance(uint64_t units, uint64_t rate_per_second, int64_t now_ns, int64_t* before_ns = nullptr);

  std::atomic<int64_t> paid_off_ns_{0};
};

}  // namespace brrr::server

#endif  // BRRR_SERVER_RATE_LIMITER_H_
