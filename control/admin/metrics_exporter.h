// metrics_exporter.h: the figure lists in Prometheus' terms. A prometheus-cpp Collectable
// that reads what an Administered (control/admin/administered.h) publishes, when a scrape
// asks for it: every loop figure, label and histogram (runtime/loop_stats.h), every echo
// figure (server/server_stats.h) and every admin plane figure (admin_figures.h), per loop, plus
// brrr_build_info and brrr_draining.
//
//   auto exporter = std::make_shared<MetricsExporter>(administered, admin->figures_of());
//   std::vector<prometheus::MetricFamily> families = exporter->Collect();
//   std::string text = prometheus::TextSerializer().Serialize(families);
//
// Made from the lists, so a new list entry is exported with no change here:
// - A figure F becomes brrr_F, with the unit in the name as Prometheus' naming guide asks:
//   durations (Seconds, Millis) in seconds with "_seconds", Bytes with "_bytes" (both only if
//   the name does not already say so: bytes_in is brrr_bytes_in_total), and "_total" for a
//   Counter. Counter is a Prometheus counter; Gauge, Max, Setting and Flag (0 or 1) are gauges.
//   HELP is the list's help text. One sample per loop, labelled loop="N"; the sum over loops
//   is PromQL's (sum without (loop) (...)).
// - A histogram H (a LogHistogram) becomes the Prometheus histogram brrr_H_seconds per loop,
//   with the fixed bucket bounds kHistogramBounds: every second power of two nanoseconds from
//   2^10 ns (1.024 us) to 2^34 ns (17.2 s), then +Inf. They fall on LogHistogram bucket
//   edges, so each cumulative count is exact: the samples under the bound (a sample exactly
//   on it counts in the next bucket; at nanosecond resolution that is never seen).
// - A label L (text) becomes the gauge brrr_L_info{loop="N",L="<text>"} 1, for the loops
//   where the text is not empty. Its values are task names and call sites, a set bounded by
//   the program's code (not by traffic or clients), and a loop has at most one at a time: the
//   series churn as the longest or current task changes, but their number stays small.
//
// Collect() takes each loop's snapshot once (lock-free reads: nothing costs the loops), at the
// pace of the scrapes. A loop counts a task before it files it in its bucket, and a snapshot
// counts a task not yet filed in the first bucket, so a scrape in between would see it there
// and the next one in its own: the first buckets' cumulative counts would fall by one, which
// Prometheus reads as a counter reset (a spike in rate()). MonotonicHistograms holds each count
// at the highest value exported, until the histogram catches up.
//
// Threads: Collect() from any thread, concurrently too. Ownership: borrows the Administered,
// which must outlive the exporter.
#ifndef BRRR_CONTROL_ADMIN_METRICS_EXPORTER_H_
#define BRRR_CONTROL_ADMIN_METRICS_EXPORTER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "control/admin/admin_figures.h"
#include "control/admin/administered.h"
#include "prometheus/client_metric.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "runtime/figures.h"
#include "runtime/log_histogram.h"

namespace brrr::control {

// The finite `le` bounds of every exported histogram, in log2 nanoseconds: 2^10 ns (1.024 us),
// 2^12 ns (4.096 us), ... 2^34 ns (17.18 s).
inline constexpr std::array<int, 13> kHistogramBoundsLog2Ns = {10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34};

// brrr_NAME with the unit and counter suffixes described above.
std::string PrometheusName(const FigureInfo& figure);
std::string PrometheusName(const HistogramInfo& histogram);

// A LogHistogram snapshot as a Prometheus histogram (cumulative counts at the bounds above,
// sum in seconds, count).
prometheus::ClientMetric::Histogram ToPrometheusHistogram(const LogHistogram::Snapshot& snapshot);

// Why `target` is not ready for traffic ("draining", "not listening yet"), or "" when it is:
// what /readyz answers.
std::string NotReadyReason(const Administered& target);

// Keeps exported histograms from going down between scrapes: each cumulative count (and the
// sample count) is at least what was exported for the same histogram before. A count held up
// this way is at most one task ahead of the histogram per task that ended during a scrape.
// Threads: any, concurrently (a mutex).
class MonotonicHistograms {
 public:
  // `key` names one histogram of one loop (its name and loop).
  void Hold(const std::pair<std::string, size_t>& key, prometheus::ClientMetric::Histogram& histogram);

 private:
  struct Highest {
    uint64_t sample_count = 0;
    std::vector<uint64_t> cumulative;  // per bucket
  };
  std::mutex mu_;
  std::map<std::pair<std::string, size_t>, Highest> highest_;  // guarded by mu_
};

class MetricsExporter final : public prometheus::Collectable {
 public:
  // `admin_figures_of`: the admin plane's figures of a loop (AdminServer::figures_of); null
  // without an admin plane, when they are 0.
  explicit MetricsExporter(const Administered& target,
                           std::function<AdminLoopStats(size_t loop)> admin_figures_of = nullptr)
      : target_(target), admin_figures_of_(std::move(admin_figures_of)) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const Administered& target_;
  const std::function<AdminLoopStats(size_t loop)> admin_figures_of_;
  mutable MonotonicHistograms histograms_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_METRICS_EXPORTER_H_
