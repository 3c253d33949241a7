#include "control/admin/admin_convert.h"

#include <string>
#include <vector>

#include "control/admin/stats_proto.h"
#include "runtime/clock.h"

namespace brrr::control {

namespace admin = brrr::admin::v1;

namespace {

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }
double Millis(int64_t ns) { return static_cast<double>(ns) / 1e6; }

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

admin::Stats CollectStats(const Administered& target, TaskInjector& injector) {
  admin::Stats stats;
  std::vector<LoopStats> loops;
  for (const EventLoop* loop : target.loops()) loops.push_back(loop->stats());
  // The total is the sum of the figures this response shows for each loop, each read once: a
  // second read for the total would also count what happened in between (a close counted
  // after its loop was read), and the total would not be the sum of its loops.
  LoopStats total;
  server::ServerStats echo_total;
  AdminLoopStats admin_total;
  for (size_t i = 0; i < loops.size(); ++i) {
    admin::LoopStats* out = stats.add_loops();
    out->set_loop(static_cast<uint32_t>(i));
    FillLoopFigures(loops[i], out);
    const server::ServerStats echo = target.server_stats(i);
    FillEchoFigures(echo, out);
    const AdminLoopStats own = injector.figures(static_cast<uint32_t>(i));
    FillAdminFigures(own, out);
    total += loops[i];
    echo_total += echo;
    admin_total += own;
  }
  admin::LoopStats* out = stats.mutable_total();
  FillLoopFigures(total, out);
  FillEchoFigures(echo_total, out);
  FillAdminFigures(admin_total, out);
  stats.set_uptime_seconds(Seconds(MonotonicNanos() - target.started_at_ns()));
  ToProto(target.throttle(), stats.mutable_throttle());
  for (const InjectionStatus& i : injector.Active()) ToProto(i, target.started_at_ns(), stats.add_injections());
  stats.set_draining(target.drain_started_at_ns() != 0);
  stats.set_drain_phase(ToProto(target.drain_phase()));
  return stats;
}

admin::DrainPhase ToProto(server::DrainPhase phase) {
  switch (phase) {
    case server::DrainPhase::kServing:
      return admin::DRAIN_PHASE_SERVING;
    case server::DrainPhase::kGrace:
      return admin::DRAIN_PHASE_GRACE;
    case server::DrainPhase::kFinishing:
      return admin::DRAIN_PHASE_FINISHING;
    case server::DrainPhase::kClosing:
      return admin::DRAIN_PHASE_CLOSING;
  }
  return admin::DRAIN_PHASE_SERVING;
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
  out->set_in_progress(stall.in_progress);
  out->clear_samples();
  for (const StallSample& sample : stall.samples) {
    admin::StallSample* s = out->add_samples();
    s->set_running_ms(Millis(sample.running_ns));
    for (const std::string& frame : sample.frames) s->add_frames(frame);
  }
  out->clear_since_first_sample();
  if (std::optional<StallTimeSplit> split = SplitSinceFirstSample(stall)) {
    admin::StallTimeSplit* t = out->mutable_since_first_sample();
    t->set_span_ms(Millis(split->span_ns));
    t->set_on_core_ms(Millis(split->on_core_ns));
    t->set_waiting_for_core_ms(Millis(split->waiting_for_core_ns));
    t->set_asleep_or_blocked_ms(Millis(split->off_core_ns));
  }
}

}  // namespace brrr::control
