#include "tests/testing/sanitizer.h"

#include <cstdlib>

#include "absl/strings/str_split.h"

namespace brrr::testing {

bool UnderSanitizer(std::string_view name) {
  const char* value = std::getenv("BRRR_SANITIZER");
  if (value == nullptr) return false;
  for (absl::string_view s : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
    if (std::string_view(s.data(), s.size()) == name) return true;
  }
  return false;
}

bool ResidentMemoryMeasuresHoldings() { return !UnderSanitizer("asan") && !UnderSanitizer("tsan"); }

}  // namespace brrr::testing
