// The Prometheus exposition is made from the figure lists: every figure, label and histogram of
// the loop's and the echo server's lists is exported per loop, named from its name, kind and
// unit, with the list's help; the histograms' buckets are exact at their fixed bounds; and the
// text passes prometheus-cpp's own name checks.
#include "control/admin/metrics_exporter.h"

#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "control/admin/process_figures.h"
#include "gtest/gtest.h"
#include "prometheus/check_names.h"
#include "prometheus/text_serializer.h"
#include "runtime/line_output.h"
#include "runtime/loop_stats.h"
#include "runtime/manual_clock.h"
#include "runtime/version.h"
#include "server/server_stats.h"
#include "tests/control/fake_administered.h"
#include "tests/testing/pipe.h"

namespace brrr::control {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using std::chrono::milliseconds;

std::map<std::string, MetricFamily> ByName(const std::vector<MetricFamily>& families) {
  std::map<std::string, MetricFamily> out;
  for (const MetricFamily& f : families) EXPECT_TRUE(out.emplace(f.name, f).second) << f.name << " twice";
  return out;
}

std::string Label(const ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return "<none>";
}

double Value(const MetricFamily& f, const ClientMetric& m) {
  return f.type == MetricType::Counter ? m.counter.value : m.gauge.value;
}

class MetricsExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EventLoopOptions o;
    o.manual_clock = &clock_;
    target_ = std::make_unique<testing::FakeAdministered>(2, o);
    // Loop 0 runs a few tasks, one of them "slow" (30 ms of virtual time), and a timer 2 ms
    // late; loop 1 runs nothing.
    EventLoop& loop = target_->loop(0);
    for (int i = 0; i < 3; ++i) loop.call_soon([] {});
    loop.call_soon([this] { clock_.advance(milliseconds(30)); }, "slow");
    loop.call_later(milliseconds(1), [] {}, "timer");
    loop.call_later(milliseconds(2), [&loop] { loop.stop(); });
    loop.run_forever();
    target_->echo[0].bytes_in = 1234;
    target_->echo[0].accepting = 1;
    target_->echo[1].bytes_in = 10;
    admin_[0].injections_running = 3;
    families_ = ByName(MetricsExporter(*target_, [this](size_t loop) { return admin_[loop]; }).Collect());
  }

  const MetricFamily& Family(const std::string& name) {
    static const MetricFamily kMissing;
    auto it = families_.find(name);
    if (it == families_.end()) {
      ADD_FAILURE() << "no family " << name;
      return kMissing;
    }
    return it->second;
  }

  // The family's sample for loop `loop`.
  const ClientMetric* ForLoop(const MetricFamily& f, size_t loop) {
    for (const ClientMetric& m : f.metric) {
      if (Label(m, "loop") == std::to_string(loop)) return &m;
    }
    ADD_FAILURE() << f.name << " has no sample for loop " << loop;
    return nullptr;
  }

  ManualClock clock_;
  std::unique_ptr<testing::FakeAdministered> target_;
  AdminLoopStats admin_[2];  // the admin plane's figures of each loop
  std::map<std::string, MetricFamily> families_;
};

TEST_F(MetricsExporterTest, EveryFigureOfEveryListIsExportedPerLoopWithItsHelp) {
  const std::vector<LoopStats> stats = {target_->loop(0).stats(), target_->loop(1).stats()};
  for (size_t loop = 0; loop < 2; ++loop) {
    ForEachFigure(stats[loop], [&](const FigureInfo& f, double value) {
      const MetricFamily& family = Family(PrometheusName(f));
      EXPECT_EQ(family.help, f.help) << f.name;
      EXPECT_EQ(family.type, f.kind == FigureKind::kCounter ? MetricType::Counter : MetricType::Gauge) << f.name;
      EXPECT_EQ(family.metric.size(), 2u) << f.name;
      const ClientMetric* m = ForLoop(family, loop);
      // current_task_running is read at the snapshot's time; the loop is not running.
      if (m != nullptr) {
        EXPECT_DOUBLE_EQ(Value(family, *m), value) << f.name << " on loop " << loop;
      }
    });
    auto expect_exported = [&](const FigureInfo& f, double value) {
      const MetricFamily& family = Family(PrometheusName(f));
      EXPECT_EQ(family.help, f.help) << f.name;
      const ClientMetric* m = ForLoop(family, loop);
      if (m != nullptr) {
        EXPECT_DOUBLE_EQ(Value(family, *m), value) << f.name << " on loop " << loop;
      }
    };
    ForEachFigure(target_->echo[loop], expect_exported);
    ForEachFigure(admin_[loop], expect_exported);
  }
  for (const HistogramInfo& h : kLoopHistograms) {
    const MetricFamily& family = Family(PrometheusName(h));
    EXPECT_EQ(family.type, MetricType::Histogram) << h.name;
    EXPECT_EQ(family.help, h.help);
    EXPECT_EQ(family.metric.size(), 2u) << h.name;
  }
  for (const LabelInfo& l : kLoopLabels) EXPECT_EQ(families_.count(std::string("brrr_") + l.name + "_info"), 1u) << l.name;
  // Nothing else but brrr_build_info, brrr_draining and the lists' families.
  EXPECT_EQ(families_.size(), 2 + std::size(kLoopFigures) + std::size(kLoopLabels) + std::size(kLoopHistograms) +
                                  std::size(server::kEchoFigures) + std::size(kAdminFigures));
}

TEST_F(MetricsExporterTest, NamesCarryTheirUnitAndCounterSuffixes) {
  for (const auto& [name, family] : families_) {
    EXPECT_TRUE(prometheus::CheckMetricName(name)) << name;
    EXPECT_EQ(absl::EndsWith(name, "_total"), family.type == MetricType::Counter) << name;
  }
  EXPECT_EQ(Family("brrr_bytes_in_total").type, MetricType::Counter);
  EXPECT_EQ(Family("brrr_running_seconds_total").type, MetricType::Counter);
  EXPECT_EQ(Family("brrr_stall_threshold_seconds").type, MetricType::Gauge);
  EXPECT_EQ(Family("brrr_longest_task_seconds").type, MetricType::Gauge);
  EXPECT_EQ(Family("brrr_ready_queue_depth").type, MetricType::Gauge);
  EXPECT_EQ(Family("brrr_accepting").type, MetricType::Gauge);
  // Entries a list might gain: the exporter names them with no change.
  EXPECT_EQ(PrometheusName(FigureInfo{"queued", FigureKind::kGauge, FigureUnit::kBytes, ""}), "brrr_queued_bytes");
  EXPECT_EQ(PrometheusName(FigureInfo{"bytes_dropped", FigureKind::kCounter, FigureUnit::kBytes, ""}),
            "brrr_bytes_dropped_total");
  EXPECT_EQ(PrometheusName(FigureInfo{"backoff", FigureKind::kCounter, FigureUnit::kMillis, ""}),
            "brrr_backoff_seconds_total");
  EXPECT_EQ(PrometheusName(FigureInfo{"busy", FigureKind::kMax, FigureUnit::kFlag, ""}), "brrr_busy");
  EXPECT_EQ(PrometheusName(HistogramInfo{"accept_delay", FigureUnit::kSeconds, ""}), "brrr_accept_delay_seconds");
}

TEST_F(MetricsExporterTest, ValuesAreInBaseUnitsPerLoop) {
  const MetricFamily& bytes = Family("brrr_bytes_in_total");
  EXPECT_EQ(ForLoop(bytes, 0)->counter.value, 1234);
  EXPECT_EQ(ForLoop(bytes, 1)->counter.value, 10);
  EXPECT_EQ(ForLoop(Family("brrr_accepting"), 0)->gauge.value, 1);
  EXPECT_EQ(ForLoop(Family("brrr_accepting"), 1)->gauge.value, 0);
  EXPECT_DOUBLE_EQ(ForLoop(Family("brrr_longest_task_seconds"), 0)->gauge.value, 0.030);
  EXPECT_DOUBLE_EQ(ForLoop(Family("brrr_stall_threshold_seconds"), 1)->gauge.value, 0.100);
  EXPECT_EQ(ForLoop(Family("brrr_tasks_run_total"), 0)->counter.value, 6);
  EXPECT_EQ(ForLoop(Family("brrr_tasks_run_total"), 1)->counter.value, 0);
}

TEST_F(MetricsExporterTest, HistogramsArePerLoopWithFixedBounds) {
  const MetricFamily& tasks = Family("brrr_task_duration_seconds");
  const ClientMetric::Histogram& h = ForLoop(tasks, 0)->histogram;
  EXPECT_EQ(h.sample_count, 6u);
  EXPECT_DOUBLE_EQ(h.sample_sum, 0.030);
  ASSERT_EQ(h.bucket.size(), kHistogramBoundsLog2Ns.size());
  // Five tasks took no virtual time; "slow" took 30 ms, under 2^26 ns (67 ms), over 2^24.
  for (size_t i = 0; i < h.bucket.size(); ++i) {
    double bound = h.bucket[i].upper_bound;
    EXPECT_EQ(h.bucket[i].cumulative_count, bound < 0.030 ? 5u : 6u) << "le=" << bound;
  }
  const ClientMetric::Histogram& lateness = ForLoop(Family("brrr_timer_lateness_seconds"), 0)->histogram;
  EXPECT_EQ(lateness.sample_count, 2u) << "two timers ran";
  EXPECT_EQ(ForLoop(tasks, 1)->histogram.sample_count, 0u);
}

TEST(HistogramConversionTest, CumulativeCountsAreExactAtTheBounds) {
  LogHistogram h;
  for (int64_t ns : std::initializer_list<int64_t>{0, 1023, 1024, 4095, 5000, 1'048'575, 1'048'576, 3'000'000'000, 100'000'000'000}) h.record(ns);
  ClientMetric::Histogram p = ToPrometheusHistogram(h.snapshot());
  ASSERT_EQ(p.bucket.size(), 13u);
  EXPECT_DOUBLE_EQ(p.bucket[0].upper_bound, 1024e-9);
  EXPECT_DOUBLE_EQ(p.bucket[12].upper_bound, 17179869184e-9);
  EXPECT_EQ(p.bucket[0].cumulative_count, 2u);   // 0 and 1023 (1024 is not under 2^10 ns)
  EXPECT_EQ(p.bucket[1].cumulative_count, 4u);   // + 1024, 4095
  EXPECT_EQ(p.bucket[2].cumulative_count, 5u);   // + 5000
  EXPECT_EQ(p.bucket[4].cumulative_count, 5u);
  EXPECT_EQ(p.bucket[5].cumulative_count, 6u);   // + 1'048'575, under 2^20 ns
  EXPECT_EQ(p.bucket[6].cumulative_count, 7u);   // + 2^20 ns itself
  EXPECT_EQ(p.bucket[11].cumulative_count, 8u);  // + 3 s
  EXPECT_EQ(p.bucket[12].cumulative_count, 8u);  // 100 s is past the last bound: only in +Inf
  EXPECT_EQ(p.sample_count, 9u);
  EXPECT_DOUBLE_EQ(p.sample_sum, (1023 + 1024 + 4095 + 5000 + 1'048'575 + 1'048'576 + 3e9 + 100e9) / 1e9);
}

TEST_F(MetricsExporterTest, LabelsAreInfoSeriesForTheLoopsThatHaveThem) {
  const MetricFamily& longest = Family("brrr_longest_task_info");
  ASSERT_EQ(longest.metric.size(), 1u) << "loop 1 ran no task";
  EXPECT_EQ(Label(longest.metric[0], "loop"), "0");
  EXPECT_EQ(Label(longest.metric[0], "longest_task"), "slow");
  EXPECT_EQ(longest.metric[0].gauge.value, 1);
  EXPECT_TRUE(Family("brrr_current_task_info").metric.empty()) << "no loop is running a task";
}

TEST_F(MetricsExporterTest, BuildInfoAndDraining) {
  const MetricFamily& build = Family("brrr_build_info");
  ASSERT_EQ(build.metric.size(), 1u);
  EXPECT_EQ(Label(build.metric[0], "version"), kVersion);
  EXPECT_EQ(Family("brrr_draining").metric[0].gauge.value, 0);
  target_->Drain([] {});
  EXPECT_EQ(ByName(MetricsExporter(*target_).Collect())["brrr_draining"].metric[0].gauge.value, 1);
}

TEST_F(MetricsExporterTest, ReadinessFollowsStartAndDrain) {
  target_->started_ns = 0;
  EXPECT_EQ(NotReadyReason(*target_), "not listening yet");
  target_->started_ns = 7;
  EXPECT_EQ(NotReadyReason(*target_), "");
  target_->Drain([] {});
  EXPECT_EQ(NotReadyReason(*target_), "draining");
}

TEST_F(MetricsExporterTest, TheTextHasEveryFamilysHelpAndType) {
  std::vector<MetricFamily> all = MetricsExporter(*target_).Collect();
  std::string text = prometheus::TextSerializer().Serialize(all);
  for (const MetricFamily& f : all) {
    EXPECT_NE(text.find("# HELP " + f.name + " "), std::string::npos) << f.name;
    EXPECT_NE(text.find("# TYPE " + f.name + " "), std::string::npos) << f.name;
  }
  EXPECT_NE(text.find("brrr_bytes_in_total{loop=\"0\"} 1234\n"), std::string::npos) << text;
  EXPECT_NE(text.find("brrr_task_duration_seconds_bucket{loop=\"0\",le=\"+Inf\"} 6\n"), std::string::npos) << text;
}

// A scrape between a loop's count of a task and its bucketing sees the task in the first bucket,
// the next scrape in its own: held, the exported cumulative counts never fall (Prometheus would
// read a counter reset), and +Inf covers every bucket; once the histogram is past what was
// held, its own counts go out again.
TEST(MonotonicHistogramsTest, ExportedCountsNeverFall) {
  auto histogram = [](std::vector<uint64_t> cumulative, uint64_t count) {
    ClientMetric::Histogram h;
    for (size_t b = 0; b < cumulative.size(); ++b) h.bucket.push_back({cumulative[b], static_cast<double>(b + 1)});
    h.sample_count = count;
    return h;
  };
  auto counts = [](const ClientMetric::Histogram& h) {
    std::vector<uint64_t> out;
    for (const auto& b : h.bucket) out.push_back(b.cumulative_count);
    out.push_back(h.sample_count);
    return out;
  };
  MonotonicHistograms held;
  ClientMetric::Histogram first = histogram({5, 5, 6}, 6);  // the task counted in the first bucket
  held.Hold({"brrr_task_duration_seconds", 0}, first);
  EXPECT_EQ(counts(first), (std::vector<uint64_t>{5, 5, 6, 6}));
  ClientMetric::Histogram second = histogram({4, 4, 6}, 6);  // and then in the third
  held.Hold({"brrr_task_duration_seconds", 0}, second);
  EXPECT_EQ(counts(second), (std::vector<uint64_t>{5, 5, 6, 6}));
  ClientMetric::Histogram other_loop = histogram({4, 4, 6}, 6);  // each loop's own
  held.Hold({"brrr_task_duration_seconds", 1}, other_loop);
  EXPECT_EQ(counts(other_loop), (std::vector<uint64_t>{4, 4, 6, 6}));
  ClientMetric::Histogram later = histogram({7, 8, 9}, 9);
  held.Hold({"brrr_task_duration_seconds", 0}, later);
  EXPECT_EQ(counts(later), (std::vector<uint64_t>{7, 8, 9, 9}));
  ClientMetric::Histogram short_count = histogram({7, 8, 10}, 9);  // +Inf below a bucket
  held.Hold({"brrr_task_duration_seconds", 0}, short_count);
  EXPECT_EQ(counts(short_count), (std::vector<uint64_t>{7, 8, 10, 10}));
}

// Samples above the largest finite bound are in the +Inf count alone: when a later snapshot
// counts fewer (a loop's histogram reads one sample short for a moment), the exported +Inf
// count does not fall either, though no finite bucket holds it up.
TEST(MonotonicHistogramsTest, TheInfCountNeverFallsThoughNoFiniteBucketHoldsIt) {
  MonotonicHistograms held;
  ClientMetric::Histogram first;
  first.bucket.push_back({1, 1.0});
  first.sample_count = 5;  // four samples past the last bound
  held.Hold({"brrr_task_duration_seconds", 0}, first);
  EXPECT_EQ(first.sample_count, 5u);
  ClientMetric::Histogram fewer;
  fewer.bucket.push_back({1, 1.0});
  fewer.sample_count = 4;
  held.Hold({"brrr_task_duration_seconds", 0}, fewer);
  EXPECT_EQ(fewer.sample_count, 5u) << "the +Inf count fell";
  EXPECT_EQ(fewer.bucket[0].cumulative_count, 1u);
}

TEST(ProcessFiguresTest, ReadsThisProcess) {
  std::map<std::string, MetricFamily> process = ByName(ProcessFigures().Collect());
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds", "process_threads"}) {
    ASSERT_EQ(process.count(name), 1u) << name;
  }
  EXPECT_GT(process["process_resident_memory_bytes"].metric[0].gauge.value, 1 << 20);
  EXPECT_GE(process["process_open_fds"].metric[0].gauge.value, 3) << "stdin, stdout, stderr";
  EXPECT_GE(process["process_threads"].metric[0].gauge.value, 1);
  EXPECT_GT(process["process_start_time_seconds"].metric[0].gauge.value, 1.6e9) << "after 2020";
}

// The lines a LineOutput dropped, per stream: here one on stdout, whose reader has gone.
TEST(ProcessFiguresTest, CountsTheOutputLinesDroppedPerStream) {
  testing::TestPipe out;
  testing::TestPipe err;
  out.CloseReadEnd();
  LineOutput output(out.write_end(), err.write_end());
  output.Write(OutputStream::kStdout, "to nobody");
  output.Write(OutputStream::kStderr, "to the reader");
  ASSERT_TRUE(output.Flush(absl::Seconds(30)));
  std::map<std::string, MetricFamily> process = ByName(ProcessFigures(output).Collect());
  ASSERT_EQ(process.count("brrr_output_lines_dropped_total"), 1u);
  const MetricFamily& dropped = process["brrr_output_lines_dropped_total"];
  EXPECT_EQ(dropped.type, MetricType::Counter);
  std::map<std::string, double> by_stream;
  for (const ClientMetric& m : dropped.metric) {
    ASSERT_EQ(m.label.size(), 1u);
    EXPECT_EQ(m.label[0].name, "stream");
    by_stream[m.label[0].value] = m.counter.value;
  }
  EXPECT_EQ(by_stream, (std::map<std::string, double>{{"stderr", 0}, {"stdout", 1}}));
}

}  // namespace
}  // namespace brrr::control
