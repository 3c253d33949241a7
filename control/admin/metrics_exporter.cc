#include "control/admin/metrics_exporter.h"

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "runtime/loop_stats.h"
#include "runtime/version.h"
#include "server/server_stats.h"

namespace brrr::control {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Whether `name` has `word` as one of its underscore-separated words.
bool HasWord(absl::string_view name, absl::string_view word) {
  for (size_t at = name.find(word); at != absl::string_view::npos; at = name.find(word, at + 1)) {
    bool starts = at == 0 || name[at - 1] == '_';
    bool ends = at + word.size() == name.size() || name[at + word.size()] == '_';
    if (starts && ends) return true;
  }
  return false;
}

std::string WithUnit(const char* name, FigureUnit unit) {
  std::string out = absl::StrCat("brrr_", name);
  if (IsDuration(unit) && !HasWord(name, "seconds")) out += "_seconds";
  if (unit == FigureUnit::kBytes && !HasWord(name, "bytes")) out += "_bytes";
  return out;
}

MetricType TypeOf(FigureKind kind) { return kind == FigureKind::kCounter ? MetricType::Counter : MetricType::Gauge; }

ClientMetric::Label LoopLabel(size_t loop) { return {"loop", std::to_string(loop)}; }

ClientMetric Sample(MetricType type, double value, std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  if (type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return m;
}

// Each Add* appends a list's families to `out` when called for the first loop, and the loop's
// samples to them: `first` is the index of the list's first family in `out`.
template <typename Stats>
void AddFigures(const Stats& stats, size_t loop, size_t first, std::vector<MetricFamily>& out) {
  size_t i = first;
  ForEachFigure(stats, [&](const FigureInfo& f, double value) {
    if (i == out.size()) out.push_back(MetricFamily{PrometheusName(f), f.help, TypeOf(f.kind), {}});
    out[i].metric.push_back(Sample(out[i].type, value, {LoopLabel(loop)}));
    ++i;
  });
}

void AddLabels(const LoopStats& stats, size_t loop, size_t first, std::vector<MetricFamily>& out) {
  size_t i = first;
  ForEachLabel(stats, [&](const LabelInfo& l, const std::string& text) {
    if (i == out.size()) {
      out.push_back(MetricFamily{absl::StrCat("brrr_", l.name, "_info"),
                                 absl::StrCat(absl::StripSuffix(l.help, "."), ": in the label ", l.name,
                                              " (the value is 1)."),
                                 MetricType::Gauge,
                                 {}});
    }
    if (!text.empty()) out[i].metric.push_back(Sample(MetricType::Gauge, 1, {LoopLabel(loop), {l.name, text}}));
    ++i;
  });
}

void AddHistograms(const LoopStats& stats, size_t loop, size_t first, MonotonicHistograms& held,
                   std::vector<MetricFamily>& out) {
  size_t i = first;
  ForEachHistogram(stats, [&](const HistogramInfo& h, const LogHistogram::Snapshot& snapshot) {
    if (i == out.size()) out.push_back(MetricFamily{PrometheusName(h), h.help, MetricType::Histogram, {}});
    ClientMetric m;
    m.label = {LoopLabel(loop)};
    m.histogram = ToPrometheusHistogram(snapshot);
    held.Hold({out[i].name, loop}, m.histogram);
    out[i].metric.push_back(std::move(m));
    ++i;
  });
}

}  // namespace

std::string PrometheusName(const FigureInfo& figure) {
  std::string out = WithUnit(figure.name, figure.unit);
  if (figure.kind == FigureKind::kCounter) out += "_total";
  return out;
}

std::string PrometheusName(const HistogramInfo& histogram) { return WithUnit(histogram.name, histogram.unit); }

ClientMetric::Histogram ToPrometheusHistogram(const LogHistogram::Snapshot& snapshot) {
  ClientMetric::Histogram h;
  h.sample_count = snapshot.total;
  h.sample_sum = static_cast<double>(snapshot.sum_ns) / 1e9;
  uint64_t below = 0;
  int bucket = 0;
  for (int log2 : kHistogramBoundsLog2Ns) {
    const int64_t bound_ns = int64_t{1} << log2;
    // LogHistogram buckets end just below each power of two: every bucket up to the bound's
    // lies wholly under it.
    while (bucket < LogHistogram::kBuckets && LogHistogram::upper_bound(bucket) < bound_ns) {
      below += snapshot.counts[bucket++];
    }
    h.bucket.push_back({below, static_cast<double>(bound_ns) / 1e9});
  }
  return h;
}

void MonotonicHistograms::Hold(const std::pair<std::string, size_t>& key, ClientMetric::Histogram& histogram) {
  std::lock_guard<std::mutex> lock(mu_);
  Highest& highest = highest_[key];
  highest.cumulative.resize(std::max(highest.cumulative.size(), histogram.bucket.size()));
  for (size_t b = 0; b < histogram.bucket.size(); ++b) {
    uint64_t& count = histogram.bucket[b].cumulative_count;
    count = std::max(count, highest.cumulative[b]);
    highest.cumulative[b] = count;
    // +Inf (the sample count) covers every finite bucket.
    histogram.sample_count = std::max(histogram.sample_count, count);
  }
  histogram.sample_count = std::max(histogram.sample_count, highest.sample_count);
  highest.sample_count = histogram.sample_count;
}

std::string NotReadyReason(const Administered& target) {
  if (target.drain_started_at_ns() != 0) return "draining";
  if (target.started_at_ns() == 0) return "not listening yet";
  return "";
}

std::vector<MetricFamily> MetricsExporter::Collect() const {
  std::vector<MetricFamily> out;
  out.push_back(MetricFamily{"brrr_build_info", "brrr's version (the value is 1).", MetricType::Gauge,
                             {Sample(MetricType::Gauge, 1, {{"version", kVersion}})}});
  out.push_back(MetricFamily{"brrr_draining",
                             "Whether the server is draining (1 from the first SIGTERM or admin Drain on).",
                             MetricType::Gauge,
                             {Sample(MetricType::Gauge, target_.drain_started_at_ns() != 0 ? 1 : 0, {})}});

  std::vector<EventLoop*> loops = target_.loops();
  std::vector<LoopStats> loop_stats;
  loop_stats.reserve(loops.size());
  for (EventLoop* loop : loops) loop_stats.push_back(loop->stats());

  // Each list's families, in list order, each with one sample per loop.
  size_t first = out.size();
  for (size_t i = 0; i < loop_stats.size(); ++i) AddFigures(loop_stats[i], i, first, out);
  first = out.size();
  for (size_t i = 0; i < loop_stats.size(); ++i) AddLabels(loop_stats[i], i, first, out);
  first = out.size();
  for (size_t i = 0; i < loop_stats.size(); ++i) AddHistograms(loop_stats[i], i, first, histograms_, out);
  first = out.size();
  for (size_t i = 0; i < loops.size(); ++i) AddFigures(target_.server_stats(i), i, first, out);
  first = out.size();
  for (size_t i = 0; i < loops.size(); ++i) {
    AddFigures(admin_figures_of_ != nullptr ? admin_figures_of_(i) : AdminLoopStats{}, i, first, out);
  }
  return out;
}

}  // namespace brrr::control
