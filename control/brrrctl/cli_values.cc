#include "control/brrrctl/cli_values.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "control/admin/request_ranges.h"

namespace brrr::control {
namespace {

constexpr absl::string_view kQuantityForm =
    "expected a number with an optional decimal suffix K, M, G or T (1 K = 1000), e.g. 500, 10K, 10KB, 1.5M";

struct Suffix {
  char letter;
  uint64_t multiplier;
};
constexpr Suffix kSuffixes[] = {
    {'K', 1000ull}, {'M', 1000000ull}, {'G', 1000000000ull}, {'T', 1000000000000ull}};

bool AllDigits(absl::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); });
}

}  // namespace

absl::StatusOr<uint64_t> ParseQuantity(absl::string_view text) {
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  if (absl::EqualsIgnoreCase(rest, "unlimited")) return 0;
  absl::ConsumeSuffix(&rest, "/s");
  if (!absl::ConsumeSuffix(&rest, "B")) absl::ConsumeSuffix(&rest, "b");
  if (absl::EndsWithIgnoreCase(rest, "i")) {
    return absl::InvalidArgumentError(
        absl::StrCat("binary suffixes (Ki, Mi...) are not taken; suffixes are decimal (1 K = 1000)"));
  }
  uint64_t multiplier = 1;
  if (!rest.empty()) {
    char last = absl::ascii_toupper(rest.back());
    for (const Suffix& s : kSuffixes) {
      if (last == s.letter) {
        multiplier = s.multiplier;
        rest.remove_suffix(1);
        break;
      }
    }
  }
  absl::string_view whole = rest;
  absl::string_view fraction;
  if (size_t dot = rest.find('.'); dot != absl::string_view::npos) {
    whole = rest.substr(0, dot);
    fraction = rest.substr(dot + 1);
    if (!AllDigits(fraction) || fraction.size() > 18) {
      return absl::InvalidArgumentError(kQuantityForm);
    }
  }
  uint64_t whole_value = 0;
  if (!AllDigits(whole) || !absl::SimpleAtoi(whole, &whole_value)) {
    return absl::InvalidArgumentError(kQuantityForm);
  }
  // 128 bits hold any uint64 times 10^12, and any 18-digit fraction times 10^12.
  unsigned __int128 value = static_cast<unsigned __int128>(whole_value) * multiplier;
  if (!fraction.empty()) {
    uint64_t fraction_value = 0;
    if (!absl::SimpleAtoi(fraction, &fraction_value)) {  // at most 18 digits: it fits
      return absl::InvalidArgumentError(kQuantityForm);
    }
    unsigned __int128 scale = 1;
    for (size_t i = 0; i < fraction.size(); ++i) scale *= 10;
    unsigned __int128 scaled = static_cast<unsigned __int128>(fraction_value) * multiplier;
    if (scaled % scale != 0) {
      return absl::InvalidArgumentError("not a whole number");
    }
    value += scaled / scale;
  }
  if (value > std::numeric_limits<uint64_t>::max()) {
    return absl::InvalidArgumentError("too large");
  }
  return static_cast<uint64_t>(value);
}

std::string FormatQuantity(uint64_t value) {
  for (auto it = std::rbegin(kSuffixes); it != std::rend(kSuffixes); ++it) {
    if (value != 0 && value % it->multiplier == 0) return absl::StrCat(value / it->multiplier, std::string(1, it->letter));
  }
  return absl::StrCat(value);
}

bool AbslParseFlag(absl::string_view text, Quantity* quantity, std::string* error) {
  absl::StatusOr<uint64_t> value = ParseQuantity(text);
  if (!value.ok()) {
    *error = std::string(value.status().message());
    return false;
  }
  quantity->value = *value;
  quantity->text = std::string(text);
  return true;
}

std::string AbslUnparseFlag(const Quantity& quantity) { return FormatQuantity(quantity.value); }

bool AbslParseFlag(absl::string_view text, LoopList* list, std::string* error) {
  LoopList parsed;
  if (!absl::StripAsciiWhitespace(text).empty()) {
    for (absl::string_view part : absl::StrSplit(text, ',')) {
      uint32_t loop = 0;
      part = absl::StripAsciiWhitespace(part);
      if (!AllDigits(part) || !absl::SimpleAtoi(part, &loop)) {
        *error = absl::StrCat("\"", part, "\" is not a loop index: expected loop indexes from 0, comma-separated, e.g. 0 or 0,2");
        return false;
      }
      parsed.loops.push_back(loop);
    }
  }
  *list = std::move(parsed);
  return true;
}

std::string AbslUnparseFlag(const LoopList& list) { return absl::StrJoin(list.loops, ","); }

absl::StatusOr<uint32_t> WholeMilliseconds(absl::Duration duration) {
  if (duration < absl::ZeroDuration() || duration == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(absl::FormatDuration(duration), ": expected a duration from 0, such as 300ms or 2s"));
  }
  absl::Duration remainder;
  int64_t ms = absl::IDivDuration(duration, absl::Milliseconds(1), &remainder);
  if (remainder != absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(absl::FormatDuration(duration), ": not a whole number of milliseconds"));
  }
  if (ms > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(absl::FormatDuration(duration), ": too long"));
  }
  return static_cast<uint32_t>(ms);
}

absl::StatusOr<uint32_t> SampleIntervalMilliseconds(absl::Duration interval) {
  absl::StatusOr<uint32_t> ms = WholeMilliseconds(interval);
  if (ms.ok() && (*ms < kMinWatchIntervalMs || *ms > kMaxWatchIntervalMs)) {
    // The server's range (WatchStats), said before any call: a usage error, not a refusal.
    return absl::InvalidArgumentError(
        absl::StrCat(absl::FormatDuration(interval), ": the time between samples must be from ",
                     absl::FormatDuration(absl::Milliseconds(kMinWatchIntervalMs)), " to ",
                     absl::FormatDuration(absl::Milliseconds(kMaxWatchIntervalMs))));
  }
  return ms;
}

std::string FormatMilliseconds(double milliseconds) {
  if (!std::isfinite(milliseconds)) return absl::StrCat(milliseconds, "ms");
  return absl::FormatDuration(absl::Milliseconds(std::llround(milliseconds)));
}

}  // namespace brrr::control
