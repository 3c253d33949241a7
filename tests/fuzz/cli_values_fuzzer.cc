// brrrctl's value parsers (control/brrrctl/cli_values.h) on any text: no crash, and what they
// accept means what they say. A quantity is the value its digits and suffix make (worked out
// here another way, by moving the decimal point), and reads back from its shortest form and
// from its digits; a loop list reads back from its unparsed form; a duration (as absl reads a
// flag) is accepted as whole milliseconds exactly when it is one from 0 to 2^32 - 1 ms, and then
// is that many. From the first 8 bytes as a number: FormatQuantity reads back, and
// FormatMilliseconds reads back as a duration (within the range a duration holds).
//
// Input: the text of a flag value; its first 8 bytes are also the number.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "control/brrrctl/cli_values.h"
#include "tests/fuzz/fuzz_input.h"

namespace brrr::fuzz {
namespace {

using control::FormatMilliseconds;
using control::FormatQuantity;
using control::ParseQuantity;

void Require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "cli_values_fuzzer: %s\n", what.c_str());
  std::abort();
}

// The value of a quantity worked out another way: the suffix moves the decimal point, the digits
// moved past it must be zeros, and the digits before it must not pass 2^64 - 1 (compared as
// text). Nothing when the text is not a quantity, or not a whole one in range.
std::optional<uint64_t> ExactQuantity(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  if (absl::EqualsIgnoreCase(text, "unlimited")) return 0;
  absl::ConsumeSuffix(&text, "/s");
  if (!absl::ConsumeSuffix(&text, "B")) absl::ConsumeSuffix(&text, "b");
  size_t exponent = 0;
  if (!text.empty()) {
    absl::string_view letters = "KMGT";
    size_t at = letters.find(absl::ascii_toupper(text.back()));
    if (at != absl::string_view::npos) {
      exponent = 3 * (at + 1);
      text.remove_suffix(1);
    }
  }
  size_t dot = text.find('.');
  absl::string_view whole = text.substr(0, dot);
  absl::string_view fraction = dot == absl::string_view::npos ? "" : text.substr(dot + 1);
  auto digits = [](absl::string_view s) { return std::all_of(s.begin(), s.end(), absl::ascii_isdigit); };
  if (whole.empty() || !digits(whole) || !digits(fraction)) return std::nullopt;
  if (dot != absl::string_view::npos && fraction.empty()) return std::nullopt;
  std::string moved(whole);
  for (size_t i = 0; i < exponent; ++i) moved += i < fraction.size() ? fraction[i] : '0';
  if (fraction.size() > exponent && fraction.substr(exponent).find_first_not_of('0') != absl::string_view::npos) {
    return std::nullopt;  // not whole
  }
  absl::string_view significant = moved;
  while (significant.size() > 1 && significant.front() == '0') significant.remove_prefix(1);
  constexpr absl::string_view kMax = "18446744073709551615";
  if (significant.size() > kMax.size() || (significant.size() == kMax.size() && significant > kMax)) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (char c : significant) value = value * 10 + static_cast<uint64_t>(c - '0');
  return value;
}

void Quantity(absl::string_view text) {
  absl::StatusOr<uint64_t> value = ParseQuantity(text);
  if (!value.ok()) {
    Require(!value.status().message().empty(), "a quantity refused without a reason");
    return;
  }
  std::optional<uint64_t> exact = ExactQuantity(text);
  Require(exact.has_value() && *exact == *value,
          absl::StrCat("\"", text, "\" is read as ", *value, " but is ",
                       exact.has_value() ? absl::StrCat(*exact) : std::string("no whole quantity in range")));
  absl::StatusOr<uint64_t> shortest = ParseQuantity(FormatQuantity(*value));
  Require(shortest.ok() && *shortest == *value,
          absl::StrCat("\"", text, "\" is ", *value, " but its form \"", FormatQuantity(*value), "\" is not"));
  absl::StatusOr<uint64_t> digits = ParseQuantity(absl::StrCat(*value));
  Require(digits.ok() && *digits == *value, absl::StrCat("\"", text, "\" is ", *value, " but its digits are not"));
}

void Loops(absl::string_view text) {
  control::LoopList list;
  std::string error;
  if (!AbslParseFlag(text, &list, &error)) {
    Require(!error.empty(), "a loop list refused without a reason");
    return;
  }
  control::LoopList again;
  std::string unparsed = AbslUnparseFlag(list);
  Require(AbslParseFlag(unparsed, &again, &error) && again.loops == list.loops,
          absl::StrCat("\"", text, "\" does not read back from \"", unparsed, "\""));
}

void Milliseconds(absl::Duration d) {
  absl::StatusOr<uint32_t> ms = control::WholeMilliseconds(d);
  bool whole = d >= absl::ZeroDuration() && d != absl::InfiniteDuration() &&
               d % absl::Milliseconds(1) == absl::ZeroDuration() &&
               d <= absl::Milliseconds(std::numeric_limits<uint32_t>::max());
  Require(ms.ok() == whole, absl::StrCat(absl::FormatDuration(d), whole ? " refused: " : " accepted as ",
                                         ms.ok() ? absl::StrCat(*ms) : ms.status().ToString()));
  if (ms.ok()) Require(absl::Milliseconds(*ms) == d, absl::StrCat(absl::FormatDuration(d), " is not ", *ms, " ms"));
}

}  // namespace

int OneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  Quantity(text);
  Loops(text);
  if (absl::Duration d; absl::ParseDuration(text, &d)) Milliseconds(d);

  FuzzInput in(data, size);
  const uint64_t bits = in.Uint(8);
  Milliseconds(absl::Nanoseconds(static_cast<int64_t>(bits)));
  Milliseconds(absl::Milliseconds(static_cast<int64_t>(bits)));
  absl::StatusOr<uint64_t> back = ParseQuantity(FormatQuantity(bits));
  Require(back.ok() && *back == bits, absl::StrCat(bits, " does not read back from ", FormatQuantity(bits)));

  double ms;
  std::memcpy(&ms, &bits, sizeof ms);
  std::string shown = FormatMilliseconds(ms);
  // Past about 9.2e18 ms a duration saturates; NaN and infinities are shown as such.
  if (std::isfinite(ms) && std::fabs(ms) < 9e18) {
    absl::Duration d;
    Require(absl::ParseDuration(shown, &d) && d == absl::Milliseconds(std::llround(ms)),
            absl::StrCat(ms, " ms is shown as \"", shown, "\""));
  }
  return 0;
}

}  // namespace brrr::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return brrr::fuzz::OneInput(data, size); }
