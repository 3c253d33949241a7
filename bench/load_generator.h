// load_generator.h: drives an echo server and checks every byte it sends back.
//
// Each connection keeps `depth` messages of `size` bytes in flight (depth 1: ping-pong) and
// verifies every echoed byte against what it sent. Message m of a connection is a slice of a
// shared random buffer at an offset derived from (connection, m), so the bytes differ between
// messages and connections, every byte value occurs, and checking is a memcmp.
//
// With `reconnect`, a connection the server closes cleanly (an end of stream after the echo of
// every byte it read: a drain's deadline, server/connection.h) is opened again, and the
// messages whose echo had not come back whole are sent again on the new connection, checked
// as before: each message comes back whole exactly once, or the run fails. A reset (or any
// other failure of a connection) is counted and handled the same way, and a refused connect is
// counted and tried again every 50 ms, for up to `connect_timeout`; both fail the run (ok()).
//
// Latency is the round trip of each message: from when it was sent (with --rate: from when
// it was due to be sent, so a server that falls behind shows it instead of slowing the load
// down) to when its last byte came back.
//
//   LoadOptions o;
//   o.port = 5000; o.connections = 64; o.size = 64; o.depth = 16;
//   absl::StatusOr<LoadResult> r = RunLoad(o, [](const LoadProgress& p) { ... });
//
// With `busy_poll`, the load comes from another engine (busy_poll_load.h) that never sleeps in
// the kernel: `threads` plain threads spin over non-blocking sockets, each sending a
// connection's next message as soon as its echo is in, so the figures show a server without
// the load generator's own wake-ups. Same bytes, same checks, same report; no --rate or
// --reconnect (both would have it wait). With `busy_ring`, a third engine (ring_load.h) spins
// the same way on one io_uring per thread: a multishot receive per connection and one
// io_uring_enter per pass for all the sends of the pass, so the load generator makes far fewer
// system calls per message than the server it measures. Same bytes, checks and report.
//
// Threads: RunLoad runs `threads` event loops (or busy-polling threads), connections spread
// across them, and calls `on_progress` from the calling thread.
#ifndef BRRR_BENCH_LOAD_GENERATOR_H_
#define BRRR_BENCH_LOAD_GENERATOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "runtime/clock.h"
#include "runtime/duration_range.h"
#include "runtime/integer_range.h"
#include "runtime/log_histogram.h"

namespace brrr::bench {

// The whole-number options' ranges, each declared once: Validate checks them, and brrr-bench's
// flags state them in --help and in the error for a value outside them.
inline constexpr IntegerRange kPortRange{.min = 1, .max = 65535};
inline constexpr IntegerRange kConnectionsRange{.min = 1, .max = 1'000'000};
inline constexpr IntegerRange kSizeRange{.min = 1, .max = 16 << 20, .unit = IntegerRange::Unit::kBytes};
inline constexpr IntegerRange kDepthRange{.min = 1, .max = 4096};
inline constexpr IntegerRange kThreadsRange{.min = 1, .max = 256};
// A process id (pid_t), or 0.
inline constexpr IntegerRange kServerPidRange{.min = 0, .max = 2'147'483'647, .note = " (0: not measured)"};
// The durations, declared once too: far past any benchmark, and far from the clock's overflow.
inline constexpr DurationRange kDurationRange{.min = std::chrono::nanoseconds(1), .max = std::chrono::hours(24 * 30)};
inline constexpr DurationRange kWarmupRange{.min = Duration::zero(), .max = std::chrono::hours(24 * 30)};

// 32 buckets per octave: percentiles within ~3%.
using LatencyHistogram = BasicLogHistogram<5>;

struct LoadOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 5000;
  int connections = 64;
  uint32_t size = 64;   // bytes per message
  int depth = 1;        // messages in flight per connection
  Duration duration = std::chrono::seconds(10);
  Duration warmup = Duration::zero();  // not counted
  double rate = 0;      // messages per second over all connections; 0: as fast as possible
  std::string backend = "auto";
  std::string plugin_dir;
  int threads = 1;
  Duration progress_every = std::chrono::seconds(1);
  Duration connect_timeout = std::chrono::seconds(10);
  Duration finish_timeout = std::chrono::seconds(10);  // for replies still in flight at the end
  bool reconnect = false;  // see above
  bool busy_poll = false;  // see above; `backend` and `plugin_dir` then go unused
  bool busy_ring = false;  // see above; likewise
  // When set and true, the run ends as at the end of `duration` (brrr-bench: SIGINT, SIGTERM).
  const std::atomic<bool>* interrupted = nullptr;
  // The echo server's process, when the caller knows it: its CPU time over the measured
  // period is reported (LoadResult::server_busy). 0: not measured.
  int server_pid = 0;
};

struct LoadProgress {
  double elapsed_s = 0;
  uint64_t messages = 0;        // since the previous report
  uint64_t bytes = 0;
  double interval_s = 0;
  int connected = 0;
  LatencyHistogram::Snapshot latency;  // since the start (after warm-up)
};

struct LoadResult {
  std::string backend;
  uint64_t messages = 0;  // round trips completed in the measured period
  uint64_t bytes = 0;     // echoed bytes in the measured period
  double seconds = 0;     // the measured period
  uint64_t mismatches = 0;
  uint64_t lost_connections = 0;   // closed or failed before the end
  uint64_t connect_failures = 0;
  // With LoadOptions::reconnect: connections the server ended with an end of stream, or that
  // failed (reset...); connects refused while reconnecting; messages sent again; new connections.
  uint64_t clean_closes = 0;
  uint64_t resets = 0;
  uint64_t refused_connects = 0;
  uint64_t resent_messages = 0;
  uint64_t reconnects = 0;
  // Every byte the kernel took on every connection, from the first connect on (warm-up, the
  // bytes of connections later closed, and resends included): what an echo server behind any
  // number of restarts has received in all, counting what it read and discarded at a drain.
  // Exact unless a connection was reset.
  uint64_t bytes_sent = 0;
  std::string first_error;
  LatencyHistogram::Snapshot latency;
  // With LoadOptions::server_pid: the share of one CPU the server's threads used over the
  // measured period (1.0: a whole core); -1 when not measured.
  double server_busy = -1;

  bool ok() const {
    return mismatches == 0 && lost_connections == 0 && connect_failures == 0 && resets == 0 && refused_connects == 0;
  }
  double messages_per_second() const { return seconds > 0 ? static_cast<double>(messages) / seconds : 0; }
  double mb_per_second() const { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e6 : 0; }
  // The server's CPU microseconds per echoed message; -1 when not measured.
  double server_cpu_us_per_message() const {
    return server_busy >= 0 && messages > 0 ? server_busy * 1e6 / messages_per_second() : -1;
  }
};

// InvalidArgument, naming the option as brrr-bench's flag, when one is out of its range (or
// options conflict).
absl::Status Validate(const LoadOptions& options);

absl::StatusOr<LoadResult> RunLoad(const LoadOptions& options,
                                   const std::function<void(const LoadProgress&)>& on_progress);

// The human summary and the one-line JSON form.
std::string ResultText(const LoadOptions& options, const LoadResult& result);
std::string ResultJson(const LoadOptions& options, const LoadResult& result);

}  // namespace brrr::bench

#endif  // BRRR_BENCH_LOAD_GENERATOR_H_
