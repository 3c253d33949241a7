// request_checks.h: the admin plane's requests checked against the ranges that
// proto/brrr/admin/v1/admin.proto documents, as pure functions of a request and of the server's
// shape (its loops and its --admin_max_block), so that the rules are tested and fuzzed without a
// server (tests/fuzz/admin_requests_fuzzer.cc).
//
//   absl::StatusOr<InjectionSpec> spec = CheckInjectTask(request, {.loops = 4, .max_block = 10s});
//   if (!spec.ok()) return ToGrpc(spec.status());  // e.g. "count=0 ... allowed 1 to 1000000"
//
// Each check returns what the request asks for once its defaults are filled in (an interval of
// 0 is 1000 ms, no loop named is every loop, ...), or the error the RPC answers with:
// InvalidArgument saying what is allowed, NotFound naming a loop the server does not run. What
// depends on the server's state (draining, the injections active, the sockets open) is left to
// the RPC.
//
// Threads: pure functions.
#ifndef BRRR_CONTROL_REQUEST_CHECKS_H_
#define BRRR_CONTROL_REQUEST_CHECKS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "brrr/admin/v1/admin.pb.h"
#include "control/admin/injection_spec.h"
#include "control/admin/request_ranges.h"
#include "runtime/clock.h"
#include "runtime/stall_threshold.h"
#include "server/throttle.h"

namespace brrr::control {

// What a request is checked against besides the documented ranges.
struct RequestLimits {
  uint32_t loops = 0;                     // the server runs loops 0 to loops - 1
  Duration max_block = Duration::zero();  // --admin_max_block: the longest blocking injection
};

// The loops a request names, sorted, each once; every loop when it names none.
absl::StatusOr<std::vector<uint32_t>> CheckLoops(const google::protobuf::RepeatedField<uint32_t>& loops,
                                                 uint32_t loop_count);

// WatchStats: the interval between two Stats, in milliseconds.
absl::StatusOr<uint32_t> CheckWatchStats(const brrr::admin::v1::WatchStatsRequest& request);

// ListSockets: at most `limit` sockets from `loops` (the set filter is the request's own).
struct SocketQuery {
  uint32_t limit = 0;
  std::vector<uint32_t> loops;
};
absl::StatusOr<SocketQuery> CheckListSockets(const brrr::admin::v1::ListSocketsRequest& request,
                                             const RequestLimits& limits);

// SetThrottle: the change it asks for, each member in its range (server::Throttle::Check).
absl::StatusOr<server::ThrottleChange> CheckSetThrottle(const brrr::admin::v1::SetThrottleRequest& request);

// InjectTask: the injection (CheckInjectionSpec with the kind the request names).
absl::StatusOr<InjectionSpec> CheckInjectTask(const brrr::admin::v1::InjectTaskRequest& request,
                                              const RequestLimits& limits);

// CancelInjection: OK when it names an injection id at all (whether it exists is the injector's).
absl::Status CheckCancelInjection(const brrr::admin::v1::CancelInjectionRequest& request);

// The longest peer address CloseConnection takes ("[v6 address%zone]:port" fits).
inline constexpr size_t kMaxPeerAddressBytes = 64;

// CloseConnection: the loops to look for the descriptor on. A peer, if given, is at most
// kMaxPeerAddressBytes of visible ASCII and a peer address as ListSockets writes one
// (peer_address.h), else InvalidArgument. Empty: whichever connection has the descriptor.
absl::StatusOr<std::vector<uint32_t>> CheckCloseConnection(const brrr::admin::v1::CloseConnectionRequest& request,
                                                           const RequestLimits& limits);

// SetStallThreshold: the threshold to set and the loops to set it on.
struct StallThresholdChange {
  int64_t threshold_ns = 0;
  std::vector<uint32_t> loops;
};
absl::StatusOr<StallThresholdChange> CheckSetStallThreshold(
    const brrr::admin::v1::SetStallThresholdRequest& request, const RequestLimits& limits);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_REQUEST_CHECKS_H_
