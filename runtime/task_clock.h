// task_clock.h: cheap timestamps for measuring every task the loop runs.
//
// The loop times each task (for statistics and the stall detector), so the clock read is on
// the hot path: steady_clock costs ~26 ns on our machines, the CPU's time-stamp counter
// ~10 ns. TaskClock reads the TSC and converts to nanoseconds on the monotonic timeline:
// the loop re-anchors it to the monotonic clock once per iteration, so the TSC only ever
// measures the short span since the last anchor and calibration error cannot accumulate.
// Where the TSC is not invariant (or not x86), it reads steady_clock instead.
//
// The calibration is good to ~1e-4, so an extrapolation is only trusted over a short span:
// end() re-anchors (an exact monotonic read) once more than kMaxExtrapolationNs have passed
// since the last anchor. A task longer than that (every stall) therefore ends on an exact
// reading, and no extrapolation spans more than ~1 ms (an error of ~100 ns at worst).
//
//   TaskClock clock;
//   int64_t t = clock.anchor();   // once per iteration: MonotonicNanos()
//   ... run a task ...
//   int64_t end = clock.end();    // same timeline as MonotonicNanos()
//
// Given a ManualClock (tests), it reads that instead, and only that.
//
// Threads: one TaskClock per loop, used on the loop thread.
#ifndef BRRR_RUNTIME_TASK_CLOCK_H_
#define BRRR_RUNTIME_TASK_CLOCK_H_

#include <cstdint>

#include "runtime/clock.h"
#include "runtime/manual_clock.h"

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define BRRR_HAVE_TSC 1
#endif

namespace brrr {

class TaskClock {
 public:
  // `manual`: virtual time instead of the monotonic clock (tests); it must outlive this.
  explicit TaskClock(const ManualClock* manual = nullptr);

  // Re-reads the monotonic clock; returns it. The read is paired with the TSC between two TSC
  // reads; a pair that a preemption (or an interrupt) split is read again, for extrapolations
  // would be off by the whole gap until the next anchor.
  int64_t anchor() {
    if (manual_ != nullptr) [[unlikely]] return anchor_ns_ = manual_->now_ns();
#ifdef BRRR_HAVE_TSC
    if (ns_per_tick_ > 0) {
      uint64_t before = __rdtsc();
      anchor_ns_ = MonotonicNanos();
      uint64_t after = __rdtsc();
      if (after - before > max_pairing_ticks_) [[unlikely]]
        return anchor_again();
      anchor_ticks_ = before + (after - before) / 2;
      return anchor_ns_;
    }
#endif
    return anchor_ns_ = MonotonicNanos();
  }

  // Now, in monotonic nanoseconds.
  int64_t now() const {
    if (manual_ != nullptr) [[unlikely]] return manual_->now_ns();
#ifdef BRRR_HAVE_TSC
    if (ns_per_tick_ > 0) {
      return anchor_ns_ + static_cast<int64_t>(static_cast<double>(__rdtsc() - anchor_ticks_) * ns_per_tick_);
    }
#endif
    return MonotonicNanos();
  }

  // now(), made exact (and re-anchored) when the last anchor is more than
  // kMaxExtrapolationNs old. Use it to end a measurement.
  int64_t end() {
    int64_t t = now();
    return t - anchor_ns_ > kMaxExtrapolationNs ? anchor() : t;
  }

  static constexpr int64_t kMaxExtrapolationNs = 1'000'000;
  // The most a monotonic read may take between its two TSC reads for anchor() to pair them:
  // ~20 reads' worth here, well below a preemption or a hypervisor's stolen time.
  static constexpr int64_t kMaxPairingNs = 2'000;

  // Whether now() reads the TSC (false: steady_clock).
  bool uses_tsc() const { return ns_per_tick_ > 0; }

  // The process-wide TSC calibration: nanoseconds per tick, or 0 if the TSC is not usable.
  static double NanosPerTick();

 private:
  // anchor()'s slow path: the tightest of a few pairings.
  int64_t anchor_again();

  const ManualClock* manual_;
  double ns_per_tick_;
  uint64_t max_pairing_ticks_;  // kMaxPairingNs in ticks
  int64_t anchor_ns_ = 0;
  uint64_t anchor_ticks_ = 0;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_TASK_CLOCK_H_
