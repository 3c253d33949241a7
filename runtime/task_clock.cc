#include "runtime/task_clock.h"

#include <cstdint>
#include <cstdlib>

#ifdef BRRR_HAVE_TSC
#include <cpuid.h>
#endif

namespace brrr {
namespace {

#ifdef BRRR_HAVE_TSC
// CPUID 0x80000007, EDX bit 8: the TSC ticks at a constant rate in every power state.
bool TscIsInvariant() {
  unsigned eax, ebx, ecx, edx;
  if (__get_cpuid_max(0x80000000, nullptr) < 0x80000007) return false;
  __cpuid(0x80000007, eax, ebx, ecx, edx);
  return (edx & (1u << 8)) != 0;
}

// A monotonic clock read and the TSC at the same instant: the read between two TSC reads,
// the tightest of a few tries (spread UINT64_MAX if the TSC never moved forward across one).
// A thread preempted between the two clocks' reads (a busy machine, a sanitizer build) would
// otherwise pair them up to a time slice apart: over the 2 ms calibration a 100 us gap is a
// 5% error in every extrapolation, and in an anchor the whole gap.
struct ClockPair {
  int64_t ns;
  uint64_t ticks;
  uint64_t spread;  // ticks between the two TSC reads around the clock read
};

ClockPair ReadClockPair() {
  ClockPair best{.ns = 0, .ticks = 0, .spread = UINT64_MAX};
  for (int i = 0; i < 8; ++i) {
    uint64_t before = __rdtsc();
    int64_t ns = MonotonicNanos();
    uint64_t after = __rdtsc();
    if (after < before || after - before >= best.spread) continue;
    best = {.ns = ns, .ticks = before + (after - before) / 2, .spread = after - before};
  }
  return best;
}

// Measures TSC ticks against the monotonic clock over ~2 ms. The error this leaves (each
// end's pairing is within a clock read, ~50 ns, over 2 ms: ~1e-5) only ever scales spans
// within one loop iteration.
double Calibrate() {
  if (const char* off = std::getenv("BRRR_NO_TSC"); off != nullptr && *off != '\0') return 0;
  if (!TscIsInvariant()) return 0;
  ClockPair start = ReadClockPair();
  while (MonotonicNanos() - start.ns < 2'000'000) {
  }
  ClockPair end = ReadClockPair();
  if (start.spread == UINT64_MAX || end.spread == UINT64_MAX || end.ticks <= start.ticks) return 0;
  return static_cast<double>(end.ns - start.ns) / static_cast<double>(end.ticks - start.ticks);
}
#endif

}  // namespace

double TaskClock::NanosPerTick() {
#ifdef BRRR_HAVE_TSC
  static const double ns_per_tick = Calibrate();
  return ns_per_tick;
#else
  return 0;
#endif
}

TaskClock::TaskClock(const ManualClock* manual)
    : manual_(manual),
      ns_per_tick_(NanosPerTick()),
      max_pairing_ticks_(ns_per_tick_ > 0 ? static_cast<uint64_t>(kMaxPairingNs / ns_per_tick_) : UINT64_MAX) {
  anchor();
}

int64_t TaskClock::anchor_again() {
#ifdef BRRR_HAVE_TSC
  if (ClockPair pair = ReadClockPair(); pair.spread != UINT64_MAX) {
    anchor_ns_ = pair.ns;
    anchor_ticks_ = pair.ticks;
    return anchor_ns_;
  }
  anchor_ticks_ = __rdtsc();
#endif
  return anchor_ns_ = MonotonicNanos();
}

}  // namespace brrr
