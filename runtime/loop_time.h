// loop_time.h: where a loop's time goes, running tasks or waiting for I/O and timers, as two
// figures that another thread can read at any moment, the span in progress included. Counted
// only as each span ended, a loop asleep for a minute showed no more waiting until it woke, and
// a task that ran for ten seconds no more running until it returned: UTIL (running / (running +
// waiting)) of such a loop was unknown, and a Prometheus rate of either counter read 0, then the
// whole span at once (3 s of running per second for one thread).
//
//   LoopTime time;
//   time.run_from(start_ns);     // loop thread: a run of the loop starts
//   time.wait_from(before_ns);   // it goes to sleep
//   time.run_from(woke_ns);      // it wakes
//   time.stop_at(end_ns);        // the run ends: neither until the next starts
//   LoopTime::Totals t = time.totals(MonotonicNanos());   // any thread
//
// A total a reader gets never falls from one read to the next, from any threads: a reader counts
// the span in progress up to its own clock, which may be ahead of where the loop then ends that
// span by the error of the loop's timestamps (task_clock.h: ~100 ns); so readers get the most any
// reader has been given until the loop's own total passes it (a counter that fell would read as
// a reset to Prometheus).
//
// Threads: run_from, wait_from and stop_at from the loop thread only (the one writer: a sequence
// lock, a few stores per change, two changes per wait); totals from any thread.
#ifndef BRRR_RUNTIME_LOOP_TIME_H_
#define BRRR_RUNTIME_LOOP_TIME_H_

#include <atomic>
#include <cstdint>

#include "runtime/never_falling.h"
#include "runtime/sequence_lock.h"

namespace brrr {

class LoopTime {
 public:
  struct Totals {
    int64_t running_ns = 0;
    int64_t waiting_ns = 0;
  };

  // Loop thread: from `at_ns` (on the clock totals' readers use) the loop runs tasks.
  void run_from(int64_t at_ns) { change(kRunning, at_ns); }
  // Loop thread: from `at_ns` the loop waits for I/O or timers.
  void wait_from(int64_t at_ns) { change(kWaiting, at_ns); }
  // Loop thread: at `at_ns` the loop stops running (run_forever or run_once returns).
  void stop_at(int64_t at_ns) { change(kStopped, at_ns); }

  // Any thread: the spans that have ended, and the one in progress up to `now_ns`.
  Totals totals(int64_t now_ns) const;

 private:
  enum State : uint32_t { kStopped = 0, kRunning = 1, kWaiting = 2 };

  // Ends the span in progress at `at_ns` (a span that would measure below zero counts 0) and
  // starts one in `next`. Inline: it runs a few times in every loop iteration.
  void change(State next, int64_t at_ns) {
    lock_.begin_write();
    const uint32_t state = state_.load(std::memory_order_relaxed);
    if (state != kStopped) {
      std::atomic<int64_t>& total = state == kRunning ? running_ns_ : waiting_ns_;
      const int64_t span = at_ns - since_ns_.load(std::memory_order_relaxed);
      if (span > 0) total.store(total.load(std::memory_order_relaxed) + span, std::memory_order_relaxed);
    }
    state_.store(next, std::memory_order_relaxed);
    since_ns_.store(at_ns, std::memory_order_relaxed);
    lock_.end_write();
  }

  SequenceLock lock_;  // over the four below
  std::atomic<uint32_t> state_{kStopped};
  std::atomic<int64_t> since_ns_{0};    // when the span in progress began
  std::atomic<int64_t> running_ns_{0};  // the spans that have ended
  std::atomic<int64_t> waiting_ns_{0};
  NeverFalling<int64_t> running_given_;
  NeverFalling<int64_t> waiting_given_;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_LOOP_TIME_H_
