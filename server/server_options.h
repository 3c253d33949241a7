// server_options.h: everything that configures an echo server, and its validation.
//
// Threads: a value type.
#ifndef BRRR_SERVER_SERVER_OPTIONS_H_
#define BRRR_SERVER_SERVER_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "runtime/clock.h"
#include "runtime/duration_range.h"
#include "runtime/event_loop.h"  // kMaxProvidedBuffers
#include "runtime/integer_range.h"
#include "runtime/stall_threshold.h"
#include "server/throttle.h"

namespace brrr::server {

// The longest --reply_prefix. What a connection queues is bounded whatever the prefix
// (server/connection.h), but each received newline still costs a whole prefix of output and
// of copying: a client that sends only newlines makes the server send (1 + prefix length)
// times what it received. 4 KiB is more than any greeting needs and keeps that factor, and
// the time the loop spends answering one receive buffer of newlines, bounded.
inline constexpr size_t kMaxReplyPrefixBytes = 4096;

// The largest --high_water: 1 GiB queued per connection. The mark is what bounds a
// connection's memory; a larger one (a typo, or 2^64 - 1 for "unbounded") would not, so a
// client that never reads could grow the server without a word.
inline constexpr uint64_t kMaxHighWater = uint64_t{1} << 30;

// The ranges of the duration options, each declared once: Validate checks them, and
// brrr-echo's --help and its errors for a flag outside one state them.
// --drain_grace: a few of any balancer's health-check intervals fit in it, and a typo (10h for
// 10s) cannot keep an instance half-alive for hours.
inline constexpr DurationRange kDrainGraceRange{.min = Duration::zero(), .max = std::chrono::minutes(10)};
// --drain_timeout and --idle_timeout: a day at most. Longer is a typo, and far longer overflows
// the clock's deadline arithmetic.
inline constexpr DurationRange kDrainTimeoutRange{.min = Duration::zero(), .max = std::chrono::hours(24)};
inline constexpr DurationRange kIdleTimeoutRange{.min = Duration::zero(), .max = std::chrono::hours(24)};
// The admin plane's SetStallThreshold range, so that the threshold a server starts with can be
// set back.
inline constexpr DurationRange kStallThresholdRange{.min = Duration(kMinStallThresholdNs),
                                                    .max = Duration(kMaxStallThresholdNs)};
inline constexpr DurationRange kIdlePollRange{.min = Duration::zero(), .max = EventLoopOptions::kMaxIdlePoll};

// The ranges of the whole-number options, each declared once: Validate checks them, and
// brrr-echo's --help and its errors for a flag outside one state them.
inline constexpr IntegerRange kLoopsRange{.min = 1, .max = 256};
// The admin plane's SetThrottle range, so that the limit a server starts with can be set back.
inline constexpr IntegerRange kMaxConnectionsRange{.min = 1, .max = Throttle::kMaxConnectionsLimit};
inline constexpr IntegerRange kHighWaterRange{.min = 1, .max = kMaxHighWater, .unit = IntegerRange::Unit::kBytes};
inline constexpr IntegerRange kReceiveBufferSizeRange{
    .min = 512, .max = uint64_t{16} << 20, .unit = IntegerRange::Unit::kBytes};
inline constexpr IntegerRange kReceiveBuffersRange{
    .min = 1, .max = kMaxProvidedBuffers, .note = " (the most a backend takes)"};
// --low_water's, below --high_water.
inline constexpr BelowOptionRange kLowWaterRange{.min = 0, .below = "--high_water", .unit = IntegerRange::Unit::kBytes};

struct EchoServerOptions {
  std::string backend = "auto";  // a backend name, a plugin path, or "auto"
  std::string plugin_dir;        // searched first for plugins
  std::string host = "127.0.0.1";
  uint16_t port = 5000;  // 0: a free port (all loops share it)
  // Join listeners of another process on the same port (SO_REUSEPORT) instead of failing: for
  // a deliberate hand-over only (see server/port_claim.h).
  bool share_port = false;
  int loops = 1;                             // event loops (threads), each with its own listener (SO_REUSEPORT)
  uint64_t max_connections = 100000;         // per server; past it new connections are closed at once
  uint64_t high_water = 256 * 1024;          // bytes queued per connection before it stops reading
  uint64_t low_water = 64 * 1024;            // ... and resumes once the queue is down to this
  Duration idle_timeout = Duration::zero();  // close connections idle this long; 0: never
  // Non-empty: answer each line with this prefix (the tutorial's "Echo : "); at most
  // kMaxReplyPrefixBytes.
  std::string reply_prefix;
  // On a drain, how long the server goes on accepting after it has reported not-ready
  // (/readyz 503, grpc.health NOT_SERVING), so that a balancer's next health check takes it
  // out before its listeners close (server/drain_progress.h). 0: listeners close at once.
  Duration drain_grace = Duration::zero();
  // Then how long open connections may take to finish before they are closed (cleanly:
  // server/connection.h).
  Duration drain_timeout = std::chrono::seconds(10);
  Duration stall_threshold = std::chrono::milliseconds(100);
  // Each loop polls this long for new events before it sleeps (EventLoopOptions::idle_poll):
  // lower latency at low load for a core kept busy. 0: sleep at once.
  Duration idle_poll = Duration::zero();
  // Each loop's watchdog samples where a stall is while it lasts (runtime/stall_watchdog.h).
  bool stall_watchdog = true;
  uint32_t receive_buffer_size = 16384;  // bytes per provided receive buffer
  uint32_t receive_buffer_count = 1024;  // provided receive buffers per loop
  int backlog = 4096;
  // Descriptors the echo side leaves free for the rest of the process (the admin plane): it
  // holds at most RLIMIT_NOFILE minus this minus what is open at Start(), and past that new
  // clients wait in the backlog (server/descriptor_budget.h). 0: no budget; out of
  // descriptors, accepting backs off on EMFILE.
  uint64_t reserved_descriptors = 0;
  // Listening sockets handed over by the process this one takes over from (server/take_over.h),
  // one per loop of that process: EchoServer::Create adopts them (and owns them from then on,
  // closing them if it fails) instead of binding, and skips the port claim (the port is
  // already this server's). They are spread over the loops (loop i accepts on sockets i,
  // i + loops, ...); loops beyond them bind new SO_REUSEPORT siblings of the same group.
  std::vector<int> adopted_listeners;

  // The most bytes one connection ever has queued to send, whatever the prefix and the
  // backend: the high-water mark plus one receive buffer (server/connection.h says why).
  uint64_t max_queued_bytes() const {
    return high_water > UINT64_MAX - receive_buffer_size ? UINT64_MAX : high_water + receive_buffer_size;
  }
};

// OK, or InvalidArgument saying which option is wrong and what is allowed.
absl::Status Validate(const EchoServerOptions& options);

}  // namespace brrr::server

#endif  // BRRR_SERVER_SERVER_OPTIONS_H_
