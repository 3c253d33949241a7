#include "control/brrrctl/top_model.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace brrr::control::top {
namespace {

namespace admin = brrr::admin::v1;

constexpr int64_t kAllLoops = -1;

bool Wanted(const std::vector<uint32_t>& loops, uint32_t loop) {
  return loops.empty() || std::find(loops.begin(), loops.end(), loop) != loops.end();
}

// The value a row is sorted by; larger first.
double SortValue(const LoopRow& row, SortKey key) {
  switch (key) {
    case SortKey::kLoop: return -static_cast<double>(row.loop.value_or(0));
    case SortKey::kUtilization: return row.utilization.value_or(-1);
    case SortKey::kCpu:
      return row.cpu.value_or(-1);
    case SortKey::kReady: return static_cast<double>(row.ready_queue_depth);
    case SortKey::kMessages: return row.messages_per_second.value_or(-1);
    case SortKey::kBytes: return row.bytes_per_second.value_or(-1);
    case SortKey::kStalls: return static_cast<double>(row.stalls);
    case SortKey::kLateness: return row.lateness_p99_us;
  }
  return 0;
}

const admin::LoopStats* FindLoop(const admin::Stats& stats, uint32_t loop) {
  for (const admin::LoopStats& l : stats.loops()) {
    if (l.loop() == loop) return &l;
  }
  return nullptr;
}

template <typename Deque>
void Trim(Deque& history, absl::Time oldest) {
  while (!history.empty() && history.front().first < oldest) history.pop_front();
}

}  // namespace

SortKey NextSortKey(SortKey key) {
  switch (key) {
    case SortKey::kLoop: return SortKey::kUtilization;
    case SortKey::kUtilization:
      return SortKey::kCpu;
    case SortKey::kCpu:
      return SortKey::kReady;
    case SortKey::kReady: return SortKey::kMessages;
    case SortKey::kMessages: return SortKey::kBytes;
    case SortKey::kBytes: return SortKey::kStalls;
    case SortKey::kStalls: return SortKey::kLateness;
    case SortKey::kLateness: return SortKey::kLoop;
  }
  return SortKey::kLoop;
}

absl::string_view SortKeyName(SortKey key) {
  switch (key) {
    case SortKey::kLoop: return "LOOP";
    case SortKey::kUtilization: return "UTIL";
    case SortKey::kCpu:
      return "CPU";
    case SortKey::kReady: return "READY";
    case SortKey::kMessages: return "MSG/S";
    case SortKey::kBytes: return "BYTES/S";
    case SortKey::kStalls: return "STALLS";
    case SortKey::kLateness: return "LAG P99";
  }
  return "";
}

bool SortsBefore(const LoopRow& a, const LoopRow& b, SortKey key) { return SortValue(a, key) > SortValue(b, key); }

void TopModel::Add(const std::vector<TargetSnapshot>& snapshots) {
  for (const TargetSnapshot& snapshot : snapshots) {
    auto [it, added] = targets_.try_emplace(snapshot.target);
    if (added) order_.push_back(snapshot.target);
    Update(it->second, snapshot);
  }
  UpdateTotalHistory(snapshots);
}

void TopModel::UpdateTotalHistory(const std::vector<TargetSnapshot>& snapshots) {
  std::optional<absl::Time> taken;
  double messages = 0;
  double bytes = 0;
  for (const TargetSnapshot& snapshot : snapshots) {
    if (!snapshot.status.ok()) continue;
    const Target& target = targets_.at(snapshot.target);
    auto all = target.rates.find(kAllLoops);
    if (all == target.rates.end() || !all->second.messages_per_second) continue;
    messages += *all->second.messages_per_second;
    bytes += all->second.bytes_per_second.value_or(0);
    taken = std::max(taken.value_or(snapshot.taken), snapshot.taken);
  }
  if (!taken) return;
  total_messages_history_.emplace_back(*taken, messages);
  total_bytes_history_.emplace_back(*taken, bytes);
  Trim(total_messages_history_, *taken - history_);
  Trim(total_bytes_history_, *taken - history_);
}

FleetTotal TopModel::Total() const {
  FleetTotal total;
  total.targets = order_.size();
  LoopRow& row = total.row;
  double weighted_utilization = 0;
  uint32_t utilization_loops = 0;
  std::optional<absl::Time> latest_stall_at;
  for (const std::string& name : order_) {
    const Target& target = targets_.at(name);
    if (!target.status.ok() || !target.ever_read) continue;
    ++total.answering;
    const admin::Stats& stats = target.last_good.stats;
    const uint32_t loops = static_cast<uint32_t>(stats.loops_size());
    total.loop_count += loops;
    row.ready_queue_depth += stats.total().ready_queue_depth();
    row.connections += stats.total().connections_active();
    row.stalls += stats.total().stalls();
    row.lateness_p99_us = std::max(row.lateness_p99_us, stats.total().timer_lateness().p99_us());
    if (auto all = target.rates.find(kAllLoops); all != target.rates.end()) {
      const Rates& rates = all->second;
      if (rates.utilization) {
        weighted_utilization += *rates.utilization * loops;
        utilization_loops += loops;
      }
      if (rates.cpu) row.cpu = row.cpu.value_or(0) + *rates.cpu;
      if (rates.messages_per_second) row.messages_per_second = row.messages_per_second.value_or(0) + *rates.messages_per_second;
      if (rates.bytes_per_second) row.bytes_per_second = row.bytes_per_second.value_or(0) + *rates.bytes_per_second;
    }
    for (const auto& [loop, stall] : target.last_good.latest_stalls) {
      // Servers' uptimes differ: when it was detected, on this process's clock.
      absl::Time at = target.last_good.taken - absl::Seconds(stats.uptime_seconds() - stall.detected_at_uptime_seconds());
      if (!latest_stall_at || at > *latest_stall_at) {
        latest_stall_at = at;
        row.latest_stall = stall;
        total.latest_stall_target = name;
      }
    }
  }
  if (utilization_loops > 0) row.utilization = weighted_utilization / utilization_loops;
  row.messages_history.assign(total_messages_history_.begin(), total_messages_history_.end());
  row.bytes_history.assign(total_bytes_history_.begin(), total_bytes_history_.end());
  return total;
}

void TopModel::Update(Target& target, const TargetSnapshot& snapshot) {
  target.status = snapshot.status;
  target.last_taken = snapshot.taken;
  if (!snapshot.status.ok()) return;
  const admin::Stats& now = snapshot.stats;
  const admin::Stats* before = target.ever_read ? &target.last_good.stats : nullptr;
  double seconds = before != nullptr ? now.uptime_seconds() - before->uptime_seconds() : 0;
  // Another server (restarted), or another shape: what came before says nothing about now.
  if (before != nullptr && (seconds < 0 || before->loops_size() != now.loops_size() ||
                            now.total().tasks_run() < before->total().tasks_run())) {
    target.rates.clear();
    before = nullptr;
  }
  if (before != nullptr && seconds > 0) {
    target.previous = *before;
    target.previous_seconds = seconds;
  } else {
    target.previous.reset();
  }
  auto update = [&](int64_t key, const admin::LoopStats& n, const admin::LoopStats* b) {
    Rates& rates = target.rates[key];
    if (b == nullptr || seconds <= 0) return;
    double running = n.running_seconds() - b->running_seconds();
    double busy = running + (n.waiting_seconds() - b->waiting_seconds());
    rates.utilization = busy > 0 ? std::optional<double>(std::clamp(running / busy, 0.0, 1.0)) : std::nullopt;
    const double cpu = n.cpu_seconds() - b->cpu_seconds();
    rates.cpu = cpu >= 0 ? std::optional<double>(cpu / seconds) : std::nullopt;
    auto per_second = [seconds](uint64_t a, uint64_t b) {
      return a >= b ? static_cast<double>(a - b) / seconds : 0.0;
    };
    rates.messages_per_second = per_second(n.messages_in() + n.messages_out(), b->messages_in() + b->messages_out());
    rates.bytes_per_second = per_second(n.bytes_in() + n.bytes_out(), b->bytes_in() + b->bytes_out());
    rates.messages_history.emplace_back(snapshot.taken, *rates.messages_per_second);
    rates.bytes_history.emplace_back(snapshot.taken, *rates.bytes_per_second);
    Trim(rates.messages_history, snapshot.taken - history_);
    Trim(rates.bytes_history, snapshot.taken - history_);
  };
  for (const admin::LoopStats& loop : now.loops()) {
    update(loop.loop(), loop, before != nullptr ? FindLoop(*before, loop.loop()) : nullptr);
  }
  update(kAllLoops, now.total(), before != nullptr ? &before->total() : nullptr);
  target.last_good = snapshot;
  target.ever_read = true;
}

LoopRow TopModel::Row(const Target& target, const admin::LoopStats& stats, int64_t key) const {
  LoopRow row;
  if (key != kAllLoops) row.loop = static_cast<uint32_t>(key);
  row.ready_queue_depth = stats.ready_queue_depth();
  row.connections = stats.connections_active();
  row.stalls = stats.stalls();
  row.lateness_p99_us = stats.timer_lateness().p99_us();
  row.current_task = stats.current_task();
  row.current_task_running_ms = stats.current_task_running_ms();
  const admin::LoopStats* before = nullptr;
  if (target.previous.has_value()) {
    before = key == kAllLoops ? &target.previous->total() : FindLoop(*target.previous, static_cast<uint32_t>(key));
  }
  row.figures = FigureCells(stats, before, target.previous_seconds);
  if (auto it = target.rates.find(key); it != target.rates.end()) {
    const Rates& rates = it->second;
    row.utilization = rates.utilization;
    row.cpu = rates.cpu;
    row.messages_per_second = rates.messages_per_second;
    row.bytes_per_second = rates.bytes_per_second;
    row.messages_history.assign(rates.messages_history.begin(), rates.messages_history.end());
    row.bytes_history.assign(rates.bytes_history.begin(), rates.bytes_history.end());
  }
  const auto& stalls = target.last_good.latest_stalls;
  if (key != kAllLoops) {
    if (auto it = stalls.find(static_cast<uint32_t>(key)); it != stalls.end()) row.latest_stall = it->second;
  } else {
    for (const auto& [loop, stall] : stalls) {
      if (!row.latest_stall || stall.detected_at_uptime_seconds() > row.latest_stall->detected_at_uptime_seconds()) {
        row.latest_stall = stall;
      }
    }
  }
  return row;
}

std::vector<TargetView> TopModel::View(const ViewOptions& options) const {
  std::vector<TargetView> views;
  for (const std::string& name : order_) {
    const Target& target = targets_.at(name);
    TargetView view;
    view.target = name;
    view.status = target.status;
    view.ever_read = target.ever_read;
    if (!target.ever_read) {
      view.taken = target.last_taken;
      views.push_back(std::move(view));
      continue;
    }
    const TargetSnapshot& snapshot = target.last_good;
    const admin::Stats& stats = snapshot.stats;
    view.taken = snapshot.taken;
    view.uptime_seconds = stats.uptime_seconds();
    view.draining = stats.draining();
    view.loop_count = static_cast<uint32_t>(stats.loops_size());
    for (const admin::LoopStats& loop : stats.loops()) {
      if (Wanted(options.loops, loop.loop())) view.loops.push_back(Row(target, loop, loop.loop()));
    }
    std::stable_sort(view.loops.begin(), view.loops.end(),
                     [&options](const LoopRow& a, const LoopRow& b) { return SortsBefore(a, b, options.sort); });
    view.all = Row(target, stats.total(), kAllLoops);

    for (const admin::SocketInfo& socket : snapshot.sockets) {
      if (Wanted(options.loops, socket.loop())) view.busiest_sockets.push_back(socket);
    }
    std::stable_sort(view.busiest_sockets.begin(), view.busiest_sockets.end(),
                     [](const admin::SocketInfo& a, const admin::SocketInfo& b) {
                       if (a.bytes_queued() != b.bytes_queued()) return a.bytes_queued() > b.bytes_queued();
                       return a.bytes_in() + a.bytes_out() > b.bytes_in() + b.bytes_out();
                     });
    if (view.busiest_sockets.size() > options.max_sockets) view.busiest_sockets.resize(options.max_sockets);
    view.sockets_matched = snapshot.sockets_matched;
    view.sockets_status = snapshot.sockets_status;
    view.injections.assign(stats.injections().begin(), stats.injections().end());
    view.throttle = snapshot.throttle;
    for (const auto& [loop, stall] : snapshot.latest_stalls) {
      if (Wanted(options.loops, loop)) view.stalls.push_back(stall);
    }
    std::stable_sort(view.stalls.begin(), view.stalls.end(), [](const admin::Stall& a, const admin::Stall& b) {
      return a.detected_at_uptime_seconds() > b.detected_at_uptime_seconds();
    });
    views.push_back(std::move(view));
  }
  return views;
}

std::vector<int> SparkLevels(const std::vector<std::pair<absl::Time, double>>& history, absl::Time now,
                             absl::Duration window, size_t width) {
  std::vector<int> levels(width, -1);
  if (width == 0 || window <= absl::ZeroDuration()) return levels;
  std::vector<double> peak(width, -1);
  double largest = 0;
  for (const auto& [when, rate] : history) {
    absl::Duration age = now - when;
    if (age < absl::ZeroDuration() || age >= window) continue;
    // Column width - 1 holds the newest moment, column 0 the oldest.
    size_t back = static_cast<size_t>(absl::FDivDuration(age, window) * static_cast<double>(width));
    size_t column = width - 1 - std::min(back, width - 1);
    peak[column] = std::max(peak[column], rate);
    largest = std::max(largest, rate);
  }
  for (size_t i = 0; i < width; ++i) {
    if (peak[i] < 0) continue;
    levels[i] = largest <= 0 ? 0 : static_cast<int>(std::ceil(peak[i] / largest * 7));
  }
  return levels;
}

std::string Sparkline(const std::vector<int>& levels, bool unicode) {
  static constexpr const char* kBlocks[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                            "\u2585", "\u2586", "\u2587", "\u2588"};
  static constexpr char kAscii[] = "_.,-=+*#";
  std::string line;
  for (int level : levels) {
    if (level < 0) {
      line += ' ';
    } else {
      level = std::min(level, 7);
      if (unicode) {
        line += kBlocks[level];
      } else {
        line += kAscii[level];
      }
    }
  }
  return line;
}

std::string FrameFunction(absl::string_view frame) {
  size_t open = frame.rfind(" (");
  if (open != absl::string_view::npos && absl::EndsWith(frame, ")")) frame = frame.substr(0, open);
  return absl::StrReplaceAll(frame, {{"(anonymous namespace)::", ""}});
}

std::vector<std::string> StallFrames(const admin::Stall& stall) {
  if (stall.samples().empty()) return {};
  const admin::StallSample& newest = stall.samples(stall.samples_size() - 1);
  return {newest.frames().begin(), newest.frames().end()};
}

std::string StallWhere(const admin::Stall& stall) {
  std::vector<std::string> frames = StallFrames(stall);
  if (frames.empty()) return "";
  for (const std::string& frame : frames) {
    // "function (object+0xoffset)": the object names the file the code is in.
    size_t open = frame.rfind(" (");
    absl::string_view object = open == std::string::npos ? "" : absl::string_view(frame).substr(open + 2);
    if (object.empty() || absl::StrContains(object, ".so")) continue;
    // A frame the symbolizer could not name ("?? (brrr-echo+0x2d5f0)"): in the program's file
    // but not its own code, such as a PLT stub, the trampoline into a shared library's function
    // (std::chrono::steady_clock::now@plt), which a sample of a loop spinning on the clock hits.
    if (absl::StartsWith(frame, "??")) continue;
    // The standard library's (and the compiler's) code instantiated in the program, also when
    // the symbolizer could not demangle its name (_ZNSt6chrono..., _ZN9__gnu_cxx...).
    if (absl::StartsWith(frame, "std::") || absl::StartsWith(frame, "__")) continue;
    if (absl::StartsWith(frame, "_ZSt") || absl::StartsWith(frame, "_ZNSt") || absl::StartsWith(frame, "_ZNKSt") ||
        absl::StartsWith(frame, "_ZN9__gnu_cxx") || absl::StartsWith(frame, "_ZNK9__gnu_cxx")) {
      continue;
    }
    return frame;
  }
  return frames.front();
}

}  // namespace brrr::control::top
