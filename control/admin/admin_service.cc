#include "control/admin/admin_service.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "control/admin/admin_convert.h"
#include "control/admin/connection_closer.h"
#include "control/admin/loop_wait.h"
#include "control/admin/request_checks.h"
#include "control/admin/stall_feed.h"
#include "runtime/call_in_loop.h"
#include "runtime/clock.h"
#include "runtime/line_output.h"
#include "runtime/version.h"

namespace brrr::control {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

RequestLimits LimitsOf(const std::vector<EventLoop*>& loops, const TaskInjector& injector) {
  return RequestLimits{.loops = static_cast<uint32_t>(loops.size()), .max_block = injector.max_block()};
}

// How long an action waits for a loop (loop_wait.h), given the caller's deadline.
Duration LoopWaitOf(const grpc::ServerContext& context) {
  return LoopWait(std::chrono::duration_cast<Duration>(context.deadline() - std::chrono::system_clock::now()),
                  AdminService::kLoopCallTimeout);
}

}  // namespace

AdminService::AdminService(Administered& target, std::vector<BackendProbe> backends, TaskInjector& injector,
                           UnreadStreams& unread, StreamWaits& waits, ClientOf client_of)
    : target_(target),
      loops_(target.loops()),
      backends_(std::move(backends)),
      injector_(injector),
      unread_(unread),
      waits_(waits),
      client_of_(std::move(client_of)) {}

std::string AdminService::CallerOf(const Context& context) const {
  return client_of_ != nullptr ? client_of_(context.peer()) : context.peer();
}

grpc::Status AdminService::SelectLoops(const google::protobuf::RepeatedField<uint32_t>& loops,
                                       std::vector<uint32_t>* selected) const {
  absl::StatusOr<std::vector<uint32_t>> checked = CheckLoops(loops, static_cast<uint32_t>(loops_.size()));
  if (!checked.ok()) return ToGrpc(checked.status());
  *selected = *std::move(checked);
  return grpc::Status::OK;
}

grpc::Status AdminService::StreamEnd(Context* context) const {
  if (!waits_.shutting_down() || context->IsCancelled()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "this brrr-echo is shutting down: the stream ends here (a new call reaches whatever serves the "
                      "admin port now)");
}

grpc::Status AdminService::GetServerInfo(Context* /*context*/, const admin::GetServerInfoRequest*,
                                         admin::ServerInfo* info) {
  info->set_version(kVersion);
  info->set_backend(target_.backend());
  info->set_loops(static_cast<uint32_t>(loops_.size()));
  for (const std::string& address : target_.listening_addresses()) info->add_listening_addresses(address);
  info->set_uptime_seconds(Seconds(MonotonicNanos() - target_.started_at_ns()));
  info->set_pid(static_cast<uint32_t>(::getpid()));
  info->set_drain_phase(ToProto(target_.drain_phase()));
  for (const BackendProbe& probe : backends_) {
    admin::BackendAvailability* b = info->add_available_backends();
    b->set_name(probe.name);
    b->set_starts(probe.status.ok());
    if (!probe.status.ok()) b->set_reason(std::string(probe.status.message()));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::GetStats(Context* /*context*/, const admin::GetStatsRequest*, admin::Stats* stats) {
  *stats = CollectStats(target_, injector_);
  return grpc::Status::OK;
}

grpc::Status AdminService::WatchStats(Context* context, const admin::WatchStatsRequest* request,
                                      grpc::ServerWriter<admin::Stats>* writer) {
  absl::StatusOr<uint32_t> checked = CheckWatchStats(*request);
  if (!checked.ok()) return ToGrpc(checked.status());
  const uint32_t interval_ms = *checked;
  SteadyClock::time_point next = SteadyClock::now();
  for (uint32_t sent = 0; request->count() == 0 || sent < request->count(); ++sent) {
    // Only the time wakes it, or its end (the shutdown, the client gone).
    if (sent > 0 && waits_.Wait(*context, next, [] { return false; }) != StreamWaits::Woken::kTime) break;
    const admin::Stats stats = CollectStats(target_, injector_);
    if (!unread_.Write(*context, "WatchStats", [&] { return writer->Write(stats); })) break;
    // Ticks keep to the interval; a tick missed (a slow client) is skipped, not bunched up.
    next += milliseconds(interval_ms);
    if (next < SteadyClock::now()) next = SteadyClock::now() + milliseconds(interval_ms);
  }
  return StreamEnd(context);
}

grpc::Status AdminService::ListSockets(Context* context, const admin::ListSocketsRequest* request,
                                       admin::ListSocketsResponse* response) {
  absl::StatusOr<SocketQuery> query = CheckListSockets(*request, LimitsOf(loops_, injector_));
  if (!query.ok()) return ToGrpc(query.status());
  const uint32_t limit = query->limit;
  const std::vector<uint32_t>& loops = query->loops;

  auto wanted = [set = request->set()](const SocketInfo& s) {
    switch (set) {
      case admin::ListSocketsRequest::READ_SET:
        return s.in_read_set;
      case admin::ListSocketsRequest::WRITE_SET:
        return s.in_write_set;
      case admin::ListSocketsRequest::NEITHER:
        return !s.in_read_set && !s.in_write_set;
      default:
        return true;
    }
  };
  std::vector<EventLoop*> asked;
  for (uint32_t i : loops) asked.push_back(loops_[i]);
  const Duration wait = LoopWaitOf(*context);
  // Every loop at once: a blocked one costs one timeout, whichever it is.
  std::vector<std::optional<std::vector<SocketInfo>>> answers = CallInLoops(
      asked, [asked](size_t k) { return asked[k]->socket_infos(); },
      [](const std::vector<SocketInfo>&) { return false; }, wait, "admin:list_sockets");
  uint64_t matched = 0;
  for (size_t k = 0; k < loops.size(); ++k) {
    const uint32_t i = loops[k];
    if (!answers[k].has_value()) {
      if (loops_[i]->finished()) continue;  // drained: no sockets
      return ToGrpc(detail::LoopDidNotAnswer(*loops_[i], wait));
    }
    std::vector<SocketInfo>* sockets = &*answers[k];
    std::sort(sockets->begin(), sockets->end(),
              [](const SocketInfo& a, const SocketInfo& b) { return a.age_ns < b.age_ns; });
    for (const SocketInfo& s : *sockets) {
      if (!wanted(s)) continue;
      ++matched;
      if (static_cast<uint32_t>(response->sockets_size()) < limit) ToProto(s, i, response->add_sockets());
    }
  }
  response->set_matched(matched);
  return grpc::Status::OK;
}

grpc::Status AdminService::SetThrottle(Context* context, const admin::SetThrottleRequest* request,
                                       admin::Throttle* response) {
  absl::StatusOr<server::ThrottleChange> change = CheckSetThrottle(*request);
  if (!change.ok()) return ToGrpc(change.status());
  if (int64_t since = target_.drain_started_at_ns(); since != 0 && change->accepting_paused == false) {
    // In its grace the server still accepts (a balancer takes it out meanwhile), until the grace ends.
    const bool in_grace = target_.drain_phase() == server::DrainPhase::kGrace;
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrFormat("the server has been draining for %.1f s: %s, and a drain cannot be taken "
                                        "back; nothing was changed",
                                        Seconds(MonotonicNanos() - since),
                                        in_grace ? "it accepts new connections only until its --drain_grace ends"
                                                 : "it accepts no new connection"));
  }
  if (grpc::Status s = ToGrpc(target_.SetThrottle(*change)); !s.ok()) return s;
  // Each loop takes the change in through its queue of cross-thread calls; once a call posted
  // after it has run, the change is in force there. Every loop at once.
  const Duration wait = LoopWaitOf(*context);
  std::vector<std::optional<bool>> applied = CallInLoops(
      loops_, [](size_t) { return true; }, [](bool) { return false; }, wait, "admin:throttle_applied");
  for (size_t i = 0; i < loops_.size(); ++i) {
    if (applied[i].has_value() || loops_[i]->finished()) continue;  // a drained loop accepts nothing
    return ToGrpc(absl::UnavailableError(absl::StrCat("the throttles are set, but ",
                                                      detail::LoopDidNotAnswer(*loops_[i], wait).message(),
                                                      "; it applies them once it gets to them")));
  }
  ToProto(target_.throttle(), response);
  response->set_draining(target_.drain_started_at_ns() != 0);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetThrottle(Context* /*context*/, const admin::GetThrottleRequest*,
                                       admin::Throttle* response) {
  ToProto(target_.throttle(), response);
  response->set_draining(target_.drain_started_at_ns() != 0);
  return grpc::Status::OK;
}

grpc::Status AdminService::InjectTask(Context* /*context*/, const admin::InjectTaskRequest* request,
                                      admin::Injection* response) {
  // A drain ends with the loops: runs injected now would only hold it up or be cut short.
  if (int64_t since = target_.drain_started_at_ns(); since != 0) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrFormat("the server has been draining for %.1f s: it takes no new injections",
                                        Seconds(MonotonicNanos() - since)));
  }
  absl::StatusOr<InjectionSpec> spec = CheckInjectTask(*request, LimitsOf(loops_, injector_));
  if (!spec.ok()) return ToGrpc(spec.status());
  absl::StatusOr<InjectionStatus> injected = injector_.Inject(*std::move(spec));
  if (!injected.ok()) return ToGrpc(injected.status());
  ToProto(*injected, target_.started_at_ns(), response);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListInjections(Context* /*context*/, const admin::ListInjectionsRequest*,
                                          admin::ListInjectionsResponse* response) {
  for (const InjectionStatus& i : injector_.List()) ToProto(i, target_.started_at_ns(), response->add_injections());
  return grpc::Status::OK;
}

grpc::Status AdminService::CancelInjection(Context* /*context*/, const admin::CancelInjectionRequest* request,
                                           admin::Injection* response) {
  if (absl::Status valid = CheckCancelInjection(*request); !valid.ok()) return ToGrpc(valid);
  absl::StatusOr<InjectionStatus> cancelled = injector_.Cancel(request->id());
  if (!cancelled.ok()) return ToGrpc(cancelled.status());
  ToProto(*cancelled, target_.started_at_ns(), response);
  return grpc::Status::OK;
}

grpc::Status AdminService::CloseConnection(Context* context, const admin::CloseConnectionRequest* request,
                                           admin::CloseConnectionResponse* response) {
  absl::StatusOr<std::vector<uint32_t>> loops = CheckCloseConnection(*request, LimitsOf(loops_, injector_));
  if (!loops.ok()) return ToGrpc(loops.status());
  absl::StatusOr<ClosedConnection> closed =
      ConnectionCloser(target_, request->fd(), request->peer()).Close(*loops, LoopWaitOf(*context));
  if (!closed.ok()) return ToGrpc(closed.status());
  ToProto(closed->socket, closed->loop, response->mutable_closed());
  return grpc::Status::OK;
}

grpc::Status AdminService::Drain(Context* context, const admin::DrainRequest*, admin::DrainResponse* response) {
  response->set_connections_open(target_.server_stats().connections_active);
  bool started = target_.Drain(
      [&] { PrintToStdout("brrr-echo: Drain from the admin plane (%s): draining\n", CallerOf(*context).c_str()); });
  response->set_already_draining(!started);
  return grpc::Status::OK;
}

grpc::Status AdminService::SetStallThreshold(Context* /*context*/, const admin::SetStallThresholdRequest* request,
                                             admin::StallThresholds* response) {
  absl::StatusOr<StallThresholdChange> change = CheckSetStallThreshold(*request, LimitsOf(loops_, injector_));
  if (!change.ok()) return ToGrpc(change.status());
  // An atomic each loop reads after every task: no need to go through the loop.
  for (uint32_t i : change->loops) {
    loops_[i]->stall_detector().set_threshold_ns(change->threshold_ns);
  }
  for (uint32_t i = 0; i < loops_.size(); ++i) {
    auto* t = response->add_loops();
    t->set_loop(i);
    t->set_threshold_ms(static_cast<double>(loops_[i]->stall_detector().threshold_ns()) / 1e6);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::WatchStalls(Context* context, const admin::WatchStallsRequest* request,
                                       grpc::ServerWriter<admin::Stall>* writer) {
  std::vector<uint32_t> selected;
  if (grpc::Status s = SelectLoops(request->loops(), &selected); !s.ok()) return s;
  std::vector<EventLoop*> loops;
  for (uint32_t i : selected) loops.push_back(loops_[i]);
  // Subscribed before the recent stalls are read, so none falls between the two; one that is
  // in both is sent once (sequences rise per loop). Each stall queued wakes the wait below.
  StallFeed feed(loops, request->include_in_progress(), [this] { waits_.Notify(); });
  // loop -> the last sequence of a stall whose end was sent. A sample of a stall in progress
  // has the sequence its end will have, and never comes after that end.
  std::map<uint32_t, uint64_t> sent_up_to;
  admin::Stall message;
  auto send = [&](const StallReport& r) {
    if (r.sequence <= sent_up_to[r.loop_id]) return true;
    if (!r.in_progress) sent_up_to[r.loop_id] = r.sequence;
    ToProto(r, target_.started_at_ns(), &message);
    return unread_.Write(*context, "WatchStalls", [&] { return writer->Write(message); });
  };
  if (request->include_recent()) {
    for (const StallReport& r : feed.Recent()) {
      if (!send(r)) return grpc::Status::OK;
    }
  }
  for (;;) {
    std::optional<StallReport> next;
    if (waits_.Wait(*context, [&] { return (next = feed.Next()).has_value(); }) != StreamWaits::Woken::kReady) break;
    if (!send(*next)) break;
  }
  return StreamEnd(context);
}

}  // namespace brrr::control
