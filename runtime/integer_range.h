// integer_range.h: the whole numbers an option takes, declared once, so that the check and
// every text that states the range (a flag's --help, the error for a value outside it) come
// from the same numbers and cannot drift apart.
//
//   inline constexpr IntegerRange kLoopsRange{.min = 1, .max = 256};
//   if (!kLoopsRange.Contains(loops)) return absl::InvalidArgumentError(kLoopsRange.Refusal("--loops", "0"));
//   kLoopsRange.Refusal("--loops", "0");   // "--loops=0: must be from 1 to 256"
//   kLoopsRange.ToString();                // "1 to 256", for --help
//
// Sizes in bytes are written as people read them: "1 byte", "512 bytes", "16 MiB (16777216
// bytes)".
//
// Threads: a value type.
#ifndef BRRR_RUNTIME_INTEGER_RANGE_H_
#define BRRR_RUNTIME_INTEGER_RANGE_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace brrr {

struct IntegerRange {
  enum class Unit { kCount, kBytes };

  uint64_t min = 0;
  uint64_t max = 0;
  Unit unit = Unit::kCount;
  // Said after the range, e.g. " (the most a backend takes)"; a literal, or text that outlives
  // the range.
  const char* note = "";

  // Any whole number, of any integer type: a negative one is below every range.
  bool Contains(__int128 value) const { return value >= min && value <= max; }
  // "1 to 256", "512 bytes to 16 MiB (16777216 bytes)", then `note`.
  std::string ToString() const;
  // The error for `value` (as given) of `flag`: "--loops=0: must be from 1 to 256".
  std::string Refusal(absl::string_view flag, absl::string_view value) const;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_INTEGER_RANGE_H_
