// duration_range.h: the durations an option takes, declared once, so that the check and every
// text that states the range (a flag's --help, the error for a value outside it) come from the
// same figures and cannot drift apart (integer_range.h does the same for whole numbers).
//
//   inline constexpr DurationRange kStallThresholdRange{.min = 1ms, .max = 60s};
//   if (!kStallThresholdRange.Contains(d)) {
//     return absl::InvalidArgumentError(kStallThresholdRange.Refusal("--stall_threshold", d));
//   }
//   kStallThresholdRange.Refusal("--stall_threshold", 61s);  // "--stall_threshold=1m1s: must be from 1ms to 1m"
//   kStallThresholdRange.ToString();                         // "1ms to 1m", for --help
//
// Durations are written as absl::FormatDuration writes them ("1ms", "10m", "24h"); the
// longest and shortest Duration, which a flag's "inf" and "-inf" become, as "inf" and "-inf".
//
// Threads: a value type.
#ifndef BRRR_RUNTIME_DURATION_RANGE_H_
#define BRRR_RUNTIME_DURATION_RANGE_H_

#include <string>

#include "absl/strings/string_view.h"
#include "runtime/clock.h"

namespace brrr {

struct DurationRange {
  Duration min = Duration::zero();
  Duration max = Duration::zero();
  // Said after the range, e.g. " (0: never)"; a literal, or text that outlives the range.
  const char* note = "";

  bool Contains(Duration d) const { return d >= min && d <= max; }
  // "1ms to 1m", then `note`.
  std::string ToString() const;
  // The error for `value` of `flag`: "--stall_threshold=1m1s: must be from 1ms to 1m".
  std::string Refusal(absl::string_view flag, Duration value) const;
};

// "61s", "1ms", "inf": as a flag would take it.
std::string FormatFlagDuration(Duration d);

}  // namespace brrr

#endif  // BRRR_RUNTIME_DURATION_RANGE_H_
