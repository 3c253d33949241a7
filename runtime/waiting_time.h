// waiting_time.h: the time a loop has spent waiting for I/O or timers, readable from any thread
// at any moment, the wait in progress included. Counted only as each wait ended, a loop asleep
// for a minute showed nothing more until it woke: UTIL (running / (running + waiting)) of an idle
// loop was unknown, and a Prometheus rate of the counter was 0 for a loop that did nothing but
// wait, then a jump at its wake-up.
//
//   WaitingTime waiting;
//   waiting.begin(before_ns);                          // loop thread: it goes to sleep
//   ... the wait ...
//   waiting.end(woke_ns - before_ns);                  // loop thread: what the wait took
//   int64_t ns = waiting.total_ns(MonotonicNanos());   // any thread
//
// A wait the loop does not announce with begin (a poll that cannot sleep) is only counted once it
// has ended. The total a reader gets never falls from one read to the next, from any threads: a
// reader counts the wait in progress up to its own clock, which may be ahead of what the loop then
// adds for that wait by the error of the loop's timestamps (task_clock.h: ~100 ns); so readers get
// the most any reader has been given until the loop's own total passes it (a counter that fell
// would read as a reset to Prometheus).
//
// Threads: begin and end from the loop thread only (the one writer: a sequence lock); total_ns
// from any thread.
#ifndef BRRR_RUNTIME_WAITING_TIME_H_
#define BRRR_RUNTIME_WAITING_TIME_H_

#include <atomic>
#include <cstdint>

namespace brrr {

class WaitingTime {
 public:
  // Loop thread: a wait starts, at `since_ns` on the clock that total_ns's readers use.
  void begin(int64_t since_ns);
  // Loop thread: the wait ends (announced or not); `waited_ns` is added to the total.
  void end(int64_t waited_ns);
  // Any thread: the waits that have ended, and the one in progress up to `now_ns`.
  int64_t total_ns(int64_t now_ns) const;

 private:
  static constexpr int64_t kNotWaiting = -1;

  std::atomic<uint32_t> sequence_{0};           // odd while the loop changes the two below
  std::atomic<int64_t> ended_ns_{0};            // the waits that have ended
  std::atomic<int64_t> since_ns_{kNotWaiting};  // when the wait in progress began
  mutable std::atomic<int64_t> given_ns_{0};    // the most a reader has been given
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_WAITING_TIME_H_
