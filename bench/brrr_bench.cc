// brrr-bench: a load generator for echo servers, built on brrr's runtime.
//
//   bazel run -c opt //bench:brrr-bench -- --port=5000 --connections=64 --size=64 --depth=16 --duration=10s
//
// Verifies every echoed byte; prints a progress line per second (stderr), a summary and one
// JSON line (stdout). Exit codes: 0 all good, 1 a mismatch or a lost connection, 2 bad
// options, 3 could not start.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "runtime/cli_usage.h"
#include "bench/load_generator.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "Echo server address");
ABSL_FLAG(int32_t, port, 5000, "Echo server port");
ABSL_FLAG(int32_t, connections, 64, "Connections");
ABSL_FLAG(uint32_t, size, 64, "Bytes per message");
ABSL_FLAG(int32_t, depth, 1,
          "Messages in flight per connection (1: ping-pong); without --rate, the free part of the "
          "window is sent in one write, as a pipelining client does");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "How long to measure");
ABSL_FLAG(absl::Duration, warmup, absl::ZeroDuration(), "Run this long first without counting");
ABSL_FLAG(double, rate, 0, "Messages per second over all connections (0: as fast as possible)");
ABSL_FLAG(std::string, backend, "auto", "I/O backend for the load generator's own loops");
ABSL_FLAG(std::string, plugin_dir, "", "Directory searched first for backend plugins");
ABSL_FLAG(int32_t, threads, 1, "Event loops (threads) generating the load");
ABSL_FLAG(bool, json, true, "Print the result as one JSON line too");
ABSL_FLAG(bool, progress, true, "Print a progress line every second (stderr)");

namespace {
brrr::Duration ToDuration(absl::Duration d) { return brrr::Duration(absl::ToInt64Nanoseconds(d)); }
}  // namespace

int main(int argc, char** argv) {
  brrr::SetUsage(
      "A load generator for echo servers: keeps --depth messages of --size bytes in flight on each\n"
      "of --connections connections, checks every byte that comes back, and reports messages/s,\n"
      "MB/s and round-trip latency percentiles.\n\n"
      "Usage: brrr-bench --port=5000 [--connections=64] [--size=64] [--depth=1] [--duration=10s]\n"
      "Exit codes: 0 all good, 1 mismatch or lost connection, 2 bad options, 3 could not start.");
  absl::ParseCommandLine(argc, argv);
  int32_t port = absl::GetFlag(FLAGS_port);
  if (port < 1 || port > 65535) {
    std::fprintf(stderr, "brrr-bench: --port=%d: must be from 1 to 65535\n", port);
    return 2;
  }
  brrr::bench::LoadOptions o;
  o.host = absl::GetFlag(FLAGS_host);
  o.port = static_cast<uint16_t>(port);
  o.connections = absl::GetFlag(FLAGS_connections);
  o.size = absl::GetFlag(FLAGS_size);
  o.depth = absl::GetFlag(FLAGS_depth);
  o.duration = ToDuration(absl::GetFlag(FLAGS_duration));
  o.warmup = ToDuration(absl::GetFlag(FLAGS_warmup));
  o.rate = absl::GetFlag(FLAGS_rate);
  o.backend = absl::GetFlag(FLAGS_backend);
  o.plugin_dir = absl::GetFlag(FLAGS_plugin_dir);
  o.threads = absl::GetFlag(FLAGS_threads);
  if (absl::Status valid = brrr::bench::Validate(o); !valid.ok()) {
    std::fprintf(stderr, "brrr-bench: %s\n", std::string(valid.message()).c_str());
    return 2;
  }
  bool progress = absl::GetFlag(FLAGS_progress);
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
  return result->ok() ? 0 : 1;
}
