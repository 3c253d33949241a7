#include "tests/testing/skips.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"

namespace brrr::testing {

bool Required(const std::string& kind) {
  const char* value = std::getenv("BRRR_REQUIRE");
  if (value == nullptr) return false;
  for (absl::string_view k : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    k = absl::StripAsciiWhitespace(k);  // "ipv6, backends" names both
    if (k == "all" || k == kind) return true;
  }
  return false;
}

bool NoIPv6Here(const absl::Status& listen_error) {
  absl::string_view m = listen_error.message();
  return m.find("Address family not supported") != absl::string_view::npos ||
         m.find("Cannot assign requested address") != absl::string_view::npos;
}

}  // namespace brrr::testing
