#include "runtime/duration_range.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace brrr {

std::string FormatFlagDuration(Duration d) {
  // An absl::Duration flag of "inf" or "-inf" saturates to these (absl::ToInt64Nanoseconds).
  if (d == Duration::max()) return "inf";
  if (d == Duration::min()) return "-inf";
  return absl::FormatDuration(absl::FromChrono(d));
}

std::string DurationRange::ToString() const {
  return absl::StrCat(FormatFlagDuration(min), " to ", FormatFlagDuration(max), note);
}

std::string DurationRange::Refusal(absl::string_view flag, Duration value) const {
  return absl::StrCat(flag, "=", FormatFlagDuration(value), ": must be from ", ToString());
}

}  // namespace brrr
