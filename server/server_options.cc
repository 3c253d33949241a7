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
  if (!kLowWaterRange.For(o.high_water).Contains(o.low_water)) {
    return absl::InvalidArgumentError(kLowWaterRange.Refusal("--low_water", absl::StrCat(o.low_water), o.high_water));
  }
  const struct {
    const char* flag;
    Duration value;
    const DurationRange& range;
  } durations[] = {
      {"--idle_timeout", o.idle_timeout, kIdleTimeoutRange},
      {"--drain_timeout", o.drain_timeout, kDrainTimeoutRange},
      {"--drain_grace", o.drain_grace, kDrainGraceRange},
      {"--stall_threshold", o.stall_threshold, kStallThresholdRange},
      {"--idle_poll", o.idle_poll, kIdlePollRange},
  };
  for (const auto& d : durations) {
    if (!d.range.Contains(d.value)) return absl::InvalidArgumentError(d.range.Refusal(d.flag, d.value));
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
