// brrr-bench: a load generator for echo servers, built on brrr's runtime.
//
//   bazel run -c opt //bench:brrr-bench -- --port=5000 --connections=64 --size=64 --depth=16 --duration=10s
//   bazel run -c opt //bench:brrr-bench -- --port=5000 --busy_poll   # spins instead of sleeping
//
// Verifies every echoed byte; prints a progress line per second (stderr), a summary and one
// JSON line (stdout). SIGINT or SIGTERM ends the run early, as the end of --duration does
// (a second one kills it). Exit codes: 0 all good, 1 a mismatch or a lost connection (with
// --reconnect also a reset or a refused connect), 2 bad options, 3 could not start, 6 the report
// could not be written.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/load_generator.h"
#include "runtime/cli_usage.h"
#include "runtime/integer_flag.h"
#include "runtime/integer_range.h"
#include "runtime/plugin_loader.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "Echo server address");
ABSL_FLAG(brrr::IntegerFlag, port, 5000, absl::StrCat("Echo server port, ", brrr::bench::kPortRange.ToString()));
ABSL_FLAG(brrr::IntegerFlag, connections, 64, absl::StrCat("Connections, ", brrr::bench::kConnectionsRange.ToString()));
ABSL_FLAG(brrr::IntegerFlag, size, 64, absl::StrCat("Bytes per message, ", brrr::bench::kSizeRange.ToString()));
ABSL_FLAG(brrr::IntegerFlag, depth, 1,
          absl::StrCat("Messages in flight per connection, ", brrr::bench::kDepthRange.ToString(),
                       " (1: ping-pong); without --rate, the free part of the window is sent in one write, as a "
                       "pipelining client does"));
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          absl::StrCat("How long to measure, ", brrr::bench::kDurationRange.ToString()));
ABSL_FLAG(absl::Duration, warmup, absl::ZeroDuration(),
          absl::StrCat("Run this long first without counting, ", brrr::bench::kWarmupRange.ToString()));
ABSL_FLAG(double, rate, 0, "Messages per second over all connections (0: as fast as possible)");
ABSL_FLAG(std::string, backend, "auto",
          "I/O backend for the load generator's own loops (not with --busy_poll or --busy_ring)");
ABSL_FLAG(std::string, plugin_dir, "", "Directory searched first for backend plugins");
ABSL_FLAG(brrr::IntegerFlag, threads, 1,
          absl::StrCat("Event loops (threads) generating the load, ", brrr::bench::kThreadsRange.ToString(),
                       "; with --busy_poll or --busy_ring, spinning threads"));
ABSL_FLAG(bool, busy_poll, false,
          "Generate the load without ever sleeping in the kernel: instead of brrr's event loops, --threads "
          "threads spin over non-blocking sockets (recv/send with MSG_DONTWAIT; past 64 connections a "
          "thread, epoll_wait with a zero timeout says which have data), each owning every "
          "threads-th connection, and send each connection's next message (or refill its --depth window) "
          "as soon as the echo is in, so the server's figures carry none of the load generator's wake-ups. "
          "Each thread takes a whole core: pin it. Same checks and report (backend \"busy-poll\"); not with "
          "--rate or --reconnect");
ABSL_FLAG(bool, busy_ring, false,
          "Spin as --busy_poll does, on one io_uring per thread (Linux 6.0): a multishot receive per "
          "connection into provided buffers, and each pass submits all its sends and collects what "
          "completed in one io_uring_enter that never waits, so the load generator makes far fewer "
          "system calls per message than the server it measures and a server that needs less CPU per "
          "message than --busy_poll's generator can show it. Same checks and report (backend "
          "\"busy-ring\"); not with --busy_poll, --rate or --reconnect");
ABSL_FLAG(bool, json, true, "Print the result as one JSON line too");
ABSL_FLAG(bool, progress, true, "Print a progress line every second (stderr)");
ABSL_FLAG(brrr::IntegerFlag, server_pid, 0,
          absl::StrCat("The echo server's process id, ", brrr::bench::kServerPidRange.ToString(),
                       ": report its CPU time per message over the measured period (the sum over its threads, "
                       "from /proc/PID/task/*/schedstat), the figure that compares servers when the load "
                       "generator, not the server, sets the pace"));
ABSL_FLAG(bool, reconnect, false,
          "When the server closes a connection cleanly (an end of stream after echoing all it read, as a "
          "draining brrr-echo does), connect again and resend the messages whose echo had not come back "
          "whole; the report counts clean closes, resets, refused connects and resent messages, and a reset "
          "or a refused connect fails the run (exit 1)");

namespace {
brrr::Duration ToDuration(absl::Duration d) { return brrr::Duration(absl::ToInt64Nanoseconds(d)); }

// Set by the first SIGINT or SIGTERM: the run ends as at the end of --duration.
std::atomic<bool> interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void Interrupt(int) { interrupted.store(true); }

// The value of a whole-number flag, if `range` holds it; if not, stderr names the flag, its value
// as given and the range, and the result is empty. Any number is checked so, negative or past 64
// bits (absl's own integer flags refused those as malformed, without the range).
std::optional<uint64_t> InRange(const absl::Flag<brrr::IntegerFlag>& flag, const brrr::IntegerRange& range) {
  const brrr::IntegerFlag value = absl::GetFlag(flag);
  std::optional<uint64_t> in = value.In(range);
  if (!in.has_value()) {
    std::string name = absl::StrCat("--", absl::GetFlagReflectionHandle(flag).Name());
    std::fprintf(stderr, "brrr-bench: %s\n", range.Refusal(name, value.text()).c_str());
  }
  return in;
}

// The first SIGINT/SIGTERM ends the run with its report; the handler then resets itself, so a
// second one kills the program as before.
void EndRunOnSignals() {
  struct sigaction action {};
  action.sa_handler = Interrupt;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}
}  // namespace

int main(int argc, char** argv) {
  brrr::SetUsage(
      "A load generator for echo servers: keeps --depth messages of --size bytes in flight on each\n"
      "of --connections connections, checks every byte that comes back, and reports messages/s,\n"
      "MB/s and round-trip latency percentiles.\n\n"
      "Usage: brrr-bench --port=5000 [--connections=64] [--size=64] [--depth=1] [--duration=10s]\n"
      "       [--busy_poll]   spin on non-blocking sockets instead of sleeping in the kernel\n"
      "       [--busy_ring]   spin on io_uring: the same, with far fewer system calls per message\n"
      "SIGINT/SIGTERM ends the run early, with its report.\n"
      "Exit codes: 0 all good, 1 mismatch, lost connection or failed connect (with --reconnect: or a\n"
      "reset or refused reconnect), 2 bad options, 3 could not start, 6 the report could not be written (a full "
      "disk).");
  brrr::ParseFlagsOnly(argc, argv, "brrr-bench", /*exit_code=*/2);
  if (absl::Status dir = brrr::PluginLoader::CheckOverrideDir(absl::GetFlag(FLAGS_plugin_dir)); !dir.ok()) {
    std::fprintf(stderr, "brrr-bench: --plugin_dir: %s\n", std::string(dir.message()).c_str());
    return 2;
  }
  // The whole-number options, each in its range (load_generator.h), before they take their types.
  std::optional<uint64_t> port = InRange(FLAGS_port, brrr::bench::kPortRange);
  std::optional<uint64_t> connections = InRange(FLAGS_connections, brrr::bench::kConnectionsRange);
  std::optional<uint64_t> size = InRange(FLAGS_size, brrr::bench::kSizeRange);
  std::optional<uint64_t> depth = InRange(FLAGS_depth, brrr::bench::kDepthRange);
  std::optional<uint64_t> threads = InRange(FLAGS_threads, brrr::bench::kThreadsRange);
  std::optional<uint64_t> server_pid = InRange(FLAGS_server_pid, brrr::bench::kServerPidRange);
  if (!port || !connections || !size || !depth || !threads || !server_pid) return 2;
  brrr::bench::LoadOptions o;
  o.host = absl::GetFlag(FLAGS_host);
  o.port = static_cast<uint16_t>(*port);
  o.connections = static_cast<int>(*connections);
  o.size = static_cast<uint32_t>(*size);
  o.depth = static_cast<int>(*depth);
  o.duration = ToDuration(absl::GetFlag(FLAGS_duration));
  o.warmup = ToDuration(absl::GetFlag(FLAGS_warmup));
  o.rate = absl::GetFlag(FLAGS_rate);
  o.backend = absl::GetFlag(FLAGS_backend);
  o.plugin_dir = absl::GetFlag(FLAGS_plugin_dir);
  o.threads = static_cast<int>(*threads);
  o.reconnect = absl::GetFlag(FLAGS_reconnect);
  o.busy_poll = absl::GetFlag(FLAGS_busy_poll);
  o.busy_ring = absl::GetFlag(FLAGS_busy_ring);
  o.server_pid = static_cast<int>(*server_pid);
  o.interrupted = &interrupted;
  if (absl::Status valid = brrr::bench::Validate(o); !valid.ok()) {
    std::fprintf(stderr, "brrr-bench: %s\n", std::string(valid.message()).c_str());
    return 2;
  }
  bool progress = absl::GetFlag(FLAGS_progress);
  EndRunOnSignals();
  auto result = brrr::bench::RunLoad(o, [&](const brrr::bench::LoadProgress& p) {
    if (!progress) return;
    std::fprintf(stderr, "[%5.1fs] %d connected, %.0f msg/s, %.1f MB/s, p99 %.1f us\n", p.elapsed_s, p.connected,
                 static_cast<double>(p.messages) / p.interval_s, static_cast<double>(p.bytes) / p.interval_s / 1e6,
                 static_cast<double>(p.latency.percentile(0.99)) / 1000.0);
  });
  if (!result.ok()) {
    std::fprintf(stderr, "brrr-bench: %s\n", std::string(result.status().message()).c_str());
    return 3;
  }
  std::printf("%s\n", brrr::bench::ResultText(o, *result).c_str());
  if (absl::GetFlag(FLAGS_json)) std::printf("%s\n", brrr::bench::ResultJson(o, *result).c_str());
  return brrr::ExitCodeAfterStdout("brrr-bench", result->ok() ? 0 : 1);
}
