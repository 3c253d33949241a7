#include "control/admin/process_figures.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <utility>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "runtime/line_output.h"

namespace brrr::control {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

std::optional<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// The fields of /proc/self/stat after the command name (which may hold spaces and
// parentheses, so it ends at the last ')'): element 0 is field 3 of proc(5), "state".
std::optional<std::vector<std::string>> StatFields() {
  std::optional<std::string> stat = ReadFile("/proc/self/stat");
  if (!stat.has_value()) return std::nullopt;
  size_t name_end = stat->rfind(')');
  if (name_end == std::string::npos) return std::nullopt;
  std::vector<std::string> fields = absl::StrSplit(absl::string_view(*stat).substr(name_end + 1), ' ', absl::SkipEmpty());
  if (fields.size() < 22) return std::nullopt;
  return fields;
}

// Field `n` of proc(5)'s numbering.
std::optional<double> Field(const std::vector<std::string>& fields, int n) {
  double value = 0;
  if (!absl::SimpleAtod(fields[n - 3], &value)) return std::nullopt;
  return value;
}

std::optional<double> BootTimeSeconds() {
  std::optional<std::string> stat = ReadFile("/proc/stat");
  if (!stat.has_value()) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*stat, '\n')) {
    double value = 0;
    if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtod(line, &value)) return value;
  }
  return std::nullopt;
}

std::optional<double> OpenDescriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  double count = 0;
  while (struct dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // the directory's own descriptor
}

void Add(std::vector<MetricFamily>& out, const char* name, const char* help, MetricType type,
         std::optional<double> value) {
  if (!value.has_value()) return;
  ClientMetric m;
  if (type == MetricType::Counter) {
    m.counter.value = *value;
  } else {
    m.gauge.value = *value;
  }
  out.push_back(MetricFamily{name, help, type, {m}});
}

}  // namespace

std::vector<MetricFamily> ProcessFigures::Collect() const {
  std::vector<MetricFamily> out;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::optional<std::vector<std::string>> stat = StatFields();
  auto field = [&](int n) { return stat.has_value() ? Field(*stat, n) : std::nullopt; };
  std::optional<double> utime = field(14);
  std::optional<double> stime = field(15);
  if (utime.has_value() && stime.has_value()) {
    Add(out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", MetricType::Counter,
        (*utime + *stime) / ticks);
  }
  if (std::optional<double> rss = field(24)) {
    Add(out, "process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge, *rss * page);
  }
  Add(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge, field(23));
  Add(out, "process_open_fds", "Number of open file descriptors.", MetricType::Gauge, OpenDescriptors());
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    Add(out, "process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
        static_cast<double>(limit.rlim_cur));
  }
  std::optional<double> started = field(22);
  std::optional<double> boot = BootTimeSeconds();
  if (started.has_value() && boot.has_value()) {
    Add(out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        MetricType::Gauge, *boot + *started / ticks);
  }
  Add(out, "process_threads", "Number of OS threads in the process.", MetricType::Gauge, field(20));
  MetricFamily dropped{"brrr_output_lines_dropped_total",
                       "Lines brrr printed that were never written: their stream was not read while its queue was "
                       "full, or the write failed.",
                       MetricType::Counter,
                       {}};
  for (auto [stream, name] : {std::pair{OutputStream::kStdout, "stdout"}, std::pair{OutputStream::kStderr, "stderr"}}) {
    ClientMetric m;
    m.label.push_back({"stream", name});
    m.counter.value = static_cast<double>(output_.dropped(stream));
    dropped.metric.push_back(std::move(m));
  }
  out.push_back(std::move(dropped));
  return out;
}

}  // namespace brrr::control
