// cli_values.h: the values brrrctl reads from its command line, as absl flag types and parsers:
// rates and counts with decimal suffixes, lists of loops, durations in whole milliseconds.
//
//   ABSL_FLAG(brrr::control::Quantity, conn_rate, {}, "...");   // --conn_rate=10KB -> 10000
//   ABSL_FLAG(brrr::control::LoopList, loop, {}, "...");        // --loop=0,2 -> {0, 2}
//   absl::StatusOr<uint32_t> ms = WholeMilliseconds(absl::GetFlag(FLAGS_duration));
//
// Parse errors say what was expected; absl prefixes them with the flag's name.
//
// Threads: pure functions.
#ifndef BRRR_CONTROL_CLI_VALUES_H_
#define BRRR_CONTROL_CLI_VALUES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace brrr::control {

// A count or a rate: a plain number or one with a decimal suffix, K (1,000), M (10^6),
// G (10^9) or T (10^12), in either case, optionally followed by "B" and/or "/s": "1500",
// "10K", "10KB", "1.5M", "2GB/s". The value must come out whole ("1.5K" is 1500, "1.0005K"
// is an error). "unlimited" is 0. Binary suffixes (Ki, KiB...) are refused, not guessed.
absl::StatusOr<uint64_t> ParseQuantity(absl::string_view text);

// The shortest exact text ParseQuantity reads back: 10000 -> "10K", 1500 -> "1500".
std::string FormatQuantity(uint64_t value);

struct Quantity {
  uint64_t value = 0;
  std::string text;  // as given ("10K", "unlimited"), for messages; empty for the default
};
bool AbslParseFlag(absl::string_view text, Quantity* quantity, std::string* error);
std::string AbslUnparseFlag(const Quantity& quantity);

// Loop indexes, comma-separated: "0", "0,1,3". Empty: no loop named (commands read it as
// "every loop"), which is the default; given so on the command line, brrrctl refuses it
// (CheckLoopFlag, commands.h).
struct LoopList {
  std::vector<uint32_t> loops;
};
bool AbslParseFlag(absl::string_view text, LoopList* list, std::string* error);
std::string AbslUnparseFlag(const LoopList& list);

// `duration` as whole milliseconds for a uint32 field of the admin API. Errors
// (InvalidArgument): negative, infinite, a fraction of a millisecond, or past 2^32 - 1 ms.
absl::StatusOr<uint32_t> WholeMilliseconds(absl::Duration duration);

// `interval` (watch's --interval) as WatchStats' interval_ms: WholeMilliseconds, and not 0,
// which the API reads as "the default" (1 s) where the user asked for no time at all.
absl::StatusOr<uint32_t> SampleIntervalMilliseconds(absl::Duration interval);

// A duration for people: whole milliseconds, e.g. "1h2m3.456s", "250ms", "0".
std::string FormatMilliseconds(double milliseconds);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_CLI_VALUES_H_
