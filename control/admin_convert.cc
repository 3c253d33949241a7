#include "control/admin_convert.h"

#include <string>
#include <vector>

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
  out->set_reads_throttled(s.reads_throttled);
  out->set_connections_closed_idle(s.connections_closed_idle);
  out->set_connections_closed_error(s.connections_closed_error);
  out->set_connections_closed_drain(s.connections_closed_drain);
  out->set_connections_closed_by_admin(s.connections_closed_by_admin);
  out->set_accepting(s.loops_accepting > 0);
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

admin::InjectionKind KindToProto(InjectionKind kind) {
  switch (kind) {
    case InjectionKind::kBlockingSpin:
      return admin::BLOCKING_SPIN;
    case InjectionKind::kBlockingSleep:
      return admin::BLOCKING_SLEEP;
    case InjectionKind::kNonblockingSleep:
      return admin::NONBLOCKING_SLEEP;
  }
  return admin::INJECTION_KIND_UNSPECIFIED;
}

admin::Injection::State StateToProto(InjectionStatus::State state) {
  switch (state) {
    case InjectionStatus::State::kActive:
      return admin::Injection::ACTIVE;
    case InjectionStatus::State::kFinished:
      return admin::Injection::FINISHED;
    case InjectionStatus::State::kCancelled:
      return admin::Injection::CANCELLED;
  }
  return admin::Injection::STATE_UNSPECIFIED;
}

uint32_t WholeMillis(Duration d) {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

admin::Stats CollectStats(const server::EchoServer& server, TaskInjector& injector) {
  admin::Stats stats;
  std::vector<LoopStats> loops = server.loop_stats();
  LoopStats total;
  for (size_t i = 0; i < loops.size(); ++i) {
    admin::LoopStats* out = stats.add_loops();
    out->set_loop(static_cast<uint32_t>(i));
    FillLoop(loops[i], out);
    FillLateness(loops[i].timer_lateness, out->mutable_timer_lateness());
    FillServer(server.stats(i), out);
    out->set_injections_running(injector.running_on(static_cast<uint32_t>(i)));
    AddLoop(loops[i], total);
  }
  admin::LoopStats* out = stats.mutable_total();
  FillLoop(total, out);
  FillLateness(total.timer_lateness, out->mutable_timer_lateness());
  FillServer(server.stats(), out);
  uint64_t running = 0;
  for (size_t i = 0; i < loops.size(); ++i) running += injector.running_on(static_cast<uint32_t>(i));
  out->set_injections_running(running);
  stats.set_uptime_seconds(Seconds(MonotonicNanos() - server.started_at_ns()));
  ToProto(server.throttle(), stats.mutable_throttle());
  for (const InjectionStatus& i : injector.Active()) ToProto(i, server.started_at_ns(), stats.add_injections());
  stats.set_draining(server.drain_started_at_ns() != 0);
  return stats;
}

void ToProto(const server::ThrottleSettings& settings, admin::Throttle* out) {
  out->set_bytes_per_second_per_connection(settings.bytes_per_second_per_connection);
  out->set_bytes_per_second_total(settings.bytes_per_second_total);
  out->set_accepts_per_second(settings.accepts_per_second);
  out->set_max_connections(settings.max_connections);
  out->set_accepting_paused(settings.accepting_paused);
}

void ToProto(const InjectionStatus& injection, int64_t started_at_ns, admin::Injection* out) {
  out->set_id(injection.id);
  out->set_kind(KindToProto(injection.spec.kind));
  out->set_duration_ms(WholeMillis(injection.spec.duration));
  out->set_count(injection.spec.count);
  out->set_interval_ms(WholeMillis(injection.spec.interval));
  for (uint32_t loop : injection.spec.loops) out->add_loops(loop);
  out->set_state(StateToProto(injection.state));
  out->set_runs_started(injection.runs_started);
  out->set_runs_finished(injection.runs_finished);
  out->set_injected_at_uptime_seconds(Seconds(injection.injected_at_ns - started_at_ns));
}

void ToProto(const SocketInfo& socket, uint32_t loop, admin::SocketInfo* out) {
  out->set_fd(socket.fd);
  out->set_loop(loop);
  out->set_kind(socket.kind);
  out->set_local(socket.local);
  out->set_peer(socket.peer);
  out->set_age_seconds(Seconds(socket.age_ns));
  out->set_bytes_in(socket.bytes_in);
  out->set_bytes_out(socket.bytes_out);
  out->set_bytes_queued(socket.bytes_queued);
  out->set_in_read_set(socket.in_read_set);
  out->set_in_write_set(socket.in_write_set);
}

void ToProto(const StallReport& stall, int64_t started_at_ns, admin::Stall* out) {
  out->set_loop(stall.loop_id);
  out->set_task(stall.task);
  out->set_duration_ms(Millis(stall.duration_ns));
  out->set_tasks_run_before(stall.tasks_run_before);
  out->set_sequence(stall.sequence);
  out->set_detected_at_uptime_seconds(Seconds(stall.detected_at_ns - started_at_ns));
}

}  // namespace brrr::control
