// top_model.h: what `brrrctl top` shows, as data: polls of the admin plane go in, per-loop rows
// come out (utilization, ready queue, rates, the last minute of rates for sparklines, stalls,
// loop lag), with the busiest sockets, the injections, the throttles and the latest stalls.
// No terminal and no gRPC here: the screen (top_screen.h) and the plain lines (top_lines.h)
// draw a view; commands_top.cc polls (top_source.h) and feeds the model.
//
//   TopModel model;
//   model.Add({source.Poll()});                 // once per tick, one snapshot per target
//   for (const TargetView& t : model.View({.sort = SortKey::kBytes})) ...
//
// Several targets: Add takes one snapshot per target, polled together; each target keeps its
// own history, keyed by its name, View returns one TargetView each and Total the fleet's total
// (with a history of its own, the sums at each poll).
//
// Rates are per second of the server's own clock (Stats.uptime_seconds) between two polls; a
// counter that goes back (the server restarted) starts the target's history afresh.
//
// Threads: an ordinary value; one thread at a time.
#ifndef BRRR_CONTROL_TOP_MODEL_H_
#define BRRR_CONTROL_TOP_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "brrr/admin/v1/admin.pb.h"
#include "control/brrrctl/top_figures.h"

namespace brrr::control::top {

// What one poll of one target read.
struct TargetSnapshot {
  std::string target;
  // When the poll finished (this process's clock): the sparklines' time axis.
  absl::Time taken;
  // Not OK when the target could not be read; the fields below are then empty.
  absl::Status status;
  brrr::admin::v1::Stats stats;
  // ListSockets: the sockets read (up to its limit) and how many there are.
  std::vector<brrr::admin::v1::SocketInfo> sockets;
  uint64_t sockets_matched = 0;
  // Not OK when GetStats answered and ListSockets did not (it runs on every loop, and a loop
  // stuck in a task does not answer): the sockets are then empty, the rest is read.
  absl::Status sockets_status;
  // The latest stall of each loop (WatchStalls), a stall still running included.
  std::map<uint32_t, brrr::admin::v1::Stall> latest_stalls;
  // The throttles in force, as `brrrctl throttle` words them.
  std::string throttle;
};

// The column rows are sorted by (largest first, except the loop number).
enum class SortKey { kLoop, kUtilization, kCpu, kReady, kMessages, kBytes, kStalls, kLateness };
// The next key, for the sort key; after the last comes the first.
SortKey NextSortKey(SortKey key);
// Its column's name as the screen shows it: "LOOP", "UTIL", "READY", "MSG/S", ...
absl::string_view SortKeyName(SortKey key);

// One loop of one target, or all of a target's loops together (loop unset).
struct LoopRow {
  std::optional<uint32_t> loop;
  // The share of the last interval spent running tasks, 0 to 1 (running / (running +
  // waiting)); unset until two polls have been read.
  std::optional<double> utilization;
  // CPU over the last interval, in cores (1: one core all the time): the loop thread's (or the
  // loops', or the targets' loops') user and system time, its system calls included, which
  // utilization leaves out where the backend makes them while it waits (io_uring); unset until
  // two polls have been read.
  std::optional<double> cpu;
  uint64_t ready_queue_depth = 0;
  uint64_t connections = 0;
  // Messages and bytes, in plus out, per second over the last interval; unset until two polls.
  std::optional<double> messages_per_second;
  std::optional<double> bytes_per_second;
  // The same rates over the history window, as (when, rate), oldest first.
  std::vector<std::pair<absl::Time, double>> messages_history;
  std::vector<std::pair<absl::Time, double>> bytes_history;
  uint64_t stalls = 0;
  double lateness_p99_us = 0;
  // The task running now ("" while the loop waits) and for how long.
  std::string current_task;
  double current_task_running_ms = 0;
  // The loop's latest stall (for the row of all loops: the newest of any loop).
  std::optional<brrr::admin::v1::Stall> latest_stall;
  // Every figure of the lists (top_figures.h).
  std::vector<FigureCell> figures;
};

// One target, as shown.
struct TargetView {
  std::string target;
  absl::Status status;  // not OK: unreachable, and why; the rest is the last good read, if any
  bool ever_read = false;
  absl::Time taken;     // of the snapshot shown
  double uptime_seconds = 0;
  bool draining = false;
  std::vector<LoopRow> loops;  // the loops asked for, sorted
  LoopRow all;                 // every loop of the target together
  // The sockets of the loops asked for, most bytes queued first (then most bytes moved).
  std::vector<brrr::admin::v1::SocketInfo> busiest_sockets;
  uint64_t sockets_matched = 0;
  absl::Status sockets_status;  // not OK: the sockets were not read this time, and why
  std::vector<brrr::admin::v1::Injection> injections;
  std::string throttle;
  // The latest stall of each loop asked for, newest first.
  std::vector<brrr::admin::v1::Stall> stalls;
  uint32_t loop_count = 0;
};

// Every target together: the total over the targets that answered the latest poll.
struct FleetTotal {
  size_t targets = 0;
  size_t answering = 0;
  uint32_t loop_count = 0;  // of the targets answering
  // Sums of the ready queues, connections, stalls and rates (rates unset until a target
  // answering has them); utilization: the answering targets' weighted by their loop counts;
  // lag p99: the worst target's; the latest stall: the one detected last (on this process's
  // clock); the history: the rate sums at each poll. No figures.
  LoopRow row;
  // The target whose stall is row.latest_stall.
  std::string latest_stall_target;
};

// Whether `a` is shown above `b` when sorted by `key` (largest first; by loop number, smallest
// first; rows that tie keep their order in a stable sort).
bool SortsBefore(const LoopRow& a, const LoopRow& b, SortKey key);

struct ViewOptions {
  SortKey sort = SortKey::kLoop;
  // Only these loops (rows, sockets, stalls); empty: every loop.
  std::vector<uint32_t> loops;
  size_t max_sockets = 10;
};

class TopModel {
 public:
  // `history`: how far back the rate history goes (the sparklines' width in time).
  explicit TopModel(absl::Duration history = absl::Minutes(1)) : history_(history) {}

  // One poll: a snapshot per target. A snapshot that failed keeps the target's last good
  // figures on show, marked with its status.
  void Add(const std::vector<TargetSnapshot>& snapshots);

  // The targets in the order first added.
  std::vector<TargetView> View(const ViewOptions& options) const;

  // The targets together, as of the latest poll.
  FleetTotal Total() const;

  absl::Duration history() const { return history_; }

 private:
  struct Rates {
    std::optional<double> utilization;
    std::optional<double> cpu;
    std::optional<double> messages_per_second;
    std::optional<double> bytes_per_second;
    std::deque<std::pair<absl::Time, double>> messages_history;
    std::deque<std::pair<absl::Time, double>> bytes_history;
  };
  struct Target {
    TargetSnapshot last_good;
    // The good snapshot before last_good, and the server seconds between them; unset when
    // there is none to take rates from.
    std::optional<brrr::admin::v1::Stats> previous;
    double previous_seconds = 0;
    bool ever_read = false;
    absl::Status status;
    absl::Time last_taken;
    std::map<int64_t, Rates> rates;  // by loop; -1: all loops
  };

  void Update(Target& target, const TargetSnapshot& snapshot);
  LoopRow Row(const Target& target, const brrr::admin::v1::LoopStats& stats, int64_t key) const;

  void UpdateTotalHistory(const std::vector<TargetSnapshot>& snapshots);

  absl::Duration history_;
  // The total's rates at each poll that had rates, oldest first.
  std::deque<std::pair<absl::Time, double>> total_messages_history_;
  std::deque<std::pair<absl::Time, double>> total_bytes_history_;
  std::vector<std::string> order_;
  std::map<std::string, Target> targets_;
};

// A sparkline's levels, one per column, `width` columns covering [now - window, now] (the
// newest at the right): each column holds the largest rate that fell in it, scaled to the
// largest of all, 0 (nothing) to 7 (the largest); -1 for a column without a sample.
std::vector<int> SparkLevels(const std::vector<std::pair<absl::Time, double>>& history, absl::Time now,
                             absl::Duration window, size_t width);
// The levels drawn: Unicode blocks (one column each) or, when `unicode` is false, ASCII.
std::string Sparkline(const std::vector<int>& levels, bool unicode);

// Where a stall's loop was stuck: the newest sample's first frame in the program's own code
// (not in a shared library such as libc or the vDSO, not a frame the symbolizer could not name
// such as a PLT stub, and not the standard library's templates compiled into the program, such
// as std::atomic<>::load() in an unoptimized build, demangled or not), or its first frame; ""
// without frames.
std::string StallWhere(const brrr::admin::v1::Stall& stall);
// A frame without its object and offset, and without "(anonymous namespace)::", to fit a
// column: "brrr::control::InjectedBlockingSpin()".
std::string FrameFunction(absl::string_view frame);
// The newest sample's frames, innermost first (empty when the stack was not sampled).
std::vector<std::string> StallFrames(const brrr::admin::v1::Stall& stall);

}  // namespace brrr::control::top

#endif  // BRRR_CONTROL_TOP_MODEL_H_
