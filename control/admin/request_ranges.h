// request_ranges.h: the admin plane's documented ranges (proto/brrr/admin/v1/admin.proto) that
// are numbers alone, declared once for the server's checks (request_checks.h) and for brrrctl,
// which says a flag outside them is a usage error before it calls.
//
//   if (ms < kMinWatchIntervalMs || ms > kMaxWatchIntervalMs) ...
#ifndef BRRR_CONTROL_ADMIN_REQUEST_RANGES_H_
#define BRRR_CONTROL_ADMIN_REQUEST_RANGES_H_

#include <cstdint>

#include "runtime/stall_threshold.h"

namespace brrr::control {

// WatchStats: the time between two Stats.
inline constexpr uint32_t kDefaultWatchIntervalMs = 1000;
inline constexpr uint32_t kMinWatchIntervalMs = 50;
inline constexpr uint32_t kMaxWatchIntervalMs = 3'600'000;
// ListSockets: how many sockets one answer lists.
inline constexpr uint32_t kDefaultSocketLimit = 10'000;
inline constexpr uint32_t kMaxSocketLimit = 100'000;
// SetStallThreshold: the threshold.
inline constexpr double kMinStallThresholdMs = kMinStallThresholdNs / 1e6;
inline constexpr double kMaxStallThresholdMs = kMaxStallThresholdNs / 1e6;

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_REQUEST_RANGES_H_
