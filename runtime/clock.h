// clock.h: the runtime's one time source.
//
// Every timestamp the runtime keeps (timer deadlines, task start and end, stall durations) is
// nanoseconds on the monotonic clock, as an int64. Other threads may compare them with
// MonotonicNanos() (for example to see how long the loop's current task has been running).
//
// Threads: all functions are thread-safe.
#ifndef BRRR_RUNTIME_CLOCK_H_
#define BRRR_RUNTIME_CLOCK_H_

#include <chrono>
#include <cstdint>
#include <limits>

namespace brrr {

using Clock = std::chrono::steady_clock;
using Duration = std::chrono::nanoseconds;
using TimePoint = Clock::time_point;

// Now, in nanoseconds on the monotonic clock.
inline int64_t MonotonicNanos() {
  return std::chrono::duration_cast<Duration>(Clock::now().time_since_epoch()).count();
}

inline int64_t ToNanos(TimePoint t) {
  return std::chrono::duration_cast<Duration>(t.time_since_epoch()).count();
}

inline TimePoint FromNanos(int64_t ns) { return TimePoint(Duration(ns)); }

// A deadline that never comes: later than any time the clock reads.
inline constexpr int64_t kNeverNanos = std::numeric_limits<int64_t>::max();

// `delay` after now_ns, saturated: a deadline past the clock's range (Duration::max(), a
// delay of centuries) is kNeverNanos, not a sum that overflowed into the past.
inline int64_t DeadlineAfter(int64_t now_ns, Duration delay) {
  int64_t deadline;
  if (__builtin_add_overflow(now_ns, delay.count(), &deadline)) {
    return delay.count() > 0 ? kNeverNanos : std::numeric_limits<int64_t>::min();
  }
  return deadline;
}

}  // namespace brrr

#endif  // BRRR_RUNTIME_CLOCK_H_
