// flag_ranges.h: the ranges brrr-echo checks itself (the echo server's own are in
// server/server_options.h), each declared once: main.cc checks a flag by its range, and the
// flag's --help and the error for a value outside it state the range from the same numbers.
//
//   absl::StrCat("Admin calls in progress at once (", kAdminMaxCallsRange.ToString(), ")");
//   kAdminReservedFdsRange.For(admin_max_connections).Contains(reserved_fds);
//
// Threads: constants.
#ifndef BRRR_SERVER_BRRR_ECHO_FLAG_RANGES_H_
#define BRRR_SERVER_BRRR_ECHO_FLAG_RANGES_H_

#include <chrono>
#include <cstdint>

#include "control/admin/admin_listener.h"
#include "runtime/duration_range.h"
#include "runtime/integer_range.h"

namespace brrr::echo_flags {

inline constexpr IntegerRange kPortRange{.min = 0, .max = 65535};
inline constexpr IntegerRange kAdminPortRange{.min = 0, .max = kPortRange.max, .note = " (0: no admin plane)"};
inline constexpr IntegerRange kMetricsPortRange{.min = 0, .max = kPortRange.max, .note = " (0: no metrics port)"};
inline constexpr IntegerRange kAdminMaxConnectionsRange{.min = 1, .max = 1000};
inline constexpr IntegerRange kAdminMaxCallsRange{.min = 1, .max = 10'000};
inline constexpr IntegerRange kMetricsMaxConnectionsRange{.min = 1, .max = 1000};
inline constexpr DurationRange kAdminMaxBlockRange{.min = std::chrono::milliseconds(1),
                                                   .max = std::chrono::minutes(10)};
inline constexpr DurationRange kAdminIdleTimeoutRange{.min = std::chrono::milliseconds(100),
                                                      .max = std::chrono::hours(24)};
inline constexpr DurationRange kAdminUnreadTimeoutRange{.min = std::chrono::seconds(1), .max = std::chrono::hours(24)};

// Descriptors gRPC may open after the echo server has measured what is open (the budget leaves
// the admin plane those measured): the admin listener's connection it closes past the cap,
// and what gRPC creates lazily.
inline constexpr uint32_t kGrpcDescriptorsAfterStart = 8;
// --admin_reserved_fds: what each admin connection holds (AdminListener::kDescriptorsPerConnection)
// for every one of --admin_max_connections, and what gRPC opens after start.
inline constexpr ScaledMinimumRange kAdminReservedFdsRange{.per = control::AdminListener::kDescriptorsPerConnection,
                                                           .of = "--admin_max_connections",
                                                           .plus = kGrpcDescriptorsAfterStart,
                                                           .max = 1'000'000};

}  // namespace brrr::echo_flags

#endif  // BRRR_SERVER_BRRR_ECHO_FLAG_RANGES_H_
