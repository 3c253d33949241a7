// brrr-echo: the TCP echo server.
//
//   bazel run //server/brrr-echo -- --backend=epoll --port=5000 --loops=2
//
// Exit codes: 0 after a drain (SIGTERM, SIGINT, SIGHUP, or a hand-over to a new process), 1 for a
// flag that does not parse, 2 for an option out of range, 3 when the server cannot start (backend,
// address in use, a failed --take_over...), 6 when what --help, --version or --list_backends print
// could not be written (cli_usage.h). A stop signal before the server serves ends the
// process as the signal would (startup_signals.h).
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "control/admin/admin_listener.h"
#include "control/admin/admin_server.h"
#include "control/admin/metrics_exporter.h"
#include "control/admin/metrics_http.h"
#include "control/admin/process_figures.h"
#include "runtime/cli_usage.h"
#include "runtime/duration_range.h"
#include "runtime/integer_flag.h"
#include "runtime/integer_range.h"
#include "runtime/line_output.h"
#include "runtime/plugin_loader.h"
#include "runtime/socket_address.h"
#include "runtime/stack_sampler.h"
#include "runtime/standard_descriptors.h"
#include "server/brrr-echo/echo_administered.h"
#include "server/brrr-echo/flag_ranges.h"
#include "server/brrr-echo/startup_signals.h"
#include "server/brrr-echo/upgrade.h"
#include "server/descriptor_budget.h"
#include "server/echo_server.h"

// The ranges brrr-echo checks itself (flag_ranges.h); the echo server's own are in
// server/server_options.h.
using brrr::echo_flags::kAdminIdleTimeoutRange;
using brrr::echo_flags::kAdminMaxBlockRange;
using brrr::echo_flags::kAdminMaxCallsRange;
using brrr::echo_flags::kAdminMaxConnectionsRange;
using brrr::echo_flags::kAdminPortRange;
using brrr::echo_flags::kAdminReservedFdsRange;
using brrr::echo_flags::kAdminUnreadTimeoutRange;
using brrr::echo_flags::kMetricsMaxConnectionsRange;
using brrr::echo_flags::kMetricsPortRange;
using brrr::echo_flags::kPortRange;

ABSL_FLAG(std::string, backend, "auto",
          "I/O backend: io_uring, epoll, poll, select, a plugin path, or auto (the best that starts here on "
          "every loop)");
ABSL_FLAG(std::string, plugin_dir, "", "Directory searched first for backend plugins");
ABSL_FLAG(bool, list_backends, false, "List the backends, whether each starts here, and exit (3 when none starts)");
ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on (IPv4 or IPv6, e.g. 0.0.0.0 or ::1)");
ABSL_FLAG(brrr::IntegerFlag, port, 5000, absl::StrCat("TCP port, ", kPortRange.ToString(), " (0: any free port)"));
ABSL_FLAG(bool, share_port, false,
          "Join another process's listeners on --port (SO_REUSEPORT) instead of failing because the "
          "port is in use: for a deliberate hand-over between two brrr-echo processes only");
ABSL_FLAG(brrr::IntegerFlag, loops, 1,
          absl::StrCat("Event loops (threads), ", brrr::server::kLoopsRange.ToString(),
                       "; they share the port with SO_REUSEPORT"));
ABSL_FLAG(brrr::IntegerFlag, max_connections, 100000,
          absl::StrCat("Connections at once (all loops), ", brrr::server::kMaxConnectionsRange.ToString(),
                       "; further ones are accepted and closed at once"));
ABSL_FLAG(brrr::IntegerFlag, high_water, 256 * 1024,
          absl::StrCat("Bytes queued to send on one connection before the server stops reading it; a connection "
                       "never has more than this plus --recv_buffer_size queued, with or without --reply_prefix; ",
                       brrr::server::kHighWaterRange.ToString()));
ABSL_FLAG(brrr::IntegerFlag, low_water, 64 * 1024,
          absl::StrCat("Queued bytes at which a paused connection reads again, ",
                       brrr::server::kLowWaterRange.ToString()));
ABSL_FLAG(absl::Duration, idle_timeout, absl::ZeroDuration(),
          absl::StrCat("Close connections idle this long: nothing read or sent, and nothing of their echo taken "
                       "by the client from the kernel's send buffer (e.g. 30s), ",
                       brrr::server::kIdleTimeoutRange.ToString(), "; 0: never"));
ABSL_FLAG(std::string, reply_prefix, "",
          "Answer each line with this prefix, as the tutorial's server answers \"Echo : ...\"; at most "
          "4096 bytes (a client sending only newlines gets 1 + that many bytes back per byte sent)");
static_assert(brrr::server::kMaxReplyPrefixBytes == 4096, "--reply_prefix's help states the maximum");
ABSL_FLAG(
    absl::Duration, drain_grace, absl::ZeroDuration(),
    absl::StrCat("On a drain (SIGTERM/SIGINT/SIGHUP, admin Drain), how long the server keeps accepting after /readyz "
                 "turns 503 and health NOT_SERVING, so that a balancer's health checks take it out first (",
                 brrr::server::kDrainGraceRange.ToString(),
                 "; 0: stop accepting at once; behind a balancer, a few of its check intervals)"));
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          absl::StrCat("On a drain, once accepting has stopped, how long connections may take to finish before they "
                       "are closed (cleanly: what was read is echoed, then the write side is shut); ",
                       brrr::server::kDrainTimeoutRange.ToString()));
ABSL_FLAG(absl::Duration, stall_threshold, absl::Milliseconds(100),
          absl::StrCat("A task that holds a loop this long is reported as a stall (",
                       brrr::server::kStallThresholdRange.ToString(), ")"));
ABSL_FLAG(absl::Duration, idle_poll, absl::ZeroDuration(),
          absl::StrCat("When a loop runs out of work, keep asking the backend for new events this long (e.g. 50us; ",
                       brrr::server::kIdlePollRange.ToString(),
                       ") before sleeping in the kernel: an event that comes meanwhile is served without the sleep "
                       "and wake-up, which at low load are most of a round trip, for a core kept busy while traffic "
                       "trickles in; 0: sleep at once"));
ABSL_FLAG(bool, stall_watchdog, true,
          "While a stall lasts, sample where the loop is stuck (every --stall_threshold; a watchdog thread per "
          "loop signals the loop thread with SIGRTMIN+3) and report the stack with the stall");
ABSL_FLAG(brrr::IntegerFlag, admin_port, 0,
          absl::StrCat("Port of the gRPC admin plane (brrr.admin.v1.Admin, grpc.health.v1, server reflection), ",
                       kAdminPortRange.ToString()));
ABSL_FLAG(std::string, admin_host, "127.0.0.1",
          "Address the admin plane listens on; anything but a loopback address draws a warning");
ABSL_FLAG(std::string, admin_token_file, "",
          "File holding a token: every admin call (health and reflection too) must then carry the "
          "metadata \"authorization: Bearer <token>\", and every request to --metrics_port the header "
          "\"Authorization: Bearer <token>\"; empty: no token needed");
ABSL_FLAG(absl::Duration, admin_max_block, absl::Seconds(10),
          absl::StrCat("The longest blocking task the admin plane's InjectTask accepts (",
                       kAdminMaxBlockRange.ToString(), ")"));
ABSL_FLAG(brrr::IntegerFlag, admin_max_connections, 16,
          absl::StrCat("Admin connections open at once (", kAdminMaxConnectionsRange.ToString(),
                       "); past it a new one is closed at once"));
ABSL_FLAG(brrr::IntegerFlag, admin_max_calls, 64,
          absl::StrCat("Admin calls in progress at once, streams included (", kAdminMaxCallsRange.ToString(),
                       "): each holds a gRPC thread, a stream (health Watch, WatchStats, WatchStalls) until it "
                       "ends; past it a call is answered RESOURCE_EXHAUSTED"));
ABSL_FLAG(absl::Duration, admin_idle_timeout, absl::Seconds(60),
          absl::StrCat("Close an admin connection that has had no call in progress this long (",
                       kAdminIdleTimeoutRange.ToString(), ")"));
ABSL_FLAG(absl::Duration, admin_unread_timeout, absl::Seconds(60),
          absl::StrCat("End a stream (WatchStats, WatchStalls, health Watch, reflection) whose client has taken "
                       "nothing this long while a message waited for it (",
                       kAdminUnreadTimeoutRange.ToString(),
                       "): a client that stopped reading does not keep its call slot (--admin_max_calls) and gRPC "
                       "thread for ever; the stream ends CANCELLED and stderr says so"));
ABSL_FLAG(brrr::IntegerFlag, admin_reserved_fds, 64,
          absl::StrCat("With --admin_port: descriptors the echo side leaves free for the admin plane, so that the "
                       "operator gets in when echo clients would take every other one; ",
                       kAdminReservedFdsRange.ToString(),
                       " (each admin connection is relayed to gRPC over a socket pair, and gRPC opens a few more "
                       "after start)"));
ABSL_FLAG(brrr::IntegerFlag, metrics_port, 0,
          absl::StrCat("Port of the metrics port: HTTP GET /metrics (Prometheus text format), /healthz (live) and "
                       "/readyz (503 before listening and while draining), ",
                       kMetricsPortRange.ToString(),
                       ". --admin_token_file applies: requests then carry \"Authorization: Bearer <token>\""));
ABSL_FLAG(std::string, metrics_host, "127.0.0.1",
          "Address the metrics port listens on; anything but a loopback address draws a warning");
ABSL_FLAG(brrr::IntegerFlag, metrics_max_connections, 8,
          absl::StrCat("With --metrics_port: its connections open at once (", kMetricsMaxConnectionsRange.ToString(),
                       "; past it new ones wait in the backlog, and idle, silent or unread ones are closed for "
                       "them); the echo side leaves that many descriptors free for them and one for a scrape's own "
                       "reads, beside --admin_reserved_fds"));
ABSL_FLAG(brrr::IntegerFlag, recv_buffer_size, 16384,
          absl::StrCat("Bytes per receive buffer (provided to the backend), ",
                       brrr::server::kReceiveBufferSizeRange.ToString()));
ABSL_FLAG(brrr::IntegerFlag, recv_buffers, 1024,
          absl::StrCat("Receive buffers per loop, ", brrr::server::kReceiveBuffersRange.ToString(),
                       "; recv_buffers x recv_buffer_size bytes are mapped and faulted in at start (16 MiB by "
                       "default)"));

namespace {

using brrr::server::EchoServer;
using brrr::server::EchoServerOptions;

// The file a scrape of the metrics port has open at a time (it reads /proc/self/stat, /proc/stat
// and /proc/self/fd one after the other, on the port's one thread), beside its connections.
constexpr uint32_t kMetricsScrapeFiles = 1;

brrr::Duration ToDuration(absl::Duration d) { return brrr::Duration(absl::ToInt64Nanoseconds(d)); }

// The value of a whole-number flag, if `range` holds it; if not, stderr names the flag, its value
// as given and the range, and the result is empty. Any number is checked so, negative or past 64
// bits: an error of range (exit 2), not of syntax (1).
std::optional<uint64_t> InRange(const absl::Flag<brrr::IntegerFlag>& flag, const brrr::IntegerRange& range) {
  const brrr::IntegerFlag value = absl::GetFlag(flag);
  std::optional<uint64_t> in = value.In(range);
  if (!in.has_value()) {
    std::string name = absl::StrCat("--", absl::GetFlagReflectionHandle(flag).Name());
    brrr::PrintToStderr("brrr-echo: %s\n", range.Refusal(name, value.text()).c_str());
  }
  return in;
}

// The same for a flag whose range depends on another option's value `other` (a
// ScaledMinimumRange, a BelowOptionRange): the error states the range by that option, and what
// it comes to.
template <typename DependentRange>
std::optional<uint64_t> InRange(const absl::Flag<brrr::IntegerFlag>& flag, const DependentRange& range,
                                uint64_t other) {
  const brrr::IntegerFlag value = absl::GetFlag(flag);
  std::optional<uint64_t> in = value.In(range.For(other));
  if (!in.has_value()) {
    std::string name = absl::StrCat("--", absl::GetFlagReflectionHandle(flag).Name());
    brrr::PrintToStderr("brrr-echo: %s\n", range.Refusal(name, value.text(), other).c_str());
  }
  return in;
}

// The value of a duration flag, if `range` holds it; if not, stderr names the flag, its value and
// the range, and the result is empty ("inf" and "-inf" are outside every range).
std::optional<brrr::Duration> InRange(const absl::Flag<absl::Duration>& flag, const brrr::DurationRange& range) {
  const brrr::Duration value = ToDuration(absl::GetFlag(flag));
  if (range.Contains(value)) return value;
  std::string name = absl::StrCat("--", absl::GetFlagReflectionHandle(flag).Name());
  brrr::PrintToStderr("brrr-echo: %s\n", range.Refusal(name, value).c_str());
  return std::nullopt;
}

// The flags of a listener beside the echo server's (the admin plane's, the metrics port's),
// under one rule: --NAME_port in its range (0: none), --NAME_host an IP address when the
// port is on, and a warning once it listens on an address that is not loopback.
struct SideListenerFlags {
  const char* name;  // the flags' prefix: "admin" for --admin_port and --admin_host
  const brrr::IntegerRange* port_range;  // --NAME_port's (flag_ranges.h), which says what 0 means
  const char* what;  // the listener, for the warning
  const char* can;   // what a client of it can do, for the warning: "read the statistics"
  const absl::Flag<brrr::IntegerFlag>* port_flag;  // --NAME_port
  std::string host;
  int32_t port = 0;  // port_flag's, once Check found it in range
  bool loopback = true;

  // Whether the flags are good; if not, stderr says what is wrong.
  bool Check() {
    std::optional<uint64_t> in_range = InRange(*port_flag, *port_range);
    if (!in_range.has_value()) return false;
    port = static_cast<int32_t>(*in_range);
    absl::StatusOr<brrr::SocketAddress> address = brrr::SocketAddress::Parse(host, 0);
    if (port != 0 && !address.ok()) {
      brrr::PrintToStderr("brrr-echo: --%s_host=%s: not an IP address (%s)\n", name, host.c_str(),
                          std::string(address.status().message()).c_str());
      return false;
    }
    loopback = !address.ok() || address->is_loopback();
    return true;
  }

  // Once the listener is on `address`: warns if that is not a loopback address, saying who
  // can do what there (with `token_required`: whoever has the token, in clear text).
  void WarnUnlessLoopback(const std::string& address, bool token_required) const {
    if (loopback) return;
    brrr::PrintToStderr(
        "brrr-echo: warning: %s listens on %s, which is not a loopback address: %s\n", what, address.c_str(),
        token_required ? absl::StrCat("whoever can reach it and has the token can ", can,
                                      "; the token travels in clear text (no TLS): keep the network private")
                             .c_str()
                       : absl::StrCat("anyone who can reach it can ", can, " (no --admin_token_file)").c_str());
  }
};

// A listener's flags, named for the messages: --port and --host, or a side listener's.
struct ListenerFlags {
  std::string port_flag;  // "--port", "--admin_port"
  std::string host;
  int32_t port;
  // On ::, whether it takes IPv4 addresses too: the admin plane's and the metrics port's do
  // (Linux's default), the echo listeners are IPv6-only.
  bool dual_stack;
};

// Where listeners a and b on one port would meet, for the message: "the same address
// (127.0.0.1)", or, where one is a wildcard (0.0.0.0 listens on every IPv4 address of the host,
// :: on every IPv6 one, and on every IPv4 one too where dual-stack), a's address and what takes
// it: "0.0.0.0, which takes 127.0.0.1 too", "127.0.0.1, which :: takes too"; "" where they
// would not meet.
std::string WhereListenersMeet(const ListenerFlags& a, const brrr::SocketAddress& at_a, const ListenerFlags& b,
                               const brrr::SocketAddress& at_b) {
  if (at_a.host() == at_b.host()) return absl::StrCat("the same address (", at_a.host(), ")");
  auto takes = [](const ListenerFlags& wide, const brrr::SocketAddress& at_wide, const brrr::SocketAddress& other) {
    if (at_wide.family() == AF_INET) return at_wide.host() == "0.0.0.0" && other.family() == AF_INET;
    return at_wide.host() == "::" && (other.family() == AF_INET6 || wide.dual_stack);
  };
  if (takes(a, at_a, at_b)) return absl::StrCat(at_a.host(), ", which takes ", at_b.host(), " too");
  if (takes(b, at_b, at_a)) return absl::StrCat(at_a.host(), ", which ", at_b.host(), " takes too");
  return "";
}

// Whether two of the listeners ask for the same port on addresses that meet (a mistake the
// bind would report only as "the port is in use", as if another program held it); if so,
// stderr says which.
bool TwoListenersShareAPort(const std::vector<ListenerFlags>& listeners) {
  for (size_t i = 0; i < listeners.size(); ++i) {
    for (size_t j = i + 1; j < listeners.size(); ++j) {
      const ListenerFlags& a = listeners[i];
      const ListenerFlags& b = listeners[j];
      if (a.port == 0 || a.port != b.port) continue;
      absl::StatusOr<brrr::SocketAddress> at_a = brrr::SocketAddress::Parse(a.host, 0);
      absl::StatusOr<brrr::SocketAddress> at_b = brrr::SocketAddress::Parse(b.host, 0);
      if (!at_a.ok() || !at_b.ok()) continue;
      std::string where = WhereListenersMeet(a, *at_a, b, *at_b);
      if (where.empty()) continue;
      brrr::PrintToStderr("brrr-echo: %s=%d: %s is %d on %s; each listener needs a port of its own\n",
                          b.port_flag.c_str(), b.port, a.port_flag.c_str(), a.port, where.c_str());
      return true;
    }
  }
  return false;
}

int ListBackends() {
  brrr::PluginLoader loader = brrr::PluginLoader::Default(absl::GetFlag(FLAGS_plugin_dir));
  std::vector<brrr::BackendProbe> probes = loader.Probe();
  for (const brrr::BackendProbe& p : probes) {
    std::printf("%-9s %s\n", p.name.c_str(),
                p.status.ok() ? "starts here" : absl::StrCat("cannot start: ", p.status.message()).c_str());
  }
  // From the probes, which ran in child processes: listing loads no plugin into this process.
  absl::StatusOr<std::string> chosen = loader.AutoChoice();
  std::printf("auto      -> %s\n", chosen.ok() ? chosen->c_str() : std::string(chosen.status().message()).c_str());
  // As a start would: with no backend for auto, brrr-echo cannot start here.
  return brrr::ExitCodeAfterStdout("brrr-echo", chosen.ok() ? 0 : 3);
}

// Set by main once the server has stopped, before it sends SIGUSR1 to end HandleSignals.
std::atomic<bool> server_stopped{false};

// Waits for SIGINT/SIGTERM/SIGHUP: the first drains the server, a second one cuts the drain short.
// A first one during a drain started otherwise (the admin plane's Drain, a hand-over) only
// says so: that drain goes on, and the next signal cuts it short.
// SIGUSR1 ends the thread once main has set server_stopped; one from outside before that is
// ignored (it must not leave SIGINT and SIGTERM blocked in every thread with nobody waiting).
void HandleSignals(EchoServer* server, const sigset_t* signals) {
  int drain_signals = 0;
  for (;;) {
    int sig = 0;
    if (sigwait(signals, &sig) != 0) continue;
    if (sig == SIGUSR1) {
      if (server_stopped.load()) return;
      continue;
    }
    if (++drain_signals > 1) {
      brrr::PrintToStdout("brrr-echo: %s again: closing every connection now\n", strsignal(sig));
      server->DrainNow();
    } else if (!server->Drain([sig] {
                 brrr::PrintToStdout("brrr-echo: %s: draining (%s; up to %s for open ones)\n", strsignal(sig),
                                     absl::GetFlag(FLAGS_drain_grace) == absl::ZeroDuration()
                                         ? "no new connections"
                                         : "new connections until the grace ends",
                                     absl::FormatDuration(absl::GetFlag(FLAGS_drain_timeout)).c_str());
               })) {
      brrr::PrintToStdout("brrr-echo: %s: already draining; a second signal closes every connection now\n",
                          strsignal(sig));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdin, stdout or stderr got /dev/null before any library opened a descriptor
  // (standard_descriptors.h): no socket has one of their numbers, so what the server prints
  // cannot go to a client.
  if (absl::Status kept = brrr::StandardDescriptorsAtStart(); !kept.ok()) {
    brrr::PrintToStderr("brrr-echo: %s\n", std::string(kept.message()).c_str());
    return 3;
  }
  brrr::SetUsage(
      "brrr's TCP echo server: echoes exactly the bytes each client sends, on the I/O backend of\n"
      "your choice, with bounded memory per connection and a graceful drain on SIGTERM/SIGINT/SIGHUP.\n\n"
      "Usage: brrr-echo [--backend=auto] [--host=127.0.0.1] [--port=5000] [--loops=1] ...\n"
      "Exit codes: 0 after a drain, 1 bad flag syntax, 2 option out of range, 3 cannot start, 6 could not\n"
      "write what --help, --version or --list_backends print; a stop signal before it serves ends it\n"
      "at once, as the signal would.");
  brrr::ParseFlagsOnly(argc, argv, "brrr-echo", /*exit_code=*/1);
  if (absl::Status dir = brrr::PluginLoader::CheckOverrideDir(absl::GetFlag(FLAGS_plugin_dir)); !dir.ok()) {
    brrr::PrintToStderr("brrr-echo: --plugin_dir: %s\n", std::string(dir.message()).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_list_backends)) return ListBackends();

  std::optional<uint64_t> port_in_range = InRange(FLAGS_port, kPortRange);
  if (!port_in_range.has_value()) return 2;
  const int32_t port = static_cast<int32_t>(*port_in_range);
  SideListenerFlags admin_flags{.name = "admin",
                                .port_range = &kAdminPortRange,
                                .what = "the admin plane",
                                .can =
                                    "read the statistics and act on the server (drain it, close connections, "
                                    "throttle, inject blocking tasks)",
                                .port_flag = &FLAGS_admin_port,
                                .host = absl::GetFlag(FLAGS_admin_host)};
  if (!admin_flags.Check()) return 2;
  int32_t admin_port = admin_flags.port;
  brrr::control::AdminServerOptions admin_options;
  admin_options.host = admin_flags.host;
  admin_options.port = static_cast<uint16_t>(admin_port);
  if (std::string token_file = absl::GetFlag(FLAGS_admin_token_file); !token_file.empty()) {
    absl::StatusOr<brrr::control::CallAuth> auth = brrr::control::CallAuth::FromTokenFile(token_file);
    if (!auth.ok()) {
      brrr::PrintToStderr("brrr-echo: %s\n", std::string(auth.status().message()).c_str());
      return 2;
    }
    admin_options.auth = *std::move(auth);
  }
  std::optional<brrr::Duration> max_block = InRange(FLAGS_admin_max_block, kAdminMaxBlockRange);
  if (!max_block.has_value()) return 2;
  admin_options.max_block = *max_block;
  std::optional<uint64_t> admin_connections = InRange(FLAGS_admin_max_connections, kAdminMaxConnectionsRange);
  if (!admin_connections.has_value()) return 2;
  admin_options.max_connections = static_cast<uint32_t>(*admin_connections);
  std::optional<uint64_t> admin_calls = InRange(FLAGS_admin_max_calls, kAdminMaxCallsRange);
  if (!admin_calls.has_value()) return 2;
  admin_options.max_calls = static_cast<uint32_t>(*admin_calls);
  std::optional<brrr::Duration> admin_idle = InRange(FLAGS_admin_idle_timeout, kAdminIdleTimeoutRange);
  if (!admin_idle.has_value()) return 2;
  admin_options.idle_timeout = *admin_idle;
  std::optional<brrr::Duration> admin_unread = InRange(FLAGS_admin_unread_timeout, kAdminUnreadTimeoutRange);
  if (!admin_unread.has_value()) return 2;
  admin_options.unread_timeout = *admin_unread;
  std::optional<uint64_t> reserved_fds =
      InRange(FLAGS_admin_reserved_fds, kAdminReservedFdsRange, admin_options.max_connections);
  if (!reserved_fds.has_value()) return 2;

  SideListenerFlags metrics_flags{.name = "metrics",
                                  .port_range = &kMetricsPortRange,
                                  .what = "the metrics port",
                                  .can = "read the statistics",
                                  .port_flag = &FLAGS_metrics_port,
                                  .host = absl::GetFlag(FLAGS_metrics_host)};
  if (!metrics_flags.Check()) return 2;
  int32_t metrics_port = metrics_flags.port;
  if (admin_options.auth.required() && admin_port == 0 && metrics_port == 0) {
    brrr::PrintToStderr(
        "brrr-echo: warning: --admin_token_file guards nothing: neither --admin_port nor --metrics_port is on\n");
  }
  std::optional<uint64_t> metrics_connections = InRange(FLAGS_metrics_max_connections, kMetricsMaxConnectionsRange);
  if (!metrics_connections.has_value()) return 2;
  if (TwoListenersShareAPort({{"--port", absl::GetFlag(FLAGS_host), port, /*dual_stack=*/false},
                              {"--admin_port", admin_flags.host, admin_port, /*dual_stack=*/true},
                              {"--metrics_port", metrics_flags.host, metrics_port, /*dual_stack=*/true}})) {
    return 2;
  }
  if (absl::Status upgrade_flags = brrr::Upgrade::CheckFlags(); !upgrade_flags.ok()) {
    brrr::PrintToStderr("brrr-echo: %s\n", std::string(upgrade_flags.message()).c_str());
    return 2;
  }

  EchoServerOptions o;
  o.backend = absl::GetFlag(FLAGS_backend);
  if (o.backend.empty()) {
    brrr::PrintToStderr(
        "brrr-echo: --backend is empty: give auto, a backend's name (brrr-echo --list_backends) or a plugin's path\n");
    return 2;
  }
  o.plugin_dir = absl::GetFlag(FLAGS_plugin_dir);
  o.host = absl::GetFlag(FLAGS_host);
  o.port = static_cast<uint16_t>(port);
  o.share_port = absl::GetFlag(FLAGS_share_port);
  // The whole-number options, each in its range (server_options.h), before they take their
  // types: a number none of them can hold is refused as out of range too.
  std::optional<uint64_t> loops = InRange(FLAGS_loops, brrr::server::kLoopsRange);
  if (!loops.has_value()) return 2;
  o.loops = static_cast<int>(*loops);
  std::optional<uint64_t> max_connections = InRange(FLAGS_max_connections, brrr::server::kMaxConnectionsRange);
  if (!max_connections.has_value()) return 2;
  o.max_connections = *max_connections;
  std::optional<uint64_t> high_water = InRange(FLAGS_high_water, brrr::server::kHighWaterRange);
  if (!high_water.has_value()) return 2;
  o.high_water = *high_water;
  std::optional<uint64_t> low_water = InRange(FLAGS_low_water, brrr::server::kLowWaterRange, o.high_water);
  if (!low_water.has_value()) return 2;
  o.low_water = *low_water;
  o.idle_timeout = ToDuration(absl::GetFlag(FLAGS_idle_timeout));
  o.reply_prefix = absl::GetFlag(FLAGS_reply_prefix);
  o.drain_grace = ToDuration(absl::GetFlag(FLAGS_drain_grace));
  o.drain_timeout = ToDuration(absl::GetFlag(FLAGS_drain_timeout));
  o.stall_threshold = ToDuration(absl::GetFlag(FLAGS_stall_threshold));
  o.stall_watchdog = absl::GetFlag(FLAGS_stall_watchdog);
  o.idle_poll = ToDuration(absl::GetFlag(FLAGS_idle_poll));
  std::optional<uint64_t> receive_buffer_size = InRange(FLAGS_recv_buffer_size, brrr::server::kReceiveBufferSizeRange);
  if (!receive_buffer_size.has_value()) return 2;
  o.receive_buffer_size = static_cast<uint32_t>(*receive_buffer_size);
  std::optional<uint64_t> receive_buffer_count = InRange(FLAGS_recv_buffers, brrr::server::kReceiveBuffersRange);
  if (!receive_buffer_count.has_value()) return 2;
  o.receive_buffer_count = static_cast<uint32_t>(*receive_buffer_count);
  // Without an admin plane or metrics port nobody needs the reserve: out of descriptors,
  // accepting backs off. The metrics port's connections are capped, and each has its place, as
  // has the file its scrape reads.
  o.reserved_descriptors =
      (admin_port != 0 ? *reserved_fds : 0) + (metrics_port != 0 ? *metrics_connections + kMetricsScrapeFiles : 0);
  if (absl::Status valid = brrr::server::Validate(o); !valid.ok()) {
    brrr::PrintToStderr("brrr-echo: %s\n", std::string(valid.message()).c_str());
    return 2;
  }

  // Signals are taken by one thread with sigwait; every other thread (the loops) blocks them.
  // SIGPIPE is ignored: sends use MSG_NOSIGNAL anyway, and a stray one must not kill the server.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // the terminal went away: drain, as SIGTERM does
  sigaddset(&signals, SIGUSR1);
  // The stall watchdog's signal is for loop threads only (each unblocks it as it starts its
  // loop): blocked in every other thread, so one sent to the process never lands in gRPC's.
  sigset_t blocked = signals;
  sigaddset(&blocked, brrr::StackSampler::Signal());
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  // Until the echo server accepts, a stop signal stops the process at once (startup_signals.h).
  sigset_t stop_signals = signals;
  sigdelset(&stop_signals, SIGUSR1);
  brrr::StartupSignals startup(stop_signals);

  // --take_over / --handover_socket (upgrade.h): listeners received here are adopted below.
  auto upgrade = brrr::Upgrade::Begin();
  if (!upgrade.ok()) {
    brrr::PrintToStderr("brrr-echo: %s\n", std::string(upgrade.status().message()).c_str());
    return 3;
  }
  // A start afresh after a process that died waits while its ports are still held (upgrade.h).
  const std::pair<std::string, int32_t> own_ports[] = {
      {o.host, port}, {admin_flags.host, admin_port}, {metrics_flags.host, metrics_port}};
  std::vector<brrr::SocketAddress> ports;
  for (const auto& [host, p] : own_ports) {
    absl::StatusOr<brrr::SocketAddress> at = brrr::SocketAddress::Parse(host, static_cast<uint16_t>(p));
    if (at.ok() && p != 0) ports.push_back(*at);
  }
  (*upgrade)->WaitForPortsOfTheDead(ports);
  (*upgrade)->AdoptEcho(o);
  admin_options.listener_fd = (*upgrade)->AdoptAdmin(admin_flags.host, static_cast<uint16_t>(admin_port));
  auto server = EchoServer::Create(o);
  if (!server.ok()) {
    brrr::PrintToStderr("brrr-echo: %s\n", std::string(server.status().message()).c_str());
    return 3;
  }
  brrr::EchoAdministered administered(**server);
  // Which flags make the reserve: only a plane that is on keeps descriptors free
  // (o.reserved_descriptors, above).
  auto reserve_flags = [&] {
    std::vector<std::string> reserve;
    if (admin_port != 0) reserve.push_back("--admin_reserved_fds");
    if (metrics_port != 0) reserve.push_back("--metrics_max_connections + 1");
    return reserve.empty() ? "" : absl::StrCat(" (the reserve is ", absl::StrJoin(reserve, " + "), ")");
  };
  std::unique_ptr<brrr::control::AdminServer> admin;
  if (admin_port != 0) {
    // A limit that leaves no descriptor beside the reserve is refused as the echo server's start
    // refuses it (below), but before gRPC starts: short of descriptors as it starts, gRPC aborts
    // the process (SIGABRT: "Eventfd wakeup fd is not supported") instead of failing. (So is a
    // process that cannot count its descriptors, as the start would refuse it.)
    if (absl::StatusOr<brrr::server::DescriptorPlan> plan =
            brrr::server::DescriptorPlan::Measure(o.reserved_descriptors, /*max_watchable_fd=*/-1);
        !plan.ok()) {
      brrr::PrintToStderr("brrr-echo: %s%s\n", std::string(plan.status().message()).c_str(), reserve_flags().c_str());
      return 3;
    }
    auto started = brrr::control::AdminServer::Start(
        admin_options, administered, brrr::PluginLoader::Default(o.plugin_dir).Probe());
    if (!started.ok()) {
      brrr::PrintToStderr("brrr-echo: %s\n", std::string(started.status().message()).c_str());
      return 3;
    }
    admin = *std::move(started);
    admin_flags.WarnUnlessLoopback(admin->address(), admin_options.auth.required());
  }
  // Started before the echo server, like the admin plane: the descriptor budget measures what
  // it has open (its loop, its listener) and leaves its connections their reserve.
  std::unique_ptr<brrr::control::MetricsHttpServer> metrics;
  std::string metrics_backend;
  if (metrics_port != 0) {
    brrr::control::MetricsHttpOptions mo;
    metrics_backend = (*server)->backend() == "select" ? "poll" : (*server)->backend();
    mo.host = metrics_flags.host;
    mo.port = static_cast<uint16_t>(metrics_port);
    mo.auth = admin_options.auth;
    mo.max_connections = static_cast<uint32_t>(*metrics_connections);
    // select watches descriptors below FD_SETSIZE only, and a scrape's socket may come after
    // every echo connection's: the metrics port then runs on poll, which watches any, so that
    // it answers at peak load too.
    mo.backend = metrics_backend;
    mo.plugin_dir = o.plugin_dir;
    mo.listener_fd = (*upgrade)->AdoptMetrics(metrics_flags.host, static_cast<uint16_t>(metrics_port));
    // A port taken over is answered by the process it comes from until this one's echo server
    // runs: accepting here before that would answer /readyz "not listening yet" for the port,
    // and a balancer's check would fail on a port that is served all along.
    mo.accept_at_start = mo.listener_fd < 0;
    brrr::control::MetricsPages pages;
    pages.collectables = {std::make_shared<brrr::control::MetricsExporter>(
                              administered, admin != nullptr ? admin->figures_of() : nullptr),
                          std::make_shared<brrr::control::ProcessFigures>()};
    pages.not_ready = [&administered] { return brrr::control::NotReadyReason(administered); };
    auto started = brrr::control::MetricsHttpServer::Start(std::move(mo), std::move(pages));
    if (!started.ok()) {
      brrr::PrintToStderr("brrr-echo: %s\n", std::string(started.status().message()).c_str());
      return 3;
    }
    metrics = *std::move(started);
    metrics_flags.WarnUnlessLoopback(metrics->address(), admin_options.auth.required());
  }
  startup.Stop();  // from here on a stop signal drains, once HandleSignals takes it
  if (absl::Status started = (*server)->Start(); !started.ok()) {
    brrr::PrintToStderr("brrr-echo: %s%s\n", std::string(started.message()).c_str(), reserve_flags().c_str());
    return 3;
  }
  if (metrics != nullptr) metrics->StartAccepting();
  brrr::PrintToStdout("brrr-echo: listening on %s (backend %s, %d loop%s, pid %d)\n",
                      (*server)->address().ToString().c_str(), (*server)->backend().c_str(), o.loops,
                      o.loops == 1 ? "" : "s", static_cast<int>(::getpid()));
  for (const std::string& reason : (*server)->backends_passed_over()) {
    brrr::PrintToStdout("brrr-echo: --backend=auto passed over %s\n", reason.c_str());
  }
  if (admin != nullptr) {
    brrr::PrintToStdout("brrr-echo: admin plane on %s (gRPC: brrr.admin.v1.Admin, grpc.health.v1, reflection%s)\n",
                        admin->address().c_str(), admin_options.auth.required() ? "; bearer token required" : "");
  }
  if (metrics != nullptr) {
    brrr::PrintToStdout("brrr-echo: metrics on %s (HTTP: /metrics, /healthz, /readyz%s%s)\n",
                        metrics->address().c_str(), admin_options.auth.required() ? "; bearer token required" : "",
                        metrics_backend != (*server)->backend()
                            ? "; on the poll backend: select watches descriptors below 1024 only"
                            : "");
  }
  if (const auto& plan = (*server)->descriptor_plan(); plan.has_value()) {
    brrr::PrintToStdout(
        "brrr-echo: descriptors: up to %llu for echo connections (limit %llu%s, %llu open at start, %llu kept "
        "for the admin plane and metrics port)\n",
        static_cast<unsigned long long>(plan->for_connections), static_cast<unsigned long long>(plan->limit),
        plan->backend_limit
            ? absl::StrCat(": the ", (*server)->backend(), " backend watches descriptors below ", plan->limit, " only")
                  .c_str()
            : "",
        static_cast<unsigned long long>(plan->open_at_start), static_cast<unsigned long long>(plan->reserved));
  }

  int exit_code = 0;
  if (absl::Status serving = (*upgrade)->Serve(**server, admin.get(), metrics.get()); !serving.ok()) {
    brrr::PrintToStderr("brrr-echo: %s; draining\n", std::string(serving.message()).c_str());
    // Without --drain_grace: the old process never stopped accepting on these sockets.
    (*server)->DrainHandedOver();
    exit_code = 3;
  }
  std::thread signal_thread(HandleSignals, server->get(), &signals);
  int64_t drain_started = 0;
  (*server)->Wait();
  (*upgrade)->Stop();
  if (admin != nullptr) admin->Shutdown();
  if (metrics != nullptr) metrics->Stop();
  drain_started = (*server)->drain_started_at_ns();
  server_stopped.store(true);
  pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();

  brrr::server::ServerStats s = (*server)->stats();
  int64_t now = brrr::MonotonicNanos();
  brrr::PrintToStdout(
      "brrr-echo: drained in %.3f s: %llu connections served, %llu closed at the drain deadline, "
      "%llu closed by a second signal, %llu bytes in, %llu bytes out, up %.3f s; at the deadline %llu closed "
      "cleanly, %llu with a reset, %llu bytes discarded after the end of stream; %llu clients reset in a "
      "listener's backlog\n",
      static_cast<double>(now - drain_started) / 1e9, static_cast<unsigned long long>(s.connections_accepted),
      static_cast<unsigned long long>(s.connections_closed_drain),
      static_cast<unsigned long long>(s.connections_closed_by_signal), static_cast<unsigned long long>(s.bytes_in),
      static_cast<unsigned long long>(s.bytes_out), static_cast<double>(now - (*server)->started_at_ns()) / 1e9,
      static_cast<unsigned long long>(s.connections_closed_drain_clean),
      static_cast<unsigned long long>(s.connections_closed_drain_reset),
      static_cast<unsigned long long>(s.bytes_discarded),
      static_cast<unsigned long long>(s.connections_reset_in_backlog));
  return exit_code;
}
