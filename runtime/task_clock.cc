#include "runtime/task_clock.h"

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

// Measures TSC ticks against the monotonic clock over ~2 ms. The error this leaves (the two
// clock reads' jitter over 2 ms, ~1e-5) only ever scales spans within one loop iteration.
double Calibrate() {
  if (const char* off = std::getenv("BRRR_NO_TSC"); off != nullptr && *off != '\0') return 0;
  if (!TscIsInvariant()) return 0;
  int64_t ns0 = MonotonicNanos();
  uint64_t t0 = __rdtsc();
  int64_t ns1;
  do {
    ns1 = MonotonicNanos();
  } while (ns1 - ns0 < 2'000'000);
  uint64_t t1 = __rdtsc();
  if (t1 <= t0) return 0;
  return static_cast<double>(ns1 - ns0) / static_cast<double>(t1 - t0);
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

TaskClock::TaskClock(const ManualClock* manual) : manual_(manual), ns_per_tick_(NanosPerTick()) { anchor(); }

}  // namespace brrr
