#include "server/throttle.h"

#include "absl/strings/str_cat.h"

namespace brrr::server {

namespace {

absl::Status CheckRange(const char* name, const std::optional<uint64_t>& value, uint64_t min, uint64_t max,
                        bool zero_allowed) {
  if (!value.has_value()) return absl::OkStatus();
  if ((*value == 0 && zero_allowed) || (*value >= min && *value <= max)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(name, "=", *value, " is out of range: allowed ",
                                                 zero_allowed ? "0 (unlimited) or " : "", min, " to ", max));
}

}  // namespace

Throttle::Throttle(uint64_t max_connections) : max_connections_(max_connections) {}

absl::Status Throttle::Check(const ThrottleChange& change) {
  absl::Status valid = CheckRange("bytes_per_second_per_connection", change.bytes_per_second_per_connection,
                                  kMinBytesPerSecond, kMaxBytesPerSecond, true);
  valid.Update(CheckRange("bytes_per_second_total", change.bytes_per_second_total, kMinBytesPerSecond,
                          kMaxBytesPerSecond, true));
  valid.Update(CheckRange("accepts_per_second", change.accepts_per_second, 1, kMaxAcceptsPerSecond, true));
  valid.Update(CheckRange("max_connections", change.max_connections, 1, kMaxConnectionsLimit, false));
  return valid;
}

absl::Status Throttle::Apply(const ThrottleChange& change) {
  if (absl::Status valid = Check(change); !valid.ok()) return valid;
  auto set = [](std::atomic<uint64_t>& to, const std::optional<uint64_t>& value) {
    if (value.has_value()) to.store(*value, std::memory_order_relaxed);
  };
  set(per_connection_, change.bytes_per_second_per_connection);
  set(total_, change.bytes_per_second_total);
  set(accepts_, change.accepts_per_second);
  set(max_connections_, change.max_connections);
  if (change.accepting_paused.has_value()) paused_.store(*change.accepting_paused, std::memory_order_relaxed);
  // A new rate starts with a clean slate: debt run up under the old one is forgotten.
  if (change.bytes_per_second_total.has_value()) total_bytes_.reset();
  if (change.accepts_per_second.has_value()) accepted_.reset();
  return absl::OkStatus();
}

ThrottleSettings Throttle::settings() const {
  return ThrottleSettings{
      .bytes_per_second_per_connection = bytes_per_second_per_connection(),
      .bytes_per_second_total = bytes_per_second_total(),
      .accepts_per_second = accepts_per_second(),
      .max_connections = max_connections(),
      .accepting_paused = accepting_paused(),
  };
}

}  // namespace brrr::server
