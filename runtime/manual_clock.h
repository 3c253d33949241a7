// manual_clock.h: virtual time for tests, as Seastar's manual_clock: a loop built with one
// reads every time it keeps (timer deadlines, task start and end, stalls, lateness, time
// running and waiting) from it instead of the monotonic clock, so timers, stalls and loop lag
// are tested without wall-clock thresholds: a task "blocks for 80 ms" by advancing the clock
// by 80 ms, and a timer due in 10 ms runs once the test has advanced 10 ms.
//
//   ManualClock clock;
//   auto loop = EventLoop::Create({.backend = "epoll", .manual_clock = &clock});
//   (*loop)->call_later(10ms, [&] { fired = true; });
//   (*loop)->run_once(0ms);   // not due: nothing runs
//   clock.advance(10ms);      // wakes every loop on this clock
//   (*loop)->run_once(0ms);   // fired
//
// I/O is still real: a loop on a manual clock waits for I/O as usual, but never for a timer
// that is not yet due in virtual time (it waits for I/O or for advance() to wake it).
//
// With auto_advance (as tokio's paused clock, or Trio's autojump clock), a loop that has
// nothing else to do jumps the clock to its next timer itself: nothing ready, no I/O in
// flight, no blocking work running, no call from another thread pending. Coroutine tests then
// run in virtual time on their own, and `co_await sleep(1ms)` resumes only once everything
// that was ready before it has settled, whatever the machine's load.
//
// Threads: now_ns() and advance() from any thread, but not while a loop on the clock is being
// destroyed. The clock must outlive its loops.
#ifndef BRRR_RUNTIME_MANUAL_CLOCK_H_
#define BRRR_RUNTIME_MANUAL_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

#include "runtime/clock.h"

namespace brrr {

class ManualClock {
 public:
  // Starts at `start_ns` (not 0: 0 means "no task running" in the loop's published figures).
  explicit ManualClock(int64_t start_ns = 1'000'000'000) : now_ns_(start_ns) {}
  // See above: the clock jumps to a loop's next timer when that loop is idle.
  struct AutoAdvance {};
  explicit ManualClock(AutoAdvance, int64_t start_ns = 1'000'000'000) : now_ns_(start_ns), auto_advance_(true) {}
  ManualClock(const ManualClock&) = delete;
  ManualClock& operator=(const ManualClock&) = delete;

  int64_t now_ns() const { return now_ns_.load(std::memory_order_acquire); }
  TimePoint now() const { return FromNanos(now_ns()); }

  // Moves time forward by `d` (negative: no-op) and wakes every attached loop.
  void advance(Duration d);
  // Moves time forward to `ns` if it is later than now (then as advance()).
  void advance_to(int64_t ns);
  bool auto_advance() const { return auto_advance_; }

  // For EventLoop: called with no lock held after each advance(). Returns an id for detach().
  uint64_t attach(std::function<void()> wake);
  void detach(uint64_t id);

 private:
  std::atomic<int64_t> now_ns_;
  const bool auto_advance_ = false;
  std::mutex mu_;
  uint64_t next_id_ = 1;                              // guarded by mu_
  std::map<uint64_t, std::function<void()>> wakers_;  // guarded by mu_
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_MANUAL_CLOCK_H_
