// admin_convert.h: brrr's own figures as brrr.admin.v1 messages, and the statistics report.
//
// Times in the messages are relative to the server's start (uptime seconds) or durations in
// milliseconds/seconds as each field documents; `started_at_ns` (monotonic) is the server's
// start.
//
// Threads: any; CollectStats reads every loop's published figures without locking a loop.
#ifndef BRRR_CONTROL_ADMIN_CONVERT_H_
#define BRRR_CONTROL_ADMIN_CONVERT_H_

#include <cstdint>

#include "brrr/admin/v1/admin.pb.h"
#include "control/admin/task_injector.h"
#include "runtime/socket_table.h"
#include "runtime/stall_detector.h"
#include "control/admin/administered.h"
#include "server/throttle.h"

namespace brrr::control {

// GetStats: every loop, the total, the throttles and the active injections.
brrr::admin::v1::Stats CollectStats(const Administered& target, TaskInjector& injector);

void ToProto(const server::ThrottleSettings& settings, brrr::admin::v1::Throttle* out);
brrr::admin::v1::DrainPhase ToProto(server::DrainPhase phase);
void ToProto(const InjectionStatus& injection, int64_t started_at_ns, brrr::admin::v1::Injection* out);
void ToProto(const SocketInfo& socket, uint32_t loop, brrr::admin::v1::SocketInfo* out);
void ToProto(const StallReport& stall, int64_t started_at_ns, brrr::admin::v1::Stall* out);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_CONVERT_H_
