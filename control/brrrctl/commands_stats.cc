// Commands that read the server's state: info, stats, watch, health.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "control/brrrctl/brrrctl_flags.h"
#include "control/brrrctl/cli_values.h"
#include "control/brrrctl/commands.h"
#include "control/brrrctl/fleet_run.h"
#include "control/brrrctl/fleet_totals.h"
#include "control/brrrctl/fleet_watch.h"
#include "control/brrrctl/message_text.h"
#include "control/brrrctl/text_table.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;
namespace health = grpc::health::v1;

// "serving", "grace", "finishing", "closing" (README "Draining" says what each means).
std::string DrainPhaseText(admin::DrainPhase phase) {
  std::string name = admin::DrainPhase_Name(phase);
  return absl::AsciiStrToLower(absl::StripPrefix(name, "DRAIN_PHASE_"));
}

std::string ServerInfoText(const admin::ServerInfo& info) {
  TextTable table;
  table.AddRow({"version", info.version()});
  table.AddRow({"backend", info.backend()});
  table.AddRow({"loops", absl::StrCat(info.loops())});
  table.AddRow({"listening", absl::StrJoin(info.listening_addresses(), ", ")});
  table.AddRow({"uptime", FormatMilliseconds(info.uptime_seconds() * 1000)});
  table.AddRow({"pid", absl::StrCat(info.pid())});
  table.AddRow({"drain", DrainPhaseText(info.drain_phase())});
  for (int i = 0; i < info.available_backends_size(); ++i) {
    const admin::BackendAvailability& b = info.available_backends(i);
    table.AddRow({i == 0 ? "backends" : "",
                  absl::StrCat(b.name(), b.starts() ? ": starts here" : absl::StrCat(": cannot start: ", b.reason()))});
  }
  return table.Render();
}

Outcome RunInfo(Invocation& invocation) {
  admin::ServerInfo info;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return invocation.client.admin().GetServerInfo(context, admin::GetServerInfoRequest(), &info);
  });
  if (!outcome.ok()) return outcome;
  invocation.out.Result(info, ServerInfoText(info));
  return Outcome::Ok();
}

// The server-wide part, then one column per loop (and the total unless --loop picked loops),
// one row per LoopStats field.
std::string StatsText(const admin::Stats& stats, bool with_total) {
  TextTable summary;
  summary.AddRow({"uptime", FormatMilliseconds(stats.uptime_seconds() * 1000)});
  summary.AddRow({"draining", stats.draining() ? absl::StrCat("yes (", DrainPhaseText(stats.drain_phase()), ")") : "no"});
  summary.AddRow({"throttle", ThrottleText(stats.throttle())});
  std::vector<std::string> ids;
  for (const admin::Injection& i : stats.injections()) ids.push_back(absl::StrCat(i.id()));
  summary.AddRow({"injections", ids.empty() ? "none" : absl::StrCat(absl::StrJoin(ids, ", "), " (brrrctl injections)")});

  std::vector<std::string> header = {"FIELD"};
  std::vector<std::vector<std::pair<std::string, std::string>>> columns;
  for (const admin::LoopStats& loop : stats.loops()) {
    header.push_back(absl::StrCat("LOOP ", loop.loop()));
    columns.push_back(FieldRows(loop));
  }
  // A setting the loops do not share is 0 in the total, as the server sends it (admin.proto),
  // and said under the table.
  std::set<std::string> settings_differ;
  if (with_total) {
    header.push_back("TOTAL");
    columns.push_back(FieldRows(stats.total()));
    for (const auto& [name, text] : columns.back()) {
      if (IsSettingField(name) && text == "0") settings_differ.insert(name);
    }
  }
  TextTable table(header);
  for (size_t c = 1; c < header.size(); ++c) table.AlignRight(c);
  size_t rows = columns.empty() ? 0 : columns.front().size();
  for (size_t r = 0; r < rows; ++r) {
    if (columns.front()[r].first == "loop") continue;  // the column says it
    std::vector<std::string> cells = {columns.front()[r].first};
    for (const auto& column : columns) cells.push_back(column[r].second);
    table.AddRow(std::move(cells));
  }
  return absl::StrCat(summary.Render(), "\n", table.Render(), SettingsNote(settings_differ));
}

Outcome RunStats(Invocation& invocation) {
  admin::Stats stats;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return invocation.client.admin().GetStats(context, admin::GetStatsRequest(), &stats);
  });
  if (!outcome.ok()) return outcome;
  const std::vector<uint32_t> loops = absl::GetFlag(FLAGS_loop).loops;
  if (outcome = CheckLoops(loops, stats.loops_size()); !outcome.ok()) return outcome;
  KeepLoops(loops, &stats);
  invocation.out.Result(stats, StatsText(stats, loops.empty()));
  return Outcome::Ok();
}

// `watch` for people: one line per sample (per loop with --loop), rates over the last interval.
class WatchLines {
 public:
  explicit WatchLines(Output& out) : out_(out) {}

  void Add(const admin::Stats& stats, const std::vector<uint32_t>& loops) {
    if (!previous_.has_value()) {
      out_.Text(absl::StrFormat("%10s %5s %7s %9s %8s %8s %8s %7s %6s %10s\n", "UPTIME", "LOOP", "CONNS", "ACCEPTED",
                                "IN/S", "OUT/S", "TASKS/S", "STALLS", "READY", "LAG_P99_US"));
    }
    std::string lines;
    if (loops.empty()) {
      lines += Line(stats, stats.total(), previous_ ? &previous_->total() : nullptr, "all");
    } else {
      for (int i = 0; i < stats.loops_size(); ++i) {
        const admin::LoopStats* before =
            previous_ && i < previous_->loops_size() ? &previous_->loops(i) : nullptr;
        lines += Line(stats, stats.loops(i), before, absl::StrCat(stats.loops(i).loop()));
      }
    }
    out_.Text(lines);
    previous_ = stats;
  }

 private:
  std::string Line(const admin::Stats& stats, const admin::LoopStats& now, const admin::LoopStats* before,
                   const std::string& loop) {
    double seconds = previous_ ? stats.uptime_seconds() - previous_->uptime_seconds() : 0;
    auto rate = [&](uint64_t (admin::LoopStats::*figure)() const) -> std::string {
      if (before == nullptr || seconds <= 0) return "-";
      return FormatShort(static_cast<double>((now.*figure)() - (before->*figure)()) / seconds);
    };
    return absl::StrFormat("%10s %5s %7d %9d %8s %8s %8s %7d %6d %10s\n",
                           FormatDecimal(stats.uptime_seconds()).substr(0, 10), loop, now.connections_active(),
                           now.connections_accepted(), rate(&admin::LoopStats::bytes_in),
                           rate(&admin::LoopStats::bytes_out), rate(&admin::LoopStats::tasks_run), now.stalls(),
                           now.ready_queue_depth(), FormatDecimal(now.timer_lateness().p99_us()));
  }

  Output& out_;
  std::optional<admin::Stats> previous_;
};

// While `watch` reads one target's stream: says on stderr once the server has sent no sample for
// WatchSilentAfter (fleet_watch.h, as a fleet's watch waits for a silent target), and again when
// samples come back, so that a watch on a stopped or unreachable server does not look like one
// with nothing to say. (Samples come from the admin plane's own thread: a blocked loop does not
// stop them.) Stdout, and --json's one object per sample, stay as they are.
class SilenceNotice {
 public:
  SilenceNotice(std::string target, absl::Duration after)
      : target_(std::move(target)), after_(after), last_(absl::Now()) {
    thread_ = std::thread([this] { Watch(); });
  }
  ~SilenceNotice() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  // A sample came.
  void Sampled() {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = absl::Now();
    if (said_) {
      std::fprintf(stderr, "brrrctl: watch: samples from %s again, after %s without\n", target_.c_str(),
                   absl::FormatDuration(absl::Trunc(now - last_, absl::Milliseconds(100))).c_str());
      said_ = false;
    }
    last_ = now;
  }

 private:
  void Watch() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!done_) {
      const absl::Time due = last_ + after_;
      if (!said_ && absl::Now() >= due) {
        std::fprintf(stderr,
                     "brrrctl: watch: no sample from %s for %s (a server stopped, or the network between); still "
                     "waiting\n",
                     target_.c_str(), absl::FormatDuration(after_).c_str());
        said_ = true;
      }
      wake_.wait_for(lock, said_ ? std::chrono::seconds(1) : absl::ToChronoNanoseconds(due - absl::Now()));
    }
  }

  const std::string target_;
  const absl::Duration after_;
  std::mutex mu_;
  std::condition_variable wake_;
  absl::Time last_;    // guarded by mu_: the last sample, or the start
  bool said_ = false;  // guarded by mu_: the silence was said and has not ended
  bool done_ = false;  // guarded by mu_
  std::thread thread_;
};

Outcome RunWatch(Invocation& invocation) {
  admin::WatchStatsRequest request;
  if (invocation.given("interval")) {
    absl::StatusOr<uint32_t> ms = SampleIntervalMilliseconds(absl::GetFlag(FLAGS_interval));
    if (!ms.ok()) return Outcome::Usage(absl::StrCat("--interval=", ms.status().message()));
    request.set_interval_ms(*ms);
  }
  const uint32_t count = absl::GetFlag(FLAGS_count);
  request.set_count(count);
  const std::vector<uint32_t> loops = absl::GetFlag(FLAGS_loop).loops;
  WatchLines lines(invocation.out);
  uint32_t received = 0;
  Outcome checked = Outcome::Ok();
  std::optional<SilenceNotice> silence;
  Outcome outcome = ReadStream<admin::Stats>(
      invocation,
      [&](grpc::ClientContext* context) {
        silence.emplace(invocation.client.target(), WatchSilentAfter(request.interval_ms()));
        return invocation.client.admin().WatchStats(context, request);
      },
      [&](const admin::Stats& message) {
        silence->Sampled();
        admin::Stats stats = message;
        if (checked = CheckLoops(loops, stats.loops_size()); !checked.ok()) return false;
        KeepLoops(loops, &stats);
        if (invocation.out.json()) {
          invocation.out.Json(stats);
        } else {
          lines.Add(stats, loops);
        }
        return count == 0 || ++received < count;
      });
  return checked.ok() ? outcome : checked;
}

Outcome RunHealth(Invocation& invocation) {
  health::HealthCheckRequest request;
  request.set_service(absl::GetFlag(FLAGS_service));
  health::HealthCheckResponse response;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return invocation.client.health().Check(context, request, &response);
  });
  if (!outcome.ok()) return outcome;
  invocation.out.Result(response, absl::StrCat(health::HealthCheckResponse::ServingStatus_Name(response.status()), "\n"));
  if (response.status() != health::HealthCheckResponse::SERVING) return {ExitCode::kNotServing, ""};
  return Outcome::Ok();
}

}  // namespace

std::vector<Command> StatsCommands() {
  return {
      Command{
          .name = "info",
          .summary = "what runs: version, backend, loops, addresses, uptime, pid, backends found",
          .details = "GetServerInfo.",
          .run = RunInfo,
          .run_fleet = OnEachTarget(RunInfo, [] { return std::make_unique<InfoTotal>(); }),
      },
      Command{
          .name = "stats",
          .summary = "live figures per loop and in total, throttles, active injections",
          .details = "GetStats, once. Without --json: the server-wide figures, then one column per loop and one\n"
                     "for the total, one row per figure (the LoopStats fields of admin.proto). A setting\n"
                     "(stall_threshold_ms) that is not the same in every loop is 0 in the total, in text and\n"
                     "JSON alike, as admin.proto has it, and a line under the table says so; over several\n"
                     "targets, the total's is 0 too when the targets' differ.",
          .flags = {{"loop", "N[,N...]",
                     "only these loops' columns, without the total (default: every loop\n"
                     "and the total); with --json, only these loops in `loops`"}},
          .run = RunStats,
          .run_fleet = OnEachTarget(
              RunStats, [] { return std::make_unique<StatsTotal>(!absl::GetFlag(FLAGS_loop).loops.empty()); }),
      },
      Command{
          .name = "watch",
          .summary = "stats again and again (a stream), until --count or Ctrl-C",
          .details = "WatchStats. Without --json: one line per sample, with rates over the last interval:\n"
                     "connections open and accepted, bytes in and out per second, tasks run per second,\n"
                     "stalls so far, the ready queue, and the 99th percentile of timer lateness.\n"
                     "With --json: one Stats object per line. SIGINT or SIGTERM ends it with exit 0.\n"
                     "A server that sends no sample for two intervals (at least 2s) is said on stderr, and\n"
                     "again when its samples come back; with several targets its line is \"-\" meanwhile.",
          .flags = {{"interval", "DURATION", "time between samples: 50ms to 1h (default 1s)"},
                    {"count", "N", "stop after N samples (default 0: until interrupted)"},
                    {"loop", "N[,N...]",
                     "one line per listed loop instead of the total; with --json, only\n"
                     "these loops in `loops`"}},
          .run = RunWatch,
          .run_fleet = RunWatchOnFleet,
      },
      Command{
          .name = "health",
          .summary = "grpc.health.v1 check: exit 0 when SERVING, 5 when not (draining)",
          .details = "grpc.health.v1.Health/Check. Prints the status (SERVING, NOT_SERVING...). Exit 0 when\n"
                     "SERVING; exit 5 for any other status (the server is draining, for one).",
          .flags = {{"service", "NAME", "the service to check, e.g. brrr.admin.v1.Admin (default: the server)"}},
          .run = RunHealth,
          .run_fleet = OnEachTarget(RunHealth),
      },
  };
}

}  // namespace brrr::control
