#include "control/brrrctl/top_text.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "control/brrrctl/cli_values.h"
#include "control/brrrctl/message_text.h"

namespace brrr::control::top {
namespace {

namespace admin = brrr::admin::v1;

// A value for a NAME=VALUE word: as is, or quoted when it has a space or a quote (or is empty).
// Quoted, it has C escapes for a double quote, a backslash and what is not printable, and
// nothing else escaped: an apostrophe stays as it is, as logfmt readers (and JSON) expect.
std::string Word(absl::string_view value) {
  if (!value.empty() && value.find_first_of(" \t\"\\=") == absl::string_view::npos &&
      value.find_first_of("\r\n") == absl::string_view::npos) {
    return std::string(value);
  }
  // CEscape escapes every apostrophe (\'), so each \' in its output is one of those.
  return absl::StrCat("\"", absl::StrReplaceAll(absl::CEscape(value), {{"\\'", "'"}}), "\"");
}

std::string Decimal(std::optional<double> value) { return value ? FormatDecimal(*value) : "-"; }

std::string KindName(admin::InjectionKind kind) {
  return absl::StrReplaceAll(absl::AsciiStrToLower(admin::InjectionKind_Name(kind)), {{"_", "-"}});
}

std::string LoopsText(const admin::Injection& injection) {
  return injection.loops().empty() ? "all" : absl::StrJoin(injection.loops(), ",");
}

// A row's figures as words: "util=0.125 cpu=0.98 ready=0 conns=10 ... lag_p99_us=52".
std::string RowFigureWords(const LoopRow& row) {
  return absl::StrCat("util=", Decimal(row.utilization), " cpu=", Decimal(row.cpu), " ready=", row.ready_queue_depth,
                      " conns=", row.connections, " msg_per_s=", Decimal(row.messages_per_second),
                      " bytes_per_s=", Decimal(row.bytes_per_second), " stalls=", row.stalls,
                      " lag_p99_us=", FormatDecimal(row.lateness_p99_us));
}

std::string WhereWord(const LoopRow& row) {
  std::string where = row.latest_stall ? StallWhere(*row.latest_stall) : "";
  return where.empty() ? "-" : Word(where);
}

void AddRowLine(std::string* text, const LoopRow& row) {
  absl::StrAppend(text, "loop=", row.loop ? absl::StrCat(*row.loop) : "all", " ", RowFigureWords(row),
                  " task=", row.current_task.empty() ? "-" : Word(row.current_task), " where=", WhereWord(row), "\n");
}

}  // namespace

std::string PercentText(std::optional<double> share) {
  return share ? absl::StrFormat("%.0f%%", *share * 100) : "-";
}

std::string RateText(std::optional<double> rate) { return rate ? FormatShort(*rate) : "-"; }

std::string SetsText(const admin::SocketInfo& socket) {
  if (socket.in_read_set() && socket.in_write_set()) return "read,write";
  if (socket.in_read_set()) return "read";
  if (socket.in_write_set()) return "write";
  return "-";
}

std::string InjectionText(const admin::Injection& i) {
  std::string text = absl::StrCat("#", i.id(), " ", KindName(i.kind()), " ", FormatMilliseconds(i.duration_ms()));
  if (i.count() != 1) absl::StrAppend(&text, " x", i.count() == 0 ? "forever" : absl::StrCat(i.count()));
  if (i.interval_ms() != 0) absl::StrAppend(&text, " every ", FormatMilliseconds(i.interval_ms()));
  absl::StrAppend(&text, " on loops ", LoopsText(i), ": ", i.runs_started(), " started, ", i.runs_finished(),
                  " finished, ", absl::AsciiStrToLower(admin::Injection::State_Name(i.state())));
  return text;
}

std::string StatusText(const absl::Status& status) {
  return absl::StrCat(absl::IsUnavailable(status) ? "unreachable: " : "error: ", status.message());
}

std::string StallTitle(const admin::Stall& stall) {
  std::string title =
      absl::StrCat("loop ", stall.loop(), " stall #", stall.sequence(), ": ", stall.task().empty() ? "-" : stall.task(),
                   " ", FormatMilliseconds(stall.duration_ms()), stall.in_progress() ? " (still running)" : "", " at ",
                   FormatMilliseconds(stall.detected_at_uptime_seconds() * 1000));
  if (stall.has_since_first_sample() && stall.since_first_sample().span_ms() > 0) {
    const admin::StallTimeSplit& t = stall.since_first_sample();
    auto share = [&](double ms) { return PercentText(ms / t.span_ms()); };
    absl::StrAppend(&title, "; since the first sample ", FormatMilliseconds(t.span_ms()), ": ", share(t.on_core_ms()),
                    " on a core, ", share(t.waiting_for_core_ms()), " waiting for one, ",
                    share(t.asleep_or_blocked_ms()), " asleep or blocked");
  }
  return title;
}

std::string PlainBlock(const std::vector<TargetView>& views, SortKey sort, uint32_t frames, const FleetTotal* total) {
  std::string text;
  for (const TargetView& view : views) {
    absl::StrAppend(&text, "top target=", Word(view.target));
    if (!view.status.ok()) {
      absl::StrAppend(&text, absl::IsUnavailable(view.status) ? " unreachable=" : " error=",
                      Word(view.status.message()), "\n");
      continue;
    }
    absl::StrAppend(&text, " uptime=", FormatDecimal(view.uptime_seconds), " loops=", view.loop_count,
                    " sort=", Word(SortKeyName(sort)), " draining=", view.draining ? "yes" : "no", "\n");
    for (const LoopRow& row : view.loops) AddRowLine(&text, row);
    AddRowLine(&text, view.all);
    if (!view.sockets_status.ok()) absl::StrAppend(&text, "sockets error=", Word(view.sockets_status.message()), "\n");
    for (const admin::SocketInfo& s : view.busiest_sockets) {
      absl::StrAppend(&text, "socket fd=", s.fd(), " loop=", s.loop(), " kind=", Word(s.kind()),
                      " peer=", s.peer().empty() ? "-" : Word(s.peer()), " queued=", s.bytes_queued(),
                      " bytes_in=", s.bytes_in(), " bytes_out=", s.bytes_out(), " sets=", SetsText(s), "\n");
    }
    for (const admin::Injection& i : view.injections) {
      absl::StrAppend(&text, "injection id=", i.id(), " kind=", KindName(i.kind()), " duration_ms=", i.duration_ms(),
                      " count=", i.count(), " interval_ms=", i.interval_ms(), " loops=", LoopsText(i),
                      " state=", admin::Injection::State_Name(i.state()), " runs=", i.runs_started(), "\n");
    }
    if (!view.throttle.empty()) absl::StrAppend(&text, "throttle summary=", Word(view.throttle), "\n");
    for (const admin::Stall& stall : view.stalls) {
      std::string where = StallWhere(stall);
      absl::StrAppend(
          &text, "stall loop=", stall.loop(), " seq=", stall.sequence(),
          " duration_ms=", FormatDecimal(stall.duration_ms()), " in_progress=", stall.in_progress() ? "yes" : "no",
          " task=", stall.task().empty() ? "-" : Word(stall.task()), " where=", where.empty() ? "-" : Word(where));
      if (stall.has_since_first_sample()) {
        const admin::StallTimeSplit& t = stall.since_first_sample();
        absl::StrAppend(&text, " since_first_sample_ms=", FormatDecimal(t.span_ms()),
                        " on_core_ms=", FormatDecimal(t.on_core_ms()),
                        " waiting_for_core_ms=", FormatDecimal(t.waiting_for_core_ms()),
                        " asleep_or_blocked_ms=", FormatDecimal(t.asleep_or_blocked_ms()));
      } else {
        absl::StrAppend(&text, " since_first_sample_ms=- on_core_ms=- waiting_for_core_ms=- asleep_or_blocked_ms=-");
      }
      absl::StrAppend(&text, "\n");
      std::vector<std::string> stack = StallFrames(stall);
      for (size_t n = 0; n < stack.size() && n < frames; ++n) {
        absl::StrAppend(&text, "frame loop=", stall.loop(), " n=", n, " at=", Word(stack[n]), "\n");
      }
    }
  }
  if (total != nullptr) {
    absl::StrAppend(&text, "total targets=", total->targets, " answering=", total->answering,
                    " loops=", total->loop_count, " ", RowFigureWords(total->row), " where=", WhereWord(total->row),
                    " stall_target=", total->latest_stall_target.empty() ? "-" : Word(total->latest_stall_target),
                    "\n");
  }
  absl::StrAppend(&text, "\n");
  return text;
}

}  // namespace brrr::control::top
