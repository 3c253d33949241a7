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
// A range whose least value grows with another option's is a ScaledMinimumRange: declared once
// too, it states itself with the other option's name and makes the IntegerRange that holds for
// that option's value:
//
//   inline constexpr ScaledMinimumRange kReservedRange{
//       .per = 3, .of = "--admin_max_connections", .plus = 8, .max = 1'000'000};
//   kReservedRange.ToString();            // "3 x --admin_max_connections + 8 to 1000000"
//   kReservedRange.For(16);               // IntegerRange{.min = 56, .max = 1000000}
//   kReservedRange.Refusal("--admin_reserved_fds", "9", 16);
//       // "--admin_reserved_fds=9: must be from 3 x --admin_max_connections + 8 (56) to 1000000"
//
// A range whose greatest value is just below another option's is a BelowOptionRange, stated
// the same way:
//
//   inline constexpr BelowOptionRange kLowWaterRange{
//       .min = 0, .below = "--high_water", .unit = IntegerRange::Unit::kBytes};
//   kLowWaterRange.ToString();            // "0 bytes to --high_water - 1"
//   kLowWaterRange.For(100);              // IntegerRange{.min = 0, .max = 99, bytes}
//   kLowWaterRange.Refusal("--low_water", "200", 100);
//       // "--low_water=200: must be from 0 bytes to --high_water - 1 (99 bytes)"
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

struct ScaledMinimumRange {
  // The least value: `per` for each unit of the option named `of` (a literal), plus `plus`.
  uint64_t per = 1;
  const char* of = "";
  uint64_t plus = 0;
  uint64_t max = 0;

  // The range when the other option is `of_value` (a least value past 64 bits is UINT64_MAX).
  IntegerRange For(uint64_t of_value) const;
  // "3 x --admin_max_connections + 8 to 1000000", for --help.
  std::string ToString() const;
  // The error for `value` (as given) of `flag` when the other option is `of_value`:
  // "--admin_reserved_fds=9: must be from 3 x --admin_max_connections + 8 (56) to 1000000".
  std::string Refusal(absl::string_view flag, absl::string_view value, uint64_t of_value) const;

 private:
  // "3 x --admin_max_connections + 8".
  std::string Minimum() const;
};

struct BelowOptionRange {
  uint64_t min = 0;
  // The option whose value the greatest value is one below (a literal).
  const char* below = "";
  IntegerRange::Unit unit = IntegerRange::Unit::kCount;

  // The range when the other option is `below_value`: none at all when that is `min` or less.
  IntegerRange For(uint64_t below_value) const;
  // "0 bytes to --high_water - 1", for --help.
  std::string ToString() const;
  // The error for `value` (as given) of `flag` when the other option is `below_value`:
  // "--low_water=200: must be from 0 bytes to --high_water - 1 (99 bytes)".
  std::string Refusal(absl::string_view flag, absl::string_view value, uint64_t below_value) const;
};

}  // namespace brrr

#endif  // BRRR_RUNTIME_INTEGER_RANGE_H_
