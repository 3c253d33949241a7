#include "control/admin/request_checks.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "control/admin/loop_range.h"
#include "control/admin/peer_address.h"

namespace brrr::control {

namespace admin = brrr::admin::v1;

absl::StatusOr<std::vector<uint32_t>> CheckLoops(const google::protobuf::RepeatedField<uint32_t>& loops,
                                                 uint32_t loop_count) {
  std::vector<uint32_t> selected;
  for (uint32_t loop : loops) {
    if (loop >= loop_count) {
      return absl::NotFoundError(NoSuchLoop(loop, loop_count));
    }
    selected.push_back(loop);
  }
  if (selected.empty()) {
    for (uint32_t i = 0; i < loop_count; ++i) selected.push_back(i);
  }
  std::sort(selected.begin(), selected.end());
  selected.erase(std::unique(selected.begin(), selected.end()), selected.end());
  return selected;
}

absl::StatusOr<uint32_t> CheckWatchStats(const admin::WatchStatsRequest& request) {
  uint32_t interval_ms = request.interval_ms() == 0 ? kDefaultWatchIntervalMs : request.interval_ms();
  if (interval_ms < kMinWatchIntervalMs || interval_ms > kMaxWatchIntervalMs) {
    return absl::InvalidArgumentError(absl::StrCat("interval_ms=", interval_ms, " is out of range: allowed ",
                                                   kMinWatchIntervalMs, " to ", kMaxWatchIntervalMs, " (0 means ",
                                                   kDefaultWatchIntervalMs, ")"));
  }
  return interval_ms;
}

absl::StatusOr<SocketQuery> CheckListSockets(const admin::ListSocketsRequest& request, const RequestLimits& limits) {
  SocketQuery query;
  query.limit = request.limit() == 0 ? kDefaultSocketLimit : request.limit();
  if (query.limit > kMaxSocketLimit) {
    return absl::InvalidArgumentError(absl::StrCat("limit=", query.limit, " is out of range: allowed 1 to ",
                                                   kMaxSocketLimit, " (0 means ", kDefaultSocketLimit, ")"));
  }
  if (!admin::ListSocketsRequest::SetFilter_IsValid(request.set())) {
    return absl::InvalidArgumentError(
        absl::StrCat("set=", request.set(), " is not a known filter: ALL, READ_SET, WRITE_SET or NEITHER"));
  }
  google::protobuf::RepeatedField<uint32_t> asked;
  if (request.has_loop()) asked.Add(request.loop());
  absl::StatusOr<std::vector<uint32_t>> loops = CheckLoops(asked, limits.loops);
  if (!loops.ok()) return loops.status();
  query.loops = *std::move(loops);
  return query;
}

absl::StatusOr<server::ThrottleChange> CheckSetThrottle(const admin::SetThrottleRequest& request) {
  server::ThrottleChange change;
  if (request.has_bytes_per_second_per_connection()) {
    change.bytes_per_second_per_connection = request.bytes_per_second_per_connection();
  }
  if (request.has_bytes_per_second_total()) change.bytes_per_second_total = request.bytes_per_second_total();
  if (request.has_accepts_per_second()) change.accepts_per_second = request.accepts_per_second();
  if (request.has_max_connections()) change.max_connections = request.max_connections();
  if (request.has_accepting_paused()) change.accepting_paused = request.accepting_paused();
  if (absl::Status valid = server::Throttle::Check(change); !valid.ok()) return valid;
  return change;
}

absl::StatusOr<InjectionSpec> CheckInjectTask(const admin::InjectTaskRequest& request, const RequestLimits& limits) {
  InjectionSpec spec;
  switch (request.kind()) {
    case admin::BLOCKING_SPIN:
      spec.kind = InjectionKind::kBlockingSpin;
      break;
    case admin::BLOCKING_SLEEP:
      spec.kind = InjectionKind::kBlockingSleep;
      break;
    case admin::NONBLOCKING_SLEEP:
      spec.kind = InjectionKind::kNonblockingSleep;
      break;
    default:
      return absl::InvalidArgumentError("kind must be BLOCKING_SPIN, BLOCKING_SLEEP or NONBLOCKING_SLEEP");
  }
  spec.duration = std::chrono::milliseconds(request.duration_ms());
  spec.count = request.count();
  spec.interval = std::chrono::milliseconds(request.interval_ms());
  spec.loops.assign(request.loops().begin(), request.loops().end());
  return CheckInjectionSpec(std::move(spec), limits.max_block, limits.loops);
}

absl::Status CheckCancelInjection(const admin::CancelInjectionRequest& request) {
  if (request.id() == 0) return absl::InvalidArgumentError("id is required: the id InjectTask returned (1, 2, ...)");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint32_t>> CheckCloseConnection(const admin::CloseConnectionRequest& request,
                                                           const RequestLimits& limits) {
  if (request.fd() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("fd=", request.fd(), " is not a descriptor (see ListSockets)"));
  }
  const std::string& peer = request.peer();
  if (peer.size() > kMaxPeerAddressBytes ||
      !std::all_of(peer.begin(), peer.end(), [](char c) { return c >= '!' && c <= '~'; })) {
    // Not quoted: the message goes back to the client, and these are its bytes.
    return absl::InvalidArgumentError(
        absl::StrCat("peer (", peer.size(), " bytes) is not a peer address: HOST:PORT as ",
                     "ListSockets gives it, at most ", kMaxPeerAddressBytes, " bytes of visible ASCII"));
  }
  // A peer no connection can have is the caller's mistake, not a descriptor given out again.
  if (!peer.empty()) {
    if (absl::Status form = CheckPeerAddress(peer); !form.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("peer: ", form.message()));
    }
  }
  google::protobuf::RepeatedField<uint32_t> asked;
  if (request.has_loop()) asked.Add(request.loop());
  return CheckLoops(asked, limits.loops);
}

absl::StatusOr<StallThresholdChange> CheckSetStallThreshold(const admin::SetStallThresholdRequest& request,
                                                            const RequestLimits& limits) {
  double ms = request.threshold_ms();
  if (!std::isfinite(ms) || ms < kMinStallThresholdMs || ms > kMaxStallThresholdMs) {
    // %.15g: the digits a request has (up to 15), so that 60000.000001 does not read as 60000.
    return absl::InvalidArgumentError(absl::StrFormat("threshold_ms=%.15g is out of range: allowed %g to %g", ms,
                                                      kMinStallThresholdMs, kMaxStallThresholdMs));
  }
  absl::StatusOr<std::vector<uint32_t>> loops = CheckLoops(request.loops(), limits.loops);
  if (!loops.ok()) return loops.status();
  return StallThresholdChange{.threshold_ns = static_cast<int64_t>(ms * 1e6), .loops = *std::move(loops)};
}

}  // namespace brrr::control
