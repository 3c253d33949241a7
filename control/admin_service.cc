#include "control/admin_service.h"

#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>

#include "control/version.h"
#include "runtime/clock.h"

namespace brrr::control {

namespace admin = brrr::admin::v1;

namespace {

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }
double Millis(int64_t ns) { return static_cast<double>(ns) / 1e6; }
double Micros(int64_t ns) { return static_cast<double>(ns) / 1e3; }

void FillLateness(const LogHistogram::Snapshot& h, admin::Lateness* out) {
  uint64_t count = 0;
  for (uint64_t c : h.counts) count += c;
  out->set_count(count);
  out->set_p50_us(Micros(h.percentile(0.50)));
  out->set_p99_us(Micros(h.percentile(0.99)));
  out->set_p999_us(Micros(h.percentile(0.999)));
  out->set_max_us(Micros(h.max_ns));
}

void FillLoop(const LoopStats& l, admin::LoopStats* out) {
  out->set_ready_queue_depth(l.ready_queue_depth);
  out->set_threadsafe_queue_depth(l.threadsafe_queue_depth);
  out->set_pending_timers(l.pending_timers);
  out->set_live_tasks(l.live_tasks);
  out->set_sockets(l.sockets);
  out->set_read_set_size(l.read_set_size);
  out->set_write_set_size(l.write_set_size);
  out->set_io_in_flight(l.io_in_flight);
  out->set_iterations(l.iterations);
  out->set_tasks_run(l.tasks_run);
  out->set_running_seconds(Seconds(l.running_ns));
  out->set_waiting_seconds(Seconds(l.waiting_ns));
  out->set_stalls(l.stalls);
  out->set_stall_threshold_ms(Millis(l.stall_threshold_ns));
  out->set_longest_task_ms(Millis(l.longest_task_ns));
  out->set_longest_task(l.longest_task);
  out->set_current_task(l.current_task);
  out->set_current_task_running_ms(Millis(l.current_task_running_ns));
}

void FillServer(const server::ServerStats& s, admin::LoopStats* out) {
  out->set_connections_active(s.connections_active);
  out->set_connections_accepted(s.connections_accepted);
  out->set_connections_refused(s.connections_refused);
  out->set_bytes_in(s.bytes_in);
  out->set_bytes_out(s.bytes_out);
  out->set_messages_in(s.messages_in);
  out->set_messages_out(s.messages_out);
  out->set_reads_paused(s.reads_paused);
  out->set_accept_errors(s.accept_errors);
}

// Adds a loop's "now" and total figures into the server-wide total.
void AddLoop(const LoopStats& l, LoopStats& total) {
  total.ready_queue_depth += l.ready_queue_depth;
  total.threadsafe_queue_depth += l.threadsafe_queue_depth;
  total.pending_timers += l.pending_timers;
  total.live_tasks += l.live_tasks;
  total.sockets += l.sockets;
  total.read_set_size += l.read_set_size;
  total.write_set_size += l.write_set_size;
  total.io_in_flight += l.io_in_flight;
  total.iterations += l.iterations;
  total.tasks_run += l.tasks_run;
  total.running_ns += l.running_ns;
  total.waiting_ns += l.waiting_ns;
  total.stalls += l.stalls;
  total.stall_threshold_ns = l.stall_threshold_ns;
  if (l.longest_task_ns > total.longest_task_ns) {
    total.longest_task_ns = l.longest_task_ns;
    total.longest_task = l.longest_task;
  }
  if (l.current_task_running_ns > total.current_task_running_ns) {
    total.current_task_running_ns = l.current_task_running_ns;
    total.current_task = l.current_task;
  }
  total.timer_lateness += l.timer_lateness;
}

}  // namespace

AdminService::AdminService(server::EchoServer& server, std::vector<BackendProbe> backends)
    : server_(server), backends_(std::move(backends)) {}

grpc::Status AdminService::GetServerInfo(grpc::ServerContext*, const admin::GetServerInfoRequest*,
                                         admin::ServerInfo* info) {
  info->set_version(kVersion);
  info->set_backend(server_.backend());
  info->set_loops(static_cast<uint32_t>(server_.loop_count()));
  info->add_listening_addresses(server_.address().ToString());
  info->set_uptime_seconds(Seconds(MonotonicNanos() - server_.started_at_ns()));
  info->set_pid(static_cast<uint32_t>(::getpid()));
  for (const BackendProbe& probe : backends_) {
    admin::BackendAvailability* b = info->add_available_backends();
    b->set_name(probe.name);
    b->set_starts(probe.status.ok());
    if (!probe.status.ok()) b->set_reason(std::string(probe.status.message()));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::GetStats(grpc::ServerContext*, const admin::GetStatsRequest*, admin::Stats* stats) {
  *stats = CollectStats();
  return grpc::Status::OK;
}

admin::Stats AdminService::CollectStats() const {
  admin::Stats stats;
  std::vector<LoopStats> loops = server_.loop_stats();
  LoopStats total;
  for (size_t i = 0; i < loops.size(); ++i) {
    admin::LoopStats* out = stats.add_loops();
    out->set_loop(static_cast<uint32_t>(i));
    FillLoop(loops[i], out);
    FillLateness(loops[i].timer_lateness, out->mutable_timer_lateness());
    FillServer(server_.stats(i), out);
    AddLoop(loops[i], total);
  }
  admin::LoopStats* out = stats.mutable_total();
  FillLoop(total, out);
  FillLateness(total.timer_lateness, out->mutable_timer_lateness());
  FillServer(server_.stats(), out);
  stats.set_uptime_seconds(Seconds(MonotonicNanos() - server_.started_at_ns()));
  return stats;
}

}  // namespace brrr::control
