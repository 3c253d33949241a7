// integer_flag.h: an absl flag type for a whole number whose range the program checks itself.
//
// absl's integer flags refuse a number their type cannot hold as if it were malformed: "-1" for
// a uint64_t flag, 5000000000 for an int32_t one, 2^64 for any. The program then exits as for a
// typo (brrr-echo: 1), where a number outside the option's range should get the range's
// message and exit code (brrr-echo: 2) whatever its size or sign. An IntegerFlag takes every
// number absl's integer flags take (decimal with an optional sign, or 0x hexadecimal; whitespace
// around it), with any number of digits, and leaves the range to IntegerRange:
//
//   ABSL_FLAG(brrr::IntegerFlag, loops, 1, "...");
//   const brrr::IntegerFlag loops = absl::GetFlag(FLAGS_loops);
//   std::optional<uint64_t> n = loops.In(kLoopsRange);          // nullopt: outside it
//   if (!n) Fail(kLoopsRange.Refusal("--loops", loops.text()));  // "--loops=-1: must be from 1 to 256"
//
// Threads: a value type.
#ifndef BRRR_RUNTIME_INTEGER_FLAG_H_
#define BRRR_RUNTIME_INTEGER_FLAG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "runtime/integer_range.h"

namespace brrr {

class IntegerFlag {
 public:
  // A flag's default.
  IntegerFlag(int64_t value = 0);  // NOLINT(google-explicit-constructor): ABSL_FLAG's default

  // The value, if `range` holds it.
  std::optional<uint64_t> In(const IntegerRange& range) const;
  // As given, without the whitespace around it ("-1", "0x10"): for messages.
  const std::string& text() const { return text_; }

 private:
  friend bool AbslParseFlag(absl::string_view text, IntegerFlag* flag, std::string* error);

  // A number past every 64-bit type is kept as the most or the least an __int128 holds: outside
  // every range either way.
  __int128 value_;
  std::string text_;
};

// Errors: anything but a whole number ("expected a whole number").
bool AbslParseFlag(absl::string_view text, IntegerFlag* flag, std::string* error);
std::string AbslUnparseFlag(const IntegerFlag& flag);

}  // namespace brrr

#endif  // BRRR_RUNTIME_INTEGER_FLAG_H_
