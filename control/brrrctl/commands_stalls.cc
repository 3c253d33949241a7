// Commands about stalls (tasks that hold a loop too long): stalls (a stream), stall-threshold.
#include <algorithm>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "control/admin/request_ranges.h"
#include "control/brrrctl/brrrctl_flags.h"
#include "control/brrrctl/cli_values.h"
#include "control/brrrctl/commands.h"
#include "control/brrrctl/fleet_run.h"
#include "control/brrrctl/message_text.h"
#include "control/brrrctl/text_table.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;

// The newest sample's frames, up to `limit`, indented under the stall's row.
std::string FramesText(const admin::Stall& stall, uint32_t limit) {
  if (stall.samples().empty() || limit == 0) return "";
  const admin::StallSample& newest = stall.samples(stall.samples_size() - 1);
  if (newest.frames().empty()) return "      (stack not sampled: the loop thread did not answer in time)\n";
  std::string text = absl::StrFormat("      stack at %s ms, innermost first (%d sampled):\n",
                                     FormatDecimal(newest.running_ms()), stall.samples_size());
  int shown = std::min<int>(newest.frames_size(), static_cast<int>(limit));
  for (int i = 0; i < shown; ++i) absl::StrAppendFormat(&text, "      #%d %s\n", i, newest.frames(i));
  if (shown < newest.frames_size()) {
    absl::StrAppendFormat(&text, "      ... %d more frames (--frames)\n", newest.frames_size() - shown);
  }
  return text;
}

// How the loop thread spent the stall since its first sample, indented under the stall's row;
// "" where the server did not measure it.
std::string TimeSplitText(const admin::Stall& stall) {
  if (!stall.has_since_first_sample()) return "";
  const admin::StallTimeSplit& t = stall.since_first_sample();
  return absl::StrFormat("      since the first sample %s ms: %s on a core, %s waiting for one, %s asleep or blocked\n",
                         FormatDecimal(t.span_ms()), FormatDecimal(t.on_core_ms()),
                         FormatDecimal(t.waiting_for_core_ms()), FormatDecimal(t.asleep_or_blocked_ms()));
}

Outcome RunStalls(Invocation& invocation) {
  admin::WatchStallsRequest request;
  for (uint32_t loop : absl::GetFlag(FLAGS_loop).loops) request.add_loops(loop);
  request.set_include_recent(absl::GetFlag(FLAGS_include_recent));
  request.set_include_in_progress(absl::GetFlag(FLAGS_in_progress));
  const uint32_t count = absl::GetFlag(FLAGS_count);
  const uint32_t frames = absl::GetFlag(FLAGS_frames);
  uint32_t received = 0;
  return ReadStream<admin::Stall>(
      invocation,
      [&](grpc::ClientContext* context) { return invocation.client.admin().WatchStalls(context, request); },
      [&](const admin::Stall& stall) {
        std::string text;
        if (received == 0) absl::StrAppendFormat(&text, "%12s %5s %7s %12s  %s\n", "AT", "LOOP", "SEQ", "DURATION_MS", "TASK");
        std::string task = stall.task().empty() ? "-" : stall.task();
        if (stall.in_progress()) absl::StrAppend(&task, " (still running)");
        absl::StrAppendFormat(&text, "%12s %5d %7d %12s  %s\n", FormatMilliseconds(stall.detected_at_uptime_seconds() * 1000),
                              stall.loop(), stall.sequence(), FormatDecimal(stall.duration_ms()), task);
        text += TimeSplitText(stall);
        text += FramesText(stall, frames);
        invocation.out.Result(stall, text);
        ++received;
        return count == 0 || received < count;
      });
}

// The thresholds in force, from GetStats (the API has no call of its own for them).
Outcome CurrentThresholds(Invocation& invocation, const std::vector<uint32_t>& loops,
                          admin::StallThresholds* thresholds) {
  admin::Stats stats;
  Outcome outcome = invocation.client.Call([&](grpc::ClientContext* context) {
    return invocation.client.admin().GetStats(context, admin::GetStatsRequest(), &stats);
  });
  if (!outcome.ok()) return outcome;
  if (outcome = CheckLoops(loops, stats.loops_size()); !outcome.ok()) return outcome;
  KeepLoops(loops, &stats);
  for (const admin::LoopStats& loop : stats.loops()) {
    admin::StallThresholds::LoopThreshold* t = thresholds->add_loops();
    t->set_loop(loop.loop());
    t->set_threshold_ms(loop.stall_threshold_ms());
  }
  return Outcome::Ok();
}

Outcome RunStallThreshold(Invocation& invocation) {
  const std::vector<uint32_t> loops = absl::GetFlag(FLAGS_loop).loops;
  admin::StallThresholds thresholds;
  Outcome outcome;
  if (invocation.args.empty()) {
    outcome = CurrentThresholds(invocation, loops, &thresholds);
  } else {
    absl::Duration threshold;
    if (!absl::ParseDuration(invocation.args[0], &threshold) || threshold <= absl::ZeroDuration() ||
        threshold == absl::InfiniteDuration()) {
      return Outcome::Usage(absl::StrCat("stall-threshold ", invocation.args[0],
                                         ": expected a positive duration with a unit, such as 50ms or 1s"));
    }
    if (threshold < absl::Milliseconds(kMinStallThresholdMs) || threshold > absl::Milliseconds(kMaxStallThresholdMs)) {
      return Outcome::Usage(absl::StrCat("stall-threshold ", invocation.args[0], ": the threshold must be from ",
                                         absl::FormatDuration(absl::Milliseconds(kMinStallThresholdMs)), " to ",
                                         absl::FormatDuration(absl::Milliseconds(kMaxStallThresholdMs))));
    }
    admin::SetStallThresholdRequest request;
    request.set_threshold_ms(absl::ToDoubleMilliseconds(threshold));
    for (uint32_t loop : loops) request.add_loops(loop);
    outcome = invocation.client.Call([&](grpc::ClientContext* context) {
      return invocation.client.admin().SetStallThreshold(context, request, &thresholds);
    });
  }
  if (!outcome.ok()) return outcome;
  TextTable table({"LOOP", "THRESHOLD_MS"});
  table.AlignRight(0).AlignRight(1);
  for (const auto& t : thresholds.loops()) table.AddRow({absl::StrCat(t.loop()), FormatDecimal(t.threshold_ms())});
  invocation.out.Result(thresholds, table.Render());
  return Outcome::Ok();
}

}  // namespace

std::vector<Command> StallsCommands() {
  return {
      Command{
          .name = "stalls",
          .summary = "each stall as it is detected (a stream), until --count or Ctrl-C",
          .details = "WatchStalls. A stall is a task that held its loop for at least the stall threshold; it\n"
                     "is reported when that task ends, with the stack the loop's watchdog sampled while it\n"
                     "ran (the newest sample's innermost frames are shown under its row). With\n"
                     "--in_progress, also each sample while the stall lasts (one every threshold), marked\n"
                     "\"(still running)\": a loop stuck for good shows where. --count counts those too.\n"
                     "SIGINT or SIGTERM ends the stream with exit 0.",
          .flags = {{"include_recent", "", "first the recent stalls each loop remembers (up to 64 per loop)"},
                    {"in_progress", "", "also each stack sample of a stall that is still running"},
                    {"frames", "N", "stack frames shown per stall (default 8; 0: none)"},
                    {"loop", "N[,N...]", "only stalls on these loops (default: every loop)"},
                    {"count", "N", "stop after N stalls (default 0: until interrupted)"}},
          .run = RunStalls,
          .run_fleet = StreamOnEachTarget(RunStalls),
      },
      Command{
          .name = "stall-threshold",
          .arguments = "[DURATION]",
          .summary = "show the stall threshold of each loop, or set it (1ms to 60s)",
          .details = "Without DURATION: each loop's threshold (from GetStats). With it: SetStallThreshold,\n"
                     "then every loop's threshold after the change.\n"
                     "  brrrctl stall-threshold 50ms --loop=0",
          .changes_server = true,
          .max_args = 1,
          .flags = {{"loop", "N[,N...]", "the loops to show or set (default: every loop)"}},
          .run = RunStallThreshold,
          .run_fleet = OnEachTarget(RunStallThreshold),
      },
  };
}

}  // namespace brrr::control
