#include "server/server_options.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "runtime/event_loop.h"
#include "runtime/socket_address.h"
#include "runtime/stall_threshold.h"
#include "server/throttle.h"

namespace brrr::server {

absl::Status Validate(const EchoServerOptions& o) {
  if (o.loops < 1 || o.loops > 256) {
    return absl::InvalidArgumentError(absl::StrCat("--loops=", o.loops, ": must be from 1 to 256"));
  }
  // The admin plane's SetThrottle range, so that the limit a server starts with can be set back.
  if (o.max_connections < 1 || o.max_connections > Throttle::kMaxConnectionsLimit) {
    return absl::InvalidArgumentError(absl::StrCat("--max_connections=", o.max_connections, ": must be from 1 to ",
                                                   Throttle::kMaxConnectionsLimit));
  }
  if (o.high_water < 1 || o.high_water > kMaxHighWater) {
    return absl::InvalidArgumentError(
        absl::StrCat("--high_water=", o.high_water, ": must be from 1 byte to 1 GiB (", kMaxHighWater, " bytes)"));
  }
  if (o.low_water >= o.high_water) {
    return absl::InvalidArgumentError(absl::StrCat("--low_water (", o.low_water, ") must be below --high_water (",
                                                   o.high_water, ")"));
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
  if (o.receive_buffer_size < 512 || o.receive_buffer_size > (16u << 20)) {
    return absl::InvalidArgumentError(absl::StrCat("--recv_buffer_size=", o.receive_buffer_size,
                                                   ": must be from 512 bytes to 16 MiB"));
  }
  if (o.receive_buffer_count < 1 || o.receive_buffer_count > kMaxProvidedBuffers) {
    return absl::InvalidArgumentError(absl::StrCat("--recv_buffers=", o.receive_buffer_count, ": must be from 1 to ",
                                                   kMaxProvidedBuffers, " (the most a backend takes)"));
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
