// injection_spec.h: what an injected task is (its kind, duration, runs and loops) and the
// ranges an injection must keep to, checked without an injector or a loop.
//
//   absl::StatusOr<InjectionSpec> spec = CheckInjectionSpec(
//       {.kind = InjectionKind::kBlockingSpin, .duration = 300ms, .count = 0}, /*max_block=*/10s,
//       /*loop_count=*/4);
//   // spec->count == 1, spec->loops == {0, 1, 2, 3}
//
// The limits that depend on what runs already (active injections, live runs per loop) are the
// injector's (task_injector.h).
//
// Threads: plain values and a pure function.
#ifndef BRRR_CONTROL_INJECTION_SPEC_H_
#define BRRR_CONTROL_INJECTION_SPEC_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/clock.h"

namespace brrr::control {

enum class InjectionKind { kBlockingSpin, kBlockingSleep, kNonblockingSleep };

struct InjectionSpec {
  InjectionKind kind = InjectionKind::kBlockingSpin;
  Duration duration = Duration::zero();
  uint32_t count = 1;                       // runs per loop
  Duration interval = Duration::zero();     // start to start
  std::vector<uint32_t> loops;              // empty: every loop
};

// Runs per loop (a count of 0 means 1).
inline constexpr uint32_t kMaxInjectionCount = 1'000'000;
// The longest NonblockingSleep run (a blocking run's limit is the server's --admin_max_block).
inline constexpr Duration kMaxNonblockingDuration = std::chrono::hours(1);
inline constexpr Duration kMaxInjectionInterval = std::chrono::hours(1);

// `spec` with its defaults filled in (a count of 0 becomes 1, no loops becomes every loop;
// loops sorted, each once), or why it is refused: InvalidArgument saying what is allowed for a
// duration outside 1 ms to `max_block` (blocking kinds) or kMaxNonblockingDuration, a count
// past kMaxInjectionCount or an interval outside 0 to kMaxInjectionInterval; NotFound for a
// loop from `loop_count` on.
absl::StatusOr<InjectionSpec> CheckInjectionSpec(InjectionSpec spec, Duration max_block, size_t loop_count);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_INJECTION_SPEC_H_
