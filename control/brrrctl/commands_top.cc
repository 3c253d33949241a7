// `brrrctl top`: a live view of the loops (top_screen.h on a terminal, top_text.h's plain lines
// otherwise), polled every --interval (top_source.h) and kept as rates and history by the model
// (top_model.h). Several targets (--target=A,B,C or --targets_file): every target polled at
// once, a row per target and the fleet's total, each target's own view a key away.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "control/brrrctl/brrrctl_flags.h"
#include "control/brrrctl/commands.h"
#include "control/brrrctl/fleet_run.h"
#include "control/brrrctl/output.h"
#include "control/brrrctl/top_model.h"
#include "control/brrrctl/top_screen.h"
#include "control/brrrctl/top_source.h"
#include "control/brrrctl/top_text.h"

namespace brrr::control {
namespace {

constexpr absl::Duration kMinInterval = absl::Milliseconds(100);
constexpr absl::Duration kMaxInterval = absl::Hours(1);
constexpr uint32_t kDefaultFrames = 5;
// How often keys and Ctrl-C are looked at while waiting for the next poll.
constexpr absl::Duration kKeyWait = absl::Milliseconds(100);

struct TopSettings {
  absl::Duration interval = absl::Seconds(1);
  uint32_t count = 0;
  uint32_t frames = kDefaultFrames;
  std::vector<uint32_t> loops;
};

// Polls every target at once (one that hangs costs an interval, not one per target), words
// their throttles, and checks --loop against each target's first answer.
class Poller {
 public:
  Poller(std::vector<std::unique_ptr<TopSource>> sources, top::TopModel& model, const std::vector<uint32_t>& loops)
      : sources_(std::move(sources)), checked_(sources_.size(), false), model_(model), loops_(loops) {}

  Outcome Poll() {
    std::vector<top::TargetSnapshot> snapshots(sources_.size());
    AtOnce(sources_.size(), [&](size_t i) { snapshots[i] = sources_[i]->Poll(); });
    for (size_t i = 0; i < snapshots.size(); ++i) {
      top::TargetSnapshot& snapshot = snapshots[i];
      last_ = i == 0 ? snapshot.taken : std::max(last_, snapshot.taken);
      if (!snapshot.status.ok()) continue;
      snapshot.throttle = ThrottleText(snapshot.stats.throttle());
      if (checked_[i]) continue;
      checked_[i] = true;
      if (Outcome outcome = CheckLoops(loops_, snapshot.stats.loops_size()); !outcome.ok()) {
        if (sources_.size() > 1) outcome.message = absl::StrCat(snapshot.target, ": ", outcome.message);
        return outcome;
      }
    }
    model_.Add(snapshots);
    return Outcome::Ok();
  }
  absl::Time last() const { return last_; }
  size_t targets() const { return sources_.size(); }

 private:
  std::vector<std::unique_ptr<TopSource>> sources_;
  std::vector<bool> checked_;
  top::TopModel& model_;
  const std::vector<uint32_t>& loops_;
  absl::Time last_ = absl::Now();
};

// The fleet's total for a view of several targets; none for one.
std::optional<top::FleetTotal> TotalOf(const Poller& poller, const top::TopModel& model) {
  if (poller.targets() < 2) return std::nullopt;
  return model.Total();
}

Outcome RunPlain(const std::function<void(const std::string&)>& print, const TopSettings& settings, Poller& poller,
                 top::TopModel& model, const std::atomic<bool>& stop) {
  top::ViewOptions options{.loops = settings.loops};
  for (uint32_t tick = 1; !stop.load(); ++tick) {
    if (Outcome outcome = poller.Poll(); !outcome.ok()) return outcome;
    std::optional<top::FleetTotal> total = TotalOf(poller, model);
    print(top::PlainBlock(model.View(options), options.sort, settings.frames, total ? &*total : nullptr));
    if (!OutputStatus().ok()) break;  // main says why
    if (settings.count != 0 && tick >= settings.count) break;
    absl::Time next = absl::Now() + settings.interval;
    while (!stop.load() && absl::Now() < next) absl::SleepFor(std::min(kKeyWait, next - absl::Now()));
  }
  return Outcome::Ok();
}

// The loop shown after `key` (left/right, a digit, `a`), among `loop_count` loops; unchanged
// for other keys. Empty: every loop.
std::vector<uint32_t> SwitchLoop(int key, const std::vector<uint32_t>& shown, uint32_t loop_count) {
  if (key == 'a' || key == 'A') return {};
  if (key >= '0' && key <= '9') {
    uint32_t loop = static_cast<uint32_t>(key - '0');
    return loop < loop_count ? std::vector<uint32_t>{loop} : shown;
  }
  if ((key != kKeyLeft && key != kKeyRight) || loop_count == 0) return shown;
  // The cycle: all, 0, 1, ..., loop_count - 1, all again.
  int64_t at = shown.size() == 1 ? static_cast<int64_t>(shown[0]) : -1;
  at += key == kKeyRight ? 1 : -1;
  if (at == static_cast<int64_t>(loop_count)) at = -1;
  if (at < -1) at = loop_count - 1;
  if (at == -1) return {};
  return {static_cast<uint32_t>(at)};
}

Outcome RunScreen(TopScreen& screen, const TopSettings& settings, Poller& poller, top::TopModel& model,
                  const std::atomic<bool>& stop) {
  TopScreenState state{.loops = settings.loops,
                       .interval = settings.interval,
                       .history = model.history(),
                       .frames = settings.frames};
  absl::Time next_poll = absl::Now();
  uint32_t ticks = 0;
  bool redraw = true;
  std::vector<top::TargetView> views;  // as last drawn
  while (!stop.load()) {
    if (!state.paused && absl::Now() >= next_poll) {
      if (Outcome outcome = poller.Poll(); !outcome.ok()) return outcome;
      next_poll = absl::Now() + settings.interval;
      state.now = poller.last();
      ++ticks;
      redraw = true;
    }
    if (redraw) {
      views = model.View({.sort = state.sort, .loops = state.loops, .max_sockets = 100});
      std::optional<top::FleetTotal> total = TotalOf(poller, model);
      screen.Draw(views, state, total ? &*total : nullptr);
      redraw = false;
      if (settings.count != 0 && ticks >= settings.count) break;
    }
    int key = screen.ReadKey(state.paused ? kKeyWait : std::clamp(next_poll - absl::Now(), absl::ZeroDuration(), kKeyWait));
    if (key == kNoKey) continue;
    redraw = true;
    if (key == 'q' || key == 'Q') break;
    if (key == 's' || key == 'S') {
      state.sort = top::NextSortKey(state.sort);
    } else if (key == 'p' || key == 'P' || key == ' ') {
      state.paused = !state.paused;
    } else if ((key == 't' || key == 'T') && views.size() > 1) {
      // All targets, the first alone, the next, ..., all again; each target's loops from the start.
      state.target = !state.target ? 0 : *state.target + 1;
      if (*state.target >= views.size()) state.target.reset();
      state.loops = settings.loops;
    } else if (views.size() == 1 || state.target) {
      const top::TargetView& shown = views.size() == 1 ? views.front() : views[*state.target];
      state.loops = SwitchLoop(key, state.loops, shown.loop_count);
    }
  }
  return Outcome::Ok();
}

// The full-screen view on a terminal; the plain lines through a pipe, and on a terminal that
// ncurses cannot draw on (an unknown $TERM, TERM=dumb), with a line on stderr that says so.
Outcome Show(const std::function<void(const std::string&)>& print, const TopSettings& settings, Poller& poller,
             top::TopModel& model, const std::atomic<bool>& stop) {
  if (isatty(STDOUT_FILENO) == 0 || isatty(STDIN_FILENO) == 0) return RunPlain(print, settings, poller, model, stop);
  absl::StatusOr<std::unique_ptr<TopScreen>> screen = TopScreen::Open();
  if (!screen.ok()) {
    std::fprintf(stderr, "brrrctl: top: %s; plain lines instead (TERM=xterm-256color, for one, has the full view)\n",
                 std::string(screen.status().message()).c_str());
    return RunPlain(print, settings, poller, model, stop);
  }
  return RunScreen(**screen, settings, poller, model, stop);
}

// The exit code of a failed poll's status (top_source.cc words the calls' outcomes so).
ExitCode ExitCodeOf(const absl::Status& status) {
  if (absl::IsUnavailable(status)) return ExitCode::kUnreachable;
  if (absl::IsUnauthenticated(status)) return ExitCode::kUnauthenticated;
  return ExitCode::kServerError;
}

// How top ends for a script: a target that answered none of the polls fails it with its error
// (kUnreachable when it could not be reached), the worst of several as for every command on
// several targets (fleet_run.h). One that answered once is ok: top rides out a restart.
Outcome Unanswered(const std::vector<std::string>& targets, const top::TopModel& model) {
  std::vector<Outcome> outcomes;
  for (const top::TargetView& view : model.View({})) {
    if (view.ever_read || view.status.ok()) {
      outcomes.push_back(Outcome::Ok());
    } else {
      outcomes.push_back({ExitCodeOf(view.status), std::string(view.status.message())});
    }
  }
  if (targets.size() == 1 && outcomes.size() == 1) return outcomes.front();
  return WorstOutcome(targets, outcomes);
}

// `top` on `targets` (one, or several: --target=A,B,C); `print` writes the plain lines.
Outcome RunTopOn(const std::vector<std::string>& targets, const CommandLine& line, bool json,
                 Interrupts& interrupts, const std::function<void(const std::string&)>& print) {
  if (json) {
    return Outcome::Usage("top has no JSON form: use `brrrctl watch --json` for figures as JSON lines");
  }
  TopSettings settings;
  if (line.given("interval")) settings.interval = absl::GetFlag(FLAGS_interval);
  if (settings.interval < kMinInterval || settings.interval > kMaxInterval) {
    return Outcome::Usage(absl::StrCat("--interval=", absl::FormatDuration(settings.interval),
                                       ": top redraws every 100ms to 1h"));
  }
  settings.count = absl::GetFlag(FLAGS_count);
  if (line.given("frames")) settings.frames = absl::GetFlag(FLAGS_frames);
  settings.loops = absl::GetFlag(FLAGS_loop).loops;

  // A client of top's own per target: it reconnects soon after the server comes back, and a
  // call that hangs holds the screen no longer than an interval (or --timeout when given).
  std::vector<std::unique_ptr<TopSource>> sources;
  for (const std::string& target : targets) {
    AdminClientOptions options{
        .target = target,
        .token_file = absl::GetFlag(FLAGS_token_file),
        .timeout = line.given("timeout") ? absl::GetFlag(FLAGS_timeout)
                                         : std::clamp(settings.interval, absl::Seconds(1), absl::Seconds(5)),
        .timeout_source = line.given("timeout") ? "--timeout" : "top's interval, 1s to 5s; --timeout sets it",
        .max_reconnect_backoff = std::clamp(settings.interval, kMinInterval, absl::Seconds(1)),
    };
    absl::StatusOr<std::unique_ptr<TopSource>> source = TopSource::Create(options);
    if (!source.ok()) return Outcome::Usage(std::string(source.status().message()));
    sources.push_back(*std::move(source));
  }
  top::TopModel model;
  Poller poller(std::move(sources), model, settings.loops);

  std::atomic<bool> stop{false};
  Interrupts::Scope scope = interrupts.OnInterrupt([&stop] { stop.store(true); });
  if (Outcome shown = Show(print, settings, poller, model, stop); !shown.ok()) return shown;
  return Unanswered(targets, model);
}

Outcome RunTop(Invocation& invocation) {
  return RunTopOn({invocation.client.target()}, invocation.line, invocation.out.json(), invocation.interrupts,
                  [&invocation](const std::string& text) { invocation.out.Text(text); });
}

Outcome RunTopFleet(FleetInvocation& invocation) {
  return RunTopOn(invocation.fleet.targets(), invocation.line, invocation.json, invocation.interrupts,
                  [&invocation](const std::string& text) { WriteOut(invocation.stream, text); });
}

}  // namespace

std::vector<Command> TopCommands() {
  return {
      Command{
          .name = "top",
          .summary = "a live view of the loops, sockets, stalls and injections (q quits)",
          .details =
              "GetStats and ListSockets every --interval, and WatchStalls. On a terminal, a full-screen\n"
              "view (ncurses), redrawn at each interval and when the terminal is resized:\n"
              "  per loop, and for all loops: UTIL (time running / (running + waiting) over the last\n"
              "  interval), CPU (the loop threads' CPU over the last interval, 100% = one core: their\n"
              "  system calls too, which UTIL counts as waiting where the backend makes them while it\n"
              "  waits, as io_uring does), READY (the ready-queue depth), CONNS, MSG/S and BYTES/S\n"
              "  (in + out) with a sparkline each of the last minute, STALLS so far, LAG P99 (the 99th\n"
              "  percentile of timer lateness) and LAST STALL (its duration and where the loop was\n"
              "  stuck: the first stack frame in the server's own code);\n"
              "  the latest stall of each loop with its innermost stack frames (--frames);\n"
              "  the injections scheduled or running, the throttles in force;\n"
              "  the sockets with the most bytes queued (then the most bytes moved), with their\n"
              "  read/write-set membership;\n"
              "  with one loop shown, every figure the loop publishes (the figure lists of\n"
              "  runtime/loop_stats.h and server/server_stats.h), counters as rates per second.\n"
              "Keys: q quit; s sort by the next column (LOOP, UTIL, CPU, READY, MSG/S, BYTES/S,\n"
              "STALLS, LAG P99; largest first); p or space pause and resume polling; left and right\n"
              "step through the loops (all, 0, 1, ...); 0-9 show that loop only; a all loops again.\n"
              "When the server cannot be reached the screen says \"unreachable: <why>\" over the last\n"
              "figures and tries again at each interval, so it picks up a server that comes back.\n"
              "A loop stuck in a task cannot list its sockets: the figures, the task running and the\n"
              "stall still show, and the sockets say why they were not read (plain: `sockets error=`).\n"
              "Several targets (--target=A,B,C or --targets_file): all are polled at once; the screen\n"
              "shows a row per target (its loops together; an unreachable one says why) and the\n"
              "total over the targets answering (sums, CPU in cores; UTIL weighted by loops; LAG P99\n"
              "the worst), then every target's stalls, injections, throttles and busiest sockets,\n"
              "each marked with its target; t shows one target's own view, then the next, then all\n"
              "again.\n"
              "Plain lines: each target's block, then a `total targets=N answering=M loops=L ...`\n"
              "line. A --loop that a target lacks ends top with exit 1, naming the target.\n"
              "Each call's deadline is --timeout when given, else the interval (at least 1s, at most 5s).\n"
              "When standard output (or input) is not a terminal, or is one that ncurses cannot draw on\n"
              "(an unknown TERM, TERM=dumb; a line on stderr says so): plain lines instead, one block per\n"
              "interval ending in an empty line, each line its kind (top, loop, sockets, socket,\n"
              "injection, throttle, stall, frame) then NAME=VALUE words:\n"
              "  brrrctl top --count=5 | grep '^loop=all'\n"
              "q, SIGINT, SIGTERM or the last of --count polls ends it. Exit 0, unless a target answered\n"
              "none of the polls: then 3 when it could not be reached (its error's exit code otherwise);\n"
              "with several targets, the worst of theirs, as for every command on several targets. A\n"
              "target that answered once and went away later does not count: top rides out a restart.",
          .flags = {{"interval", "DURATION", "time between polls: 100ms to 1h (default 1s)"},
                    {"count", "N", "stop after N polls (default 0: until q or interrupted)"},
                    {"loop", "N[,N...]", "show only these loops at first (default: every loop)"},
                    {"frames", "N", "stack frames shown per stall (default 5; 0: none)"}},
          .run = RunTop,
          .run_fleet = RunTopFleet,
      },
  };
}

}  // namespace brrr::control
