#include "runtime/integer_flag.h"

#include "absl/flags/marshalling.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace brrr {
namespace {

constexpr __int128 kMostInt128 = static_cast<__int128>((static_cast<unsigned __int128>(1) << 127) - 1);
constexpr __int128 kLeastInt128 = -kMostInt128 - 1;

bool AllDigits(absl::string_view text, bool (*digit)(unsigned char)) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!digit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Whether absl's integer flags would read `text` (stripped) were it not too large for them:
// 0x and hexadecimal digits, or decimal digits after an optional sign.
bool WholeNumberPastSixtyFourBits(absl::string_view text) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    return AllDigits(text.substr(2), absl::ascii_isxdigit);
  }
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) text.remove_prefix(1);
  return AllDigits(text, absl::ascii_isdigit);
}

}  // namespace

IntegerFlag::IntegerFlag(int64_t value) : value_(value), text_(absl::StrCat(value)) {}

std::optional<uint64_t> IntegerFlag::In(const IntegerRange& range) const {
  if (!range.Contains(value_)) return std::nullopt;
  return static_cast<uint64_t>(value_);
}

bool AbslParseFlag(absl::string_view text, IntegerFlag* flag, std::string* error) {
  const absl::string_view stripped = absl::StripAsciiWhitespace(text);
  int64_t signed_value = 0;
  uint64_t unsigned_value = 0;
  std::string ignored;
  __int128 value = 0;
  if (absl::ParseFlag(stripped, &signed_value, &ignored)) {
    value = signed_value;
  } else if (absl::ParseFlag(stripped, &unsigned_value, &ignored)) {
    value = unsigned_value;
  } else if (WholeNumberPastSixtyFourBits(stripped)) {
    value = stripped[0] == '-' ? kLeastInt128 : kMostInt128;
  } else {
    *error = "expected a whole number";
    return false;
  }
  flag->value_ = value;
  flag->text_ = std::string(stripped);
  return true;
}

std::string AbslUnparseFlag(const IntegerFlag& flag) { return flag.text(); }

}  // namespace brrr
