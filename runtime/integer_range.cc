#include "runtime/integer_range.h"

#include "absl/strings/str_cat.h"

namespace brrr {
namespace {

// "1 byte", "512 bytes", "16 MiB (16777216 bytes)": a whole number of the largest binary unit
// that divides it, with the bytes it is.
std::string Bytes(uint64_t bytes) {
  if (bytes == 1) return "1 byte";
  constexpr struct {
    uint64_t size;
    const char* name;
  } kUnits[] = {{uint64_t{1} << 40, "TiB"}, {uint64_t{1} << 30, "GiB"}, {uint64_t{1} << 20, "MiB"}, {1024, "KiB"}};
  for (const auto& unit : kUnits) {
    if (bytes >= unit.size && bytes % unit.size == 0) {
      return absl::StrCat(bytes / unit.size, " ", unit.name, " (", bytes, " bytes)");
    }
  }
  return absl::StrCat(bytes, " bytes");
}

// "99 bytes", "1 byte", "99": a number as it is, with its unit.
std::string Plain(uint64_t n, IntegerRange::Unit unit) {
  if (unit != IntegerRange::Unit::kBytes) return absl::StrCat(n);
  return n == 1 ? "1 byte" : absl::StrCat(n, " bytes");
}

}  // namespace

std::string IntegerRange::ToString() const {
  if (unit == Unit::kBytes) return absl::StrCat(Bytes(min), " to ", Bytes(max), note);
  return absl::StrCat(min, " to ", max, note);
}

std::string IntegerRange::Refusal(absl::string_view flag, absl::string_view value) const {
  return absl::StrCat(flag, "=", value, ": must be from ", ToString());
}

IntegerRange ScaledMinimumRange::For(uint64_t of_value) const {
  unsigned __int128 least = static_cast<unsigned __int128>(per) * of_value + plus;
  return {.min = least > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(least), .max = max};
}

std::string ScaledMinimumRange::Minimum() const {
  return absl::StrCat(per == 1 ? "" : absl::StrCat(per, " x "), of, plus == 0 ? "" : absl::StrCat(" + ", plus));
}

std::string ScaledMinimumRange::ToString() const { return absl::StrCat(Minimum(), " to ", max); }

std::string ScaledMinimumRange::Refusal(absl::string_view flag, absl::string_view value, uint64_t of_value) const {
  return absl::StrCat(flag, "=", value, ": must be from ", Minimum(), " (", For(of_value).min, ") to ", max);
}

IntegerRange BelowOptionRange::For(uint64_t below_value) const {
  if (below_value <= min) return {.min = 1, .max = 0, .unit = unit};  // holds nothing
  return {.min = min, .max = below_value - 1, .unit = unit};
}

std::string BelowOptionRange::ToString() const {
  return absl::StrCat(unit == IntegerRange::Unit::kBytes ? Bytes(min) : absl::StrCat(min), " to ", below, " - 1");
}

std::string BelowOptionRange::Refusal(absl::string_view flag, absl::string_view value, uint64_t below_value) const {
  std::string greatest = below_value <= min ? "none" : Plain(below_value - 1, unit);
  return absl::StrCat(flag, "=", value, ": must be from ", ToString(), " (", greatest, ")");
}

}  // namespace brrr
