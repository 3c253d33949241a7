#include "server/server_options.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runtime/event_loop.h"
#include "runtime/socket_address.h"
#include "runtime/stall_threshold.h"
#include "server/throttle.h"

namespace brrr::server {

absl::Status Validate(const EchoServerOptions& o) {
  if (!kLoopsRange.Contains(o.loops)) {
    return absl::InvalidArgumentError(kLoopsRange.Refusal("--loops", absl::StrCat(o.loops)));
  }
  if (!kMaxConnectionsRange.Contains(o.max_connections)) {
    return absl::InvalidArgumentError(
        kMaxConnectionsRange.Refusal("--max_connections", absl::StrCat(o.max_connections)));
  }
  if (!kHighWaterRange.Contains(o.high_water)) {
    return absl::InvalidArgumentError(kHighWaterRange.Refusal("--high_water", absl::StrCat(o.high_water)));
  }
  if (IntegerRange low_water = LowWaterRange(o.high_water); !low_water.Contains(o.low_water)) {
    return absl::InvalidArgumentError(low_water.Refusal("--low_water", absl::StrCat(o.low_water)));
  }
  if (o.idle_timeout < Duration::zero() || o.idle_timeout > kMaxIdleTimeout) {
    return absl::InvalidArgumentError("--idle_timeout must be from 0 (never) to 24h");
  }
  if (o.drain_timeout < Duration::zero() || o.drain_timeout > kMaxDrainTimeout) {
    return absl::InvalidArgumentError("--drain_timeout must be from 0 to 24h");
  }
  if (o.drain_grace < Duration::zero() || o.drain_grace > kMaxDrainGrace) {
    return absl::InvalidArgumentError(
        "--drain_grace must be from 0 to 10m (how long a draining server keeps accepting after it reports "
        "not-ready; a few of the balancer's health-check intervals)");
  }
  // The admin plane's SetStallThreshold range, so that the threshold a server starts with can be
  // set back.
  if (o.stall_threshold < Duration(kMinStallThresholdNs) || o.stall_threshold > Duration(kMaxStallThresholdNs)) {
    return absl::InvalidArgumentError("--stall_threshold must be from 1ms to 60s");
  }
  if (o.idle_poll < Duration::zero() || o.idle_poll > EventLoopOptions::kMaxIdlePoll) {
    return absl::InvalidArgumentError(
        absl::StrCat("--idle_poll=", absl::FormatDuration(absl::FromChrono(o.idle_poll)), ": must be from 0 to ",
                     absl::FormatDuration(absl::FromChrono(EventLoopOptions::kMaxIdlePoll))));
  }
  if (!kReceiveBufferSizeRange.Contains(o.receive_buffer_size)) {
    return absl::InvalidArgumentError(
        kReceiveBufferSizeRange.Refusal("--recv_buffer_size", absl::StrCat(o.receive_buffer_size)));
  }
  if (!kReceiveBuffersRange.Contains(o.receive_buffer_count)) {
    return absl::InvalidArgumentError(
        kReceiveBuffersRange.Refusal("--recv_buffers", absl::StrCat(o.receive_buffer_count)));
  }
  if (o.reply_prefix.size() > kMaxReplyPrefixBytes) {
    return absl::InvalidArgumentError(absl::StrCat("--reply_prefix is ", o.reply_prefix.size(),
                                                   " bytes long: it may be at most ", kMaxReplyPrefixBytes,
                                                   " bytes (each received line is answered with all of it)"));
  }
  auto address = SocketAddress::Parse(o.host, o.port);
  if (!address.ok()) return absl::InvalidArgumentError(absl::StrCat("--host: ", address.status().message()));
  return absl::OkStatus();
}

}  // namespace brrr::server
