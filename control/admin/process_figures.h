// process_figures.h: the process figures every Prometheus client exports, under the names
// the official clients use, read from /proc when a scrape asks for them:
//   process_cpu_seconds_total        user + system CPU time
//   process_resident_memory_bytes    resident set size
//   process_virtual_memory_bytes     virtual memory size
//   process_open_fds                 open descriptors (counted in /proc/self/fd)
//   process_max_fds                  RLIMIT_NOFILE (soft)
//   process_start_time_seconds       start time, seconds since the Unix epoch
//   process_threads                  threads
// prometheus-cpp has no process collector; these follow client_golang's and
// client_python's. A figure that cannot be read (no /proc) is left out, not reported as 0.
// With them, brrr's one figure of the whole process:
//   brrr_output_lines_dropped_total{stream="stdout"|"stderr"}
//                                    lines printed but never written (LineOutput::dropped)
//
// Counting open descriptors walks /proc/self/fd: a scrape of a server holding 100,000
// connections reads 100,000 directory entries (milliseconds, once per scrape).
//
//   auto process = std::make_shared<ProcessFigures>();
//   std::vector<prometheus::MetricFamily> families = process->Collect();
//
// Threads: Collect() from any thread.
#ifndef BRRR_CONTROL_ADMIN_PROCESS_FIGURES_H_
#define BRRR_CONTROL_ADMIN_PROCESS_FIGURES_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "runtime/line_output.h"

namespace brrr::control {

class ProcessFigures final : public prometheus::Collectable {
 public:
  // `output`: whose dropped lines to report; the process's own unless a test says otherwise.
  explicit ProcessFigures(const LineOutput& output = LineOutput::Process()) : output_(output) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const LineOutput& output_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_PROCESS_FIGURES_H_
