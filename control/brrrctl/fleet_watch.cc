#include "control/brrrctl/fleet_watch.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "control/brrrctl/brrrctl_flags.h"
#include "control/brrrctl/cli_values.h"
#include "control/brrrctl/message_json.h"
#include "control/brrrctl/message_text.h"
#include "control/brrrctl/output.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;

constexpr uint32_t kDefaultIntervalMs = 1000;  // WatchStats' when interval_ms is 0

// One target's stream, as its thread leaves it for the printing thread.
struct Stream {
  struct Sample {
    admin::Stats stats;
    absl::Time arrived;
  };
  std::deque<Sample> samples;  // received, not printed yet, oldest first
  bool ended = false;
  // Sent nothing for the silent wait while others had samples: the ticks stop waiting for it
  // until its next sample.
  bool silent = false;
  Outcome outcome;
};

// Whether a tick can be printed: every stream has a sample, has ended or is silent, and there
// is a sample to print (or every stream has ended: only their errors are left).
bool TickReady(const std::vector<Stream>& streams) {
  bool any_sample = false;
  bool all_ended = true;
  for (const Stream& s : streams) {
    if (!s.ended && s.samples.empty() && !s.silent) return false;
    any_sample |= !s.samples.empty();
    all_ended &= s.ended;
  }
  return any_sample || all_ended;
}

// When the oldest sample waiting to be printed came; InfiniteFuture when none waits.
absl::Time OldestWaiting(const std::vector<Stream>& streams) {
  absl::Time oldest = absl::InfiniteFuture();
  for (const Stream& s : streams) {
    if (!s.samples.empty()) oldest = std::min(oldest, s.samples.front().arrived);
  }
  return oldest;
}

// The figures of one line, and its rates (nullopt: no earlier sample to compare with).
struct Row {
  uint64_t connections_active = 0;
  uint64_t connections_accepted = 0;
  std::optional<double> in_rate, out_rate, tasks_rate;
  uint64_t stalls = 0;
  uint64_t ready = 0;
};

Row MakeRow(const admin::LoopStats& now, const admin::LoopStats* before, double seconds) {
  Row row{now.connections_active(), now.connections_accepted(), {}, {}, {}, now.stalls(), now.ready_queue_depth()};
  if (before != nullptr && seconds > 0) {
    row.in_rate = static_cast<double>(now.bytes_in() - before->bytes_in()) / seconds;
    row.out_rate = static_cast<double>(now.bytes_out() - before->bytes_out()) / seconds;
    row.tasks_rate = static_cast<double>(now.tasks_run() - before->tasks_run()) / seconds;
  }
  return row;
}

std::string Rate(const std::optional<double>& rate) { return rate.has_value() ? FormatShort(*rate) : "-"; }

class TickPrinter {
 public:
  TickPrinter(FleetInvocation& invocation, const std::vector<uint32_t>& loops)
      : invocation_(invocation), loops_(loops), previous_(invocation.fleet.size()) {
    for (size_t i = 0; i < invocation.fleet.size(); ++i) width_ = std::max(width_, invocation.fleet.target(i).size());
  }

  // One tick: samples[i] is target i's sample, or nullopt.
  void Print(const std::vector<std::optional<admin::Stats>>& samples, const std::vector<std::string>& errors) {
    std::string text;
    if (!invocation_.json && !header_printed_) {
      text += Line("UPTIME", "TARGET", "LOOP", "CONNS", "ACCEPTED", "IN/S", "OUT/S", "TASKS/S", "STALLS", "READY",
                   "LAG_P99_US");
      header_printed_ = true;
    }
    StatsTotal total(!loops_.empty());
    size_t answering = 0;
    Row sum;
    sum.in_rate = sum.out_rate = sum.tasks_rate = 0.0;
    bool all_rates = true;
    for (size_t i = 0; i < samples.size(); ++i) {
      const std::string& target = invocation_.fleet.target(i);
      if (!samples[i].has_value()) {
        if (!invocation_.json) text += Line("-", target, "-", "-", "-", "-", "-", "-", "-", "-", "-");
      } else {
        const admin::Stats& stats = *samples[i];
        ++answering;
        total.Add(stats);
        if (invocation_.json) {
          absl::StrAppend(&text, "{\"target\":", JsonString(target), ",\"result\":", MessageToJsonLine(stats), "}\n");
        } else {
          const std::optional<admin::Stats>& before = previous_[i];
          double seconds = before ? stats.uptime_seconds() - before->uptime_seconds() : 0;
          auto add = [&](const admin::LoopStats& now, const admin::LoopStats* was, const std::string& loop) {
            Row row = MakeRow(now, was, seconds);
            text += RowLine(FormatDecimal(stats.uptime_seconds()).substr(0, 10), target, loop, row,
                            FormatDecimal(now.timer_lateness().p99_us()));
            Accumulate(row, &sum, &all_rates);
          };
          if (loops_.empty()) {
            add(stats.total(), before ? &before->total() : nullptr, "all");
          } else {
            for (int l = 0; l < stats.loops_size(); ++l) {
              add(stats.loops(l), before && l < before->loops_size() ? &before->loops(l) : nullptr,
                  absl::StrCat(stats.loops(l).loop()));
            }
          }
        }
        previous_[i] = stats;
      }
      if (!errors[i].empty()) text += errors[i];
    }
    if (invocation_.json) {
      absl::StrAppend(&text, "{\"total\":{\"targets\":", samples.size(), ",\"answering\":", answering,
                      answering > 0 ? absl::StrCat(",", total.JsonMembers()) : "", "}}\n");
    } else {
      if (!all_rates) sum.in_rate = sum.out_rate = sum.tasks_rate = std::nullopt;
      text += RowLine("", "total", loops_.empty() ? "all" : "listed", sum, "-");
    }
    WriteOut(invocation_.stream, text);
  }

 private:
  static void Accumulate(const Row& row, Row* sum, bool* all_rates) {
    sum->connections_active += row.connections_active;
    sum->connections_accepted += row.connections_accepted;
    sum->stalls += row.stalls;
    sum->ready += row.ready;
    if (!row.in_rate.has_value()) {
      *all_rates = false;
      return;
    }
    *sum->in_rate += *row.in_rate;
    *sum->out_rate += *row.out_rate;
    *sum->tasks_rate += *row.tasks_rate;
  }

  std::string RowLine(const std::string& uptime, const std::string& target, const std::string& loop, const Row& row,
                      const std::string& lag) const {
    return Line(uptime, target, loop, absl::StrCat(row.connections_active), absl::StrCat(row.connections_accepted),
                Rate(row.in_rate), Rate(row.out_rate), Rate(row.tasks_rate), absl::StrCat(row.stalls),
                absl::StrCat(row.ready), lag);
  }

  std::string Line(const std::string& uptime, const std::string& target, const std::string& loop,
                   const std::string& conns, const std::string& accepted, const std::string& in,
                   const std::string& out, const std::string& tasks, const std::string& stalls,
                   const std::string& ready, const std::string& lag) const {
    return absl::StrFormat("%10s %-*s %6s %7s %9s %8s %8s %8s %7s %6s %10s\n", uptime, static_cast<int>(width_), target,
                           loop, conns, accepted, in, out, tasks, stalls, ready, lag);
  }

  FleetInvocation& invocation_;
  const std::vector<uint32_t>& loops_;
  std::vector<std::optional<admin::Stats>> previous_;
  size_t width_ = std::string("TARGET").size();
  bool header_printed_ = false;
};

}  // namespace

absl::Duration WatchSilentAfter(uint32_t interval_ms) {
  return std::max(2 * absl::Milliseconds(interval_ms != 0 ? interval_ms : kDefaultIntervalMs), absl::Seconds(2));
}

Outcome RunWatchOnFleet(FleetInvocation& invocation) {
  admin::WatchStatsRequest request;
  if (invocation.line.given("interval")) {
    absl::StatusOr<uint32_t> ms = SampleIntervalMilliseconds(absl::GetFlag(FLAGS_interval));
    if (!ms.ok()) return Outcome::Usage(absl::StrCat("--interval=", ms.status().message()));
    request.set_interval_ms(*ms);
  }
  request.set_count(absl::GetFlag(FLAGS_count));
  const absl::Duration silent_after = WatchSilentAfter(request.interval_ms());
  const std::vector<uint32_t> loops = absl::GetFlag(FLAGS_loop).loops;
  Fleet& fleet = invocation.fleet;
  const size_t n = fleet.size();

  std::mutex mu;
  std::condition_variable changed;
  std::vector<Stream> streams(n);  // guarded by mu
  std::vector<std::thread> readers;
  for (size_t i = 0; i < n; ++i) {
    readers.emplace_back([&, i] {
      Output unused(invocation.json);  // ReadStream writes nothing; the samples go to the printer
      Invocation one{invocation.args, invocation.line, fleet.client(i), unused, invocation.interrupts};
      Outcome checked = Outcome::Ok();
      Outcome outcome = ReadStream<admin::Stats>(
          one, [&](grpc::ClientContext* context) { return fleet.client(i).admin().WatchStats(context, request); },
          [&](const admin::Stats& message) {
            admin::Stats stats = message;
            if (checked = CheckLoops(loops, stats.loops_size()); !checked.ok()) return false;
            KeepLoops(loops, &stats);
            std::lock_guard<std::mutex> lock(mu);
            streams[i].samples.push_back({std::move(stats), absl::Now()});
            changed.notify_all();
            return true;
          });
      std::lock_guard<std::mutex> lock(mu);
      streams[i].ended = true;
      streams[i].outcome = checked.ok() ? outcome : checked;
      changed.notify_all();
    });
  }

  TickPrinter printer(invocation, loops);
  std::vector<bool> reported(n, false);
  std::vector<Outcome> outcomes(n);
  for (;;) {
    std::vector<std::optional<admin::Stats>> samples(n);
    std::vector<std::string> errors(n);
    bool any = false;
    {
      std::unique_lock<std::mutex> lock(mu);
      // A tick waits for every stream, but not for ever for one that is silent (a server that
      // hangs, or one still connecting) while the others' samples pile up.
      while (!TickReady(streams)) {
        const absl::Time deadline = OldestWaiting(streams) + silent_after;
        if (deadline == absl::InfiniteFuture()) {
          changed.wait(lock);
        } else if (changed.wait_for(lock, absl::ToChronoNanoseconds(deadline - absl::Now())) ==
                   std::cv_status::timeout && absl::Now() >= deadline) {
          for (Stream& s : streams) s.silent |= !s.ended && s.samples.empty();
        }
      }
      for (size_t i = 0; i < n; ++i) {
        Stream& s = streams[i];
        if (!s.samples.empty()) {
          samples[i] = std::move(s.samples.front().stats);
          s.samples.pop_front();
          s.silent = false;
          any = true;
        } else if (s.ended && !reported[i]) {
          reported[i] = true;
          outcomes[i] = s.outcome;
          if (!s.outcome.ok() && !s.outcome.message.empty()) {
            errors[i] = invocation.json ? ErrorJsonLine(fleet.target(i), s.outcome)
                                        : absl::StrCat("error (exit ", static_cast<int>(s.outcome.code), ") from ",
                                                       fleet.target(i), ": ", s.outcome.message, "\n");
          }
        }
      }
    }
    if (invocation.interrupts.interrupted()) break;
    if (!any) {
      // Every stream has ended: only errors are left to say.
      std::string text;
      for (const std::string& e : errors) text += e;
      WriteOut(invocation.stream, text);
      break;
    }
    printer.Print(samples, errors);
    // The streams stop at their next sample too (ReadStream); main says why.
    if (!OutputStatus().ok()) break;
  }
  for (std::thread& t : readers) t.join();
  for (size_t i = 0; i < n; ++i) {
    if (!reported[i]) outcomes[i] = streams[i].outcome;
  }
  for (const Outcome& o : outcomes) {
    if (o.code == ExitCode::kUsage) return o;
  }
  return WorstOutcome(fleet.targets(), outcomes);
}

}  // namespace brrr::control
