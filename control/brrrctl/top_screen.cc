#include "control/brrrctl/top_screen.h"

#include <curses.h>
#include <langinfo.h>
#include <unistd.h>

#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "control/brrrctl/cli_values.h"
#include "control/brrrctl/message_text.h"
#include "control/brrrctl/top_text.h"

namespace brrr::control {
namespace {

namespace admin = brrr::admin::v1;
using top::LoopRow;
using top::SortKey;
using top::TargetView;

// Writes `text` at (y, x), cut at the right edge; returns the column after it. Text is ASCII
// here (figures, names, frames): one byte, one column.
int Put(int y, int x, absl::string_view text, int attributes = A_NORMAL) {
  if (y < 0 || y >= LINES || x >= COLS) return x;
  int room = COLS - x;
  int n = std::min<int>(room, static_cast<int>(text.size()));
  attron(attributes);
  mvaddnstr(y, x, text.data(), n);
  attroff(attributes);
  return x + n;
}

std::string PadLeft(absl::string_view text, size_t width) {
  return text.size() >= width ? std::string(text) : absl::StrCat(std::string(width - text.size(), ' '), text);
}

std::string LatenessText(double us) {
  if (us < 1000) return absl::StrFormat("%.0fus", us);
  if (us < 1e6) return absl::StrFormat("%.1fms", us / 1000);
  return absl::StrFormat("%.1fs", us / 1e6);
}

// The loop table's columns: name, width (right-aligned), the sort key it shows.
struct Column {
  const char* title;
  int width;
  SortKey key;
  bool sorts = true;  // false: no sort key shows this column
};
// After the first column (LOOP, or TARGET with several targets).
constexpr Column kLeft[] = {{"UTIL", 5, SortKey::kUtilization},
                            {"CPU", 5, SortKey::kCpu},
                            {"READY", 6, SortKey::kReady},
                            {"CONNS", 6, SortKey::kLoop, false},
                            {"MSG/S", 7, SortKey::kMessages}};
constexpr Column kMiddle = {"BYTES/S", 8, SortKey::kBytes};
constexpr Column kRight[] = {{"STALLS", 6, SortKey::kStalls}, {"LAG P99", 8, SortKey::kLateness}};
// Columns taken by everything but the first column, the two sparklines and the last stall's
// column: widths, then one space each.
constexpr int kFixedColumns = 5 + 5 + 6 + 6 + 7 + 8 + 6 + 8 + 11;
constexpr int kLastStallColumns = 34;
// The first column: a loop's number, or (several targets) a target's address.
constexpr int kLoopColumn = 4;
constexpr int kTargetColumn = 21;

int SparkWidth(int first_column) {
  return std::clamp((COLS - first_column - kFixedColumns - kLastStallColumns) / 2, 8, 40);
}

std::string PadRight(absl::string_view text, size_t width) {
  return text.size() >= width ? std::string(text) : absl::StrCat(text, std::string(width - text.size(), ' '));
}

// A figure's name cut to `width`, keeping a counter's "/s" (the cut name of a rate would read
// as a level's).
std::string FigureName(const std::string& name, size_t width) {
  if (name.size() <= width) return name;
  return absl::EndsWith(name, "/s") && width > 2 ? absl::StrCat(name.substr(0, width - 2), "/s")
                                                 : name.substr(0, width);
}

class Layout {
 public:
  Layout(const TopScreenState& state, bool unicode) : state_(state), unicode_(unicode) {}

  // One target (or several, one after another), its loops a row each.
  void Draw(const std::vector<TargetView>& views) {
    for (const TargetView& view : views) {
      if (y_ >= Bottom()) break;
      Title(view);
      if (!view.ever_read) continue;
      Loops(view);
      Stalls(view);
      Injections(view);
      Sockets(view);
    }
    Keys(state_.target.has_value(), false);
  }

  // Several targets: a row per target and the fleet's total, then every target's stalls,
  // injections, throttles and busiest sockets, each marked with its target.
  void DrawFleet(const std::vector<TargetView>& views, const top::FleetTotal& total) {
    FleetTitle(total);
    FleetRows(views, total);
    for (const TargetView& view : views) {
      if (!view.ever_read) continue;
      Stalls(view, Mark(view));
    }
    if (y_ + 1 < Bottom()) ++y_;
    if (y_ < Bottom()) Put(y_++, 0, "INJECTIONS AND THROTTLES", A_BOLD);
    for (const TargetView& view : views) {
      if (!view.ever_read || y_ >= Bottom()) continue;
      for (const admin::Injection& i : view.injections) {
        if (y_ < Bottom()) Put(y_++, 1, absl::StrCat(Mark(view), top::InjectionText(i)));
      }
      if (y_ < Bottom() && !view.throttle.empty()) Put(y_++, 1, absl::StrCat(Mark(view), "throttle: ", view.throttle));
    }
    FleetSockets(views);
    Keys(true, true);
  }

 private:
  int Bottom() const { return LINES - 1; }  // the keys' line

  void Title(const TargetView& view) {
    std::string title = absl::StrCat(" brrrctl top  ", view.target);
    if (view.ever_read) {
      absl::StrAppend(&title, "  up ", FormatMilliseconds(std::floor(view.uptime_seconds) * 1000), "  ",
                      view.loop_count, view.loop_count == 1 ? " loop" : " loops",
                      view.draining ? "  DRAINING" : "");
    }
    absl::StrAppend(&title, "  every ", absl::FormatDuration(state_.interval), "  sort: ", top::SortKeyName(state_.sort),
                    "  loops: ", state_.loops.empty() ? "all" : absl::StrJoin(state_.loops, ","));
    TitleBar(title);
    if (!view.status.ok()) {
      Put(y_++, 0, top::StatusText(view.status), A_BOLD);
      Put(y_++, 0,
          absl::StrCat(view.ever_read ? absl::StrCat("the figures below are from ",
                                                     absl::FormatTime("%H:%M:%S", view.taken, absl::LocalTimeZone()),
                                                     "; ")
                                      : "",
                       "trying again every ", absl::FormatDuration(state_.interval)));
    }
  }

  // The bar at the top: `title` on the left, the time of the latest poll (or PAUSED) on the right.
  void TitleBar(const std::string& title) {
    // A screen that stopped moving shows when it was polled last.
    std::string right =
        state_.paused ? "PAUSED " : absl::StrCat(absl::FormatTime("%H:%M:%S", state_.now, absl::LocalTimeZone()), " ");
    attron(A_REVERSE);
    mvhline(y_, 0, ' ', COLS);
    attroff(A_REVERSE);
    Put(y_, 0, title, A_REVERSE | A_BOLD);
    Put(y_, std::max<int>(static_cast<int>(title.size()) + 1, COLS - static_cast<int>(right.size())), right,
        A_REVERSE | A_BOLD);
    ++y_;
  }

  void FleetTitle(const top::FleetTotal& total) {
    TitleBar(absl::StrCat(" brrrctl top  ", total.targets, " targets, ", total.answering, " answering, ",
                          total.loop_count, total.loop_count == 1 ? " loop" : " loops", "  every ",
                          absl::FormatDuration(state_.interval), "  sort: ",
                          state_.sort == SortKey::kLoop ? "TARGET" : top::SortKeyName(state_.sort)));
  }

  // The header of the rows' table; `first`: the first column's title and width.
  void Header(const Column& first, int spark) {
    int x = 0;
    auto header = [&](const Column& c, bool right_aligned = true) {
      std::string title = right_aligned ? PadLeft(c.title, c.width) : PadRight(c.title, c.width);
      x = Put(y_, x, title, A_BOLD | (c.sorts && c.key == state_.sort ? A_REVERSE : 0));
      x = Put(y_, x, " ");
    };
    // Each sparkline follows its rate's column: "last 1m" says what it spans.
    const std::string spans = absl::StrFormat("%-*s ", spark, absl::StrCat("last ", absl::FormatDuration(state_.history)));
    header(first, first.width == kLoopColumn);
    for (const Column& c : kLeft) header(c);
    x = Put(y_, x, spans, A_BOLD);
    header(kMiddle);
    x = Put(y_, x, spans, A_BOLD);
    for (const Column& c : kRight) header(c);
    Put(y_, x, "LAST STALL", A_BOLD);
    ++y_;
  }

  void Loops(const TargetView& view) {
    if (y_ >= Bottom()) return;
    const int spark = SparkWidth(kLoopColumn);
    Header({"LOOP", kLoopColumn, SortKey::kLoop}, spark);
    for (const LoopRow& row : view.loops) {
      if (y_ >= Bottom()) return;
      Row(row, PadLeft(absl::StrCat(*row.loop), kLoopColumn), spark, A_NORMAL);
    }
    if (y_ < Bottom()) Row(view.all, PadLeft("all", kLoopColumn), spark, A_BOLD);
    if (state_.loops.size() == 1 && view.loops.size() == 1) Figures(view.loops.front());
  }

  // A row per target (its loops together), sorted by the sort key, then the total.
  void FleetRows(const std::vector<TargetView>& views, const top::FleetTotal& total) {
    if (y_ >= Bottom()) return;
    const int spark = SparkWidth(kTargetColumn);
    Header({"TARGET", kTargetColumn, SortKey::kLoop}, spark);
    std::vector<const TargetView*> sorted;
    for (const TargetView& view : views) sorted.push_back(&view);
    std::stable_sort(sorted.begin(), sorted.end(), [this](const TargetView* a, const TargetView* b) {
      // Unreachable targets last: they have no figures to sort by.
      if (a->status.ok() != b->status.ok()) return a->status.ok();
      return top::SortsBefore(a->all, b->all, state_.sort);
    });
    for (const TargetView* view : sorted) {
      if (y_ >= Bottom()) return;
      const std::string label = PadRight(view->target, kTargetColumn);
      if (!view->status.ok()) {
        Put(y_++, 0, absl::StrCat(label, " ", top::StatusText(view->status)), A_BOLD);
        continue;
      }
      Row(view->all, label, spark, view->draining ? A_DIM : A_NORMAL);
    }
    if (y_ < Bottom()) Row(total.row, PadRight("total", kTargetColumn), spark, A_BOLD);
  }

  // One loop shown: every figure of the lists, in a grid, list order down the columns.
  void Figures(const LoopRow& row) {
    constexpr int kCell = 40;
    if (y_ + 2 >= Bottom() || row.figures.empty()) return;
    ++y_;
    Put(y_++, 0, absl::StrCat("FIGURES of loop ", *row.loop, " (name/s: a counter's rate over the last interval)"), A_BOLD);
    const int columns = std::max(1, (COLS + 2) / kCell);
    const int rows = (static_cast<int>(row.figures.size()) + columns - 1) / columns;
    const int shown = std::min(rows, std::max(0, Bottom() - 10 - y_));
    for (int r = 0; r < shown; ++r) {
      for (int c = 0; c < columns; ++c) {
        size_t i = static_cast<size_t>(c * rows + r);
        if (i >= row.figures.size()) break;
        const top::FigureCell& cell = row.figures[i];
        std::string value = "-";
        if (cell.value) {
          value = absl::StrContains(cell.name, "_seconds") || absl::StrContains(cell.name, "_ms")
                      ? FormatDecimal(*cell.value)
                      : FormatShort(*cell.value);
        }
        Put(y_ + r, c * kCell, absl::StrFormat("%-*s %8s", kCell - 10, FigureName(cell.name, kCell - 10), value));
      }
    }
    y_ += shown;
  }

  // A row of the table: `label` (as wide as the first column), then the row's figures.
  void Row(const LoopRow& row, const std::string& label, int spark, int attributes) {
    int x = 0;
    auto cell = [&](const std::string& text, int width) {
      x = Put(y_, x, PadLeft(text, width), attributes);
      x = Put(y_, x, " ");
    };
    auto line = [&](const std::vector<std::pair<absl::Time, double>>& history) {
      std::string drawn = top::Sparkline(top::SparkLevels(history, state_.now, state_.history, spark), unicode_);
      if (x + spark <= COLS) mvaddstr(y_, x, drawn.c_str());
      x = std::min(COLS, x + spark + 1);
    };
    cell(label, static_cast<int>(label.size()));
    cell(top::PercentText(row.utilization), 5);
    cell(top::PercentText(row.cpu), 5);
    cell(absl::StrCat(row.ready_queue_depth), 6);
    cell(absl::StrCat(row.connections), 6);
    cell(top::RateText(row.messages_per_second), 7);
    line(row.messages_history);
    cell(top::RateText(row.bytes_per_second), 8);
    line(row.bytes_history);
    cell(absl::StrCat(row.stalls), 6);
    cell(LatenessText(row.lateness_p99_us), 8);
    if (row.latest_stall) {
      // The function's end (its name) matters more than its namespaces: cut from the left.
      std::string where = top::FrameFunction(top::StallWhere(*row.latest_stall));
      std::string duration = absl::StrCat(FormatMilliseconds(row.latest_stall->duration_ms()),
                                          row.latest_stall->in_progress() ? "+ " : " ");
      int room = COLS - x - static_cast<int>(duration.size());
      if (room > 3 && static_cast<int>(where.size()) > room) {
        where = absl::StrCat("...", where.substr(where.size() - room + 3));
      }
      Put(y_, x, absl::StrCat(duration, where), attributes);
    } else {
      Put(y_, x, "-", attributes);
    }
    ++y_;
  }

  // "[127.0.0.1:5001] ": what marks a target's lines in the fleet's view.
  static std::string Mark(const TargetView& view) { return absl::StrCat("[", view.target, "] "); }

  // `mark`: before each stall's title (the fleet's view: whose stall it is).
  void Stalls(const TargetView& view, const std::string& mark = "") {
    if (view.stalls.empty() || y_ + 2 >= Bottom()) return;
    // Leave room for the injections, the throttles and a few sockets.
    const int last = std::max(y_ + 2, Bottom() - 8);
    ++y_;
    Put(y_++, 0, absl::StrCat(mark, "LATEST STALLS (per loop, newest first; frames innermost first)"), A_BOLD);
    for (const admin::Stall& stall : view.stalls) {
      if (y_ >= last) return;
      Put(y_++, 1, top::StallTitle(stall));
      std::vector<std::string> frames = top::StallFrames(stall);
      if (frames.empty()) {
        if (y_ < last) Put(y_++, 3, "(no stack: the stall ended before the watchdog sampled it)");
        continue;
      }
      for (size_t n = 0; n < frames.size() && n < state_.frames && y_ < last; ++n) {
        Put(y_++, 3, absl::StrCat("#", n, " ", frames[n]));
      }
    }
  }

  void Injections(const TargetView& view) {
    if (y_ + 1 >= Bottom()) return;
    ++y_;
    if (view.injections.empty()) {
      Put(y_++, 0, "INJECTIONS: none", A_BOLD);
    } else {
      Put(y_++, 0, "INJECTIONS", A_BOLD);
      for (const admin::Injection& i : view.injections) {
        if (y_ >= Bottom()) return;
        Put(y_++, 1, top::InjectionText(i));
      }
    }
    if (y_ < Bottom() && !view.throttle.empty()) {
      int x = Put(y_, 0, "THROTTLE: ", A_BOLD);
      Put(y_++, x, view.throttle);
    }
  }

  void Sockets(const TargetView& view) {
    if (y_ + 2 >= Bottom()) return;
    ++y_;
    Put(y_++, 0,
        absl::StrCat("SOCKETS by bytes queued (", view.busiest_sockets.size(), " shown of ", view.sockets_matched, ")"),
        A_BOLD);
    if (!view.sockets_status.ok() && y_ < Bottom()) {
      Put(y_++, 1, absl::StrCat("not read: ", view.sockets_status.message()));
    }
    Put(y_++, 0, absl::StrFormat("%6s %4s %-10s %-22s %10s %12s %12s  %s", "FD", "LOOP", "KIND", "PEER", "QUEUED",
                                 "BYTES_IN", "BYTES_OUT", "SETS"),
        A_BOLD);
    for (const admin::SocketInfo& s : view.busiest_sockets) {
      if (y_ >= Bottom()) return;
      Put(y_++, 0, absl::StrFormat("%6d %4d %-10s %-22s %10d %12d %12d  %s", s.fd(), s.loop(), s.kind(),
                                   s.peer().empty() ? "-" : s.peer(), s.bytes_queued(), s.bytes_in(), s.bytes_out(),
                                   top::SetsText(s)));
    }
  }

  // Several targets: the busiest sockets of them all, with their target.
  void FleetSockets(const std::vector<TargetView>& views) {
    if (y_ + 2 >= Bottom()) return;
    std::vector<std::pair<const TargetView*, const admin::SocketInfo*>> sockets;
    uint64_t matched = 0;
    std::vector<std::string> not_read;
    for (const TargetView& view : views) {
      if (!view.ever_read) continue;
      if (!view.sockets_status.ok()) not_read.push_back(view.target);
      matched += view.sockets_matched;
      for (const admin::SocketInfo& s : view.busiest_sockets) sockets.emplace_back(&view, &s);
    }
    std::stable_sort(sockets.begin(), sockets.end(), [](const auto& a, const auto& b) {
      if (a.second->bytes_queued() != b.second->bytes_queued()) return a.second->bytes_queued() > b.second->bytes_queued();
      return a.second->bytes_in() + a.second->bytes_out() > b.second->bytes_in() + b.second->bytes_out();
    });
    ++y_;
    // The title's line and the header's, then a line per socket down to the keys' line.
    const size_t room = static_cast<size_t>(std::max(0, Bottom() - y_ - 2));
    Put(y_++, 0,
        absl::StrCat("SOCKETS by bytes queued (", std::min(sockets.size(), room), " shown of ", matched,
                     not_read.empty() ? "" : absl::StrCat("; not read from ", absl::StrJoin(not_read, ", ")), ")"),
        A_BOLD);
    Put(y_++, 0, absl::StrFormat("%-21s %6s %4s %-10s %-22s %10s %12s %12s  %s", "TARGET", "FD", "LOOP", "KIND", "PEER",
                                 "QUEUED", "BYTES_IN", "BYTES_OUT", "SETS"),
        A_BOLD);
    for (const auto& [view, s] : sockets) {
      if (y_ >= Bottom()) return;
      Put(y_++, 0, absl::StrFormat("%-21s %6d %4d %-10s %-22s %10d %12d %12d  %s", view->target, s->fd(), s->loop(),
                                   s->kind(), s->peer().empty() ? "-" : s->peer(), s->bytes_queued(), s->bytes_in(),
                                   s->bytes_out(), top::SetsText(*s)));
    }
  }

  // `fleet`: several targets; `overview`: all of them shown (loop keys apply to one target's view).
  void Keys(bool fleet, bool overview) {
    Put(LINES - 1, 0,
        absl::StrCat("q quit  s sort  p pause  ", fleet ? "t: one target, the next, all  " : "",
                     overview ? "" : "left/right 0-9 a: loops   ",
                     "MSG/S BYTES/S: in+out  UTIL: run/(run+wait)  CPU: 100% = one core"),
        A_REVERSE);
  }

  const TopScreenState& state_;
  bool unicode_;
  int y_ = 0;
};

}  // namespace

const int kKeyLeft = KEY_LEFT;
const int kKeyRight = KEY_RIGHT;
const int kKeyResize = KEY_RESIZE;
static_assert(kNoKey == ERR);

#if defined(__SANITIZE_ADDRESS__)
// ncurses's newterm allocates its "prescreen" before it looks the terminal up and keeps it when
// the type is unknown (TERM=no-such-terminal): 1.6 KiB, once, beyond our reach. LeakSanitizer
// reads this hook of the binary for its own suppressions.
extern "C" const char* __lsan_default_suppressions() { return "leak:new_prescr\n"; }
#endif

absl::StatusOr<std::unique_ptr<TopScreen>> TopScreen::Open() {
  if (isatty(STDOUT_FILENO) == 0 || isatty(STDIN_FILENO) == 0) {
    return absl::FailedPreconditionError("standard input and output must be a terminal");
  }
  // Only the character set: numbers keep the "C" locale's decimal point.
  std::setlocale(LC_CTYPE, "");
  const bool unicode = std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
  const char* term = std::getenv("TERM");
  if (term == nullptr) return absl::FailedPreconditionError("cannot draw on this terminal: TERM is not set");
  const std::string named = absl::StrCat("TERM=", term);
  ::screen* terminal = newterm(nullptr, stdout, stdin);
  if (terminal == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot draw on this terminal (", named, "): ncurses does not know it"));
  }
  set_term(terminal);
  // A terminal that cannot move the cursor (TERM=dumb) would show the screen as one long line.
  // Nothing has been drawn yet, so endwin writes no more than a carriage return.
  const char* cursor_address = tigetstr("cup");
  if (cursor_address == nullptr || cursor_address == reinterpret_cast<char*>(-1)) {
    endwin();
    delscreen(terminal);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot draw on this terminal (", named, "): it cannot move the cursor"));
  }
  cbreak();
  noecho();
  nonl();
  keypad(stdscr, TRUE);
  curs_set(0);
  return std::unique_ptr<TopScreen>(new TopScreen(terminal, unicode));
}

TopScreen::~TopScreen() {
  endwin();
  delscreen(terminal_);
}

void TopScreen::Draw(const std::vector<top::TargetView>& views, const TopScreenState& state,
                     const top::FleetTotal* total) {
  erase();
  Layout layout(state, unicode_);
  if (views.size() > 1 && state.target && *state.target < views.size()) {
    layout.Draw({views[*state.target]});
  } else if (views.size() > 1 && total != nullptr) {
    layout.DrawFleet(views, *total);
  } else {
    layout.Draw(views);
  }
  refresh();
}

int TopScreen::ReadKey(absl::Duration timeout) {
  ::timeout(static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout))));
  return getch();
}

}  // namespace brrr::control
