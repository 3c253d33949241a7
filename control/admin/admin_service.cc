#include "control/admin/admin_service.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "control/admin/admin_convert.h"
#include "control/admin/stall_feed.h"
#include "control/admin/version.h"
#include "runtime/call_in_loop.h"
#include "runtime/clock.h"
#include "runtime/socket_address.h"

namespace brrr::control {

namespace admin = brrr::admin::v1;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

namespace {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

grpc::Status InvalidArgument(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

// Who made the call. gRPC names a connection that the admin listener handed over by its
// descriptor ("fd:12"); while the call runs, that descriptor is the caller's socket.
std::string CallerOf(const grpc::ServerContext& context) {
  std::string peer = context.peer();
  int fd = -1;
  if (absl::StartsWith(peer, "fd:") && absl::SimpleAtoi(absl::string_view(peer).substr(3), &fd)) {
    if (absl::StatusOr<SocketAddress> address = SocketAddress::PeerOf(fd); address.ok()) return address->ToString();
  }
  return peer;
}

}  // namespace

AdminService::AdminService(Administered& target, std::vector<BackendProbe> backends, TaskInjector& injector)
    : target_(target), loops_(target.loops()), backends_(std::move(backends)), injector_(injector) {}

grpc::Status AdminService::SelectLoops(const google::protobuf::RepeatedField<uint32_t>& loops,
                                       std::vector<uint32_t>* selected) const {
  uint32_t count = static_cast<uint32_t>(loops_.size());
  selected->clear();
  for (uint32_t loop : loops) {
    if (loop >= count) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("no loop ", loop, ": the server runs loops 0 to ", count - 1));
    }
    selected->push_back(loop);
  }
  if (selected->empty()) {
    for (uint32_t i = 0; i < count; ++i) selected->push_back(i);
  }
  std::sort(selected->begin(), selected->end());
  selected->erase(std::unique(selected->begin(), selected->end()), selected->end());
  return grpc::Status::OK;
}

bool AdminService::WaitUntil(Context* context, SteadyClock::time_point until) const {
  for (;;) {
    if (context->IsCancelled() || shutting_down_.load()) return false;
    SteadyClock::time_point now = SteadyClock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<SteadyClock::duration>(until - now, kStreamPoll));
  }
}

grpc::Status AdminService::GetServerInfo(Context* /*context*/, const admin::GetServerInfoRequest*,
                                         admin::ServerInfo* info) {
  info->set_version(kVersion);
  info->set_backend(target_.backend());
  info->set_loops(static_cast<uint32_t>(loops_.size()));
  for (const std::string& address : target_.listening_addresses()) info->add_listening_addresses(address);
  info->set_uptime_seconds(Seconds(MonotonicNanos() - target_.started_at_ns()));
  info->set_pid(static_cast<uint32_t>(::getpid()));
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
  uint32_t interval_ms = request->interval_ms() == 0 ? 1000 : request->interval_ms();
  if (interval_ms < kMinWatchIntervalMs || interval_ms > kMaxWatchIntervalMs) {
    return InvalidArgument(absl::StrCat("interval_ms=", interval_ms, " is out of range: allowed ",
                                        kMinWatchIntervalMs, " to ", kMaxWatchIntervalMs, " (0 means 1000)"));
  }
  SteadyClock::time_point next = SteadyClock::now();
  for (uint32_t sent = 0; request->count() == 0 || sent < request->count(); ++sent) {
    if (sent > 0 && !WaitUntil(context, next)) break;
    if (!writer->Write(CollectStats(target_, injector_))) break;
    // Ticks keep to the interval; a tick missed (a slow client) is skipped, not bunched up.
    next += milliseconds(interval_ms);
    if (next < SteadyClock::now()) next = SteadyClock::now() + milliseconds(interval_ms);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::ListSockets(Context* /*context*/, const admin::ListSocketsRequest* request,
                                       admin::ListSocketsResponse* response) {
  uint32_t limit = request->limit() == 0 ? kDefaultSocketLimit : request->limit();
  if (limit > kMaxSocketLimit) {
    return InvalidArgument(absl::StrCat("limit=", limit, " is out of range: allowed 1 to ", kMaxSocketLimit,
                                        " (0 means ", kDefaultSocketLimit, ")"));
  }
  if (!admin::ListSocketsRequest::SetFilter_IsValid(request->set())) {
    return InvalidArgument(absl::StrCat("set=", request->set(), " is not a known filter: ALL, READ_SET, WRITE_SET or NEITHER"));
  }
  google::protobuf::RepeatedField<uint32_t> asked;
  if (request->has_loop()) asked.Add(request->loop());
  std::vector<uint32_t> loops;
  if (grpc::Status s = SelectLoops(asked, &loops); !s.ok()) return s;

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
  uint64_t matched = 0;
  for (uint32_t i : loops) {
    EventLoop* loop = loops_[i];
    absl::StatusOr<std::vector<SocketInfo>> sockets =
        CallInLoop(*loop, [loop] { return loop->socket_infos(); }, kLoopCallTimeout, "admin:list_sockets");
    if (!sockets.ok()) return ToGrpc(sockets.status());
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

grpc::Status AdminService::SetThrottle(Context* /*context*/, const admin::SetThrottleRequest* request,
                                       admin::Throttle* response) {
  server::ThrottleChange change;
  if (request->has_bytes_per_second_per_connection()) {
    change.bytes_per_second_per_connection = request->bytes_per_second_per_connection();
  }
  if (request->has_bytes_per_second_total()) change.bytes_per_second_total = request->bytes_per_second_total();
  if (request->has_accepts_per_second()) change.accepts_per_second = request->accepts_per_second();
  if (request->has_max_connections()) change.max_connections = request->max_connections();
  if (request->has_accepting_paused()) change.accepting_paused = request->accepting_paused();
  if (grpc::Status s = ToGrpc(target_.SetThrottle(change)); !s.ok()) return s;
  // Each loop takes the change in through its queue of cross-thread calls; once a call posted
  // after it has run, the change is in force there.
  for (EventLoop* loop : loops_) {
    absl::StatusOr<bool> applied = CallInLoop(*loop, [] { return true; }, kLoopCallTimeout, "admin:throttle_applied");
    if (!applied.ok()) {
      return ToGrpc(absl::UnavailableError(absl::StrCat("the throttles are set, but ", applied.status().message(),
                                                        "; it applies them once it gets to them")));
    }
  }
  ToProto(target_.throttle(), response);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetThrottle(Context* /*context*/, const admin::GetThrottleRequest*,
                                       admin::Throttle* response) {
  ToProto(target_.throttle(), response);
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
  InjectionSpec spec;
  switch (request->kind()) {
    case admin::BLOCKING_SPIN:
      spec.kind = InjectionKind::kBlockingSpin;
      break;
    case admin::BLOCKING_SLEEP:
      spec.kind = InjectionKind::kBlockingSleep;
      break;
    case admin::NONBLOCKING_SLEEP:
      spec.kind = InjectionKind::kNonblockingSleep;
      break;
    default:
      return InvalidArgument("kind must be BLOCKING_SPIN, BLOCKING_SLEEP or NONBLOCKING_SLEEP");
  }
  spec.duration = milliseconds(request->duration_ms());
  spec.count = request->count();
  spec.interval = milliseconds(request->interval_ms());
  spec.loops.assign(request->loops().begin(), request->loops().end());
  absl::StatusOr<InjectionStatus> injected = injector_.Inject(std::move(spec));
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
  if (request->id() == 0) return InvalidArgument("id is required: the id InjectTask returned (1, 2, ...)");
  absl::StatusOr<InjectionStatus> cancelled = injector_.Cancel(request->id());
  if (!cancelled.ok()) return ToGrpc(cancelled.status());
  ToProto(*cancelled, target_.started_at_ns(), response);
  return grpc::Status::OK;
}

grpc::Status AdminService::CloseConnection(Context* /*context*/, const admin::CloseConnectionRequest* request,
                                           admin::CloseConnectionResponse* response) {
  if (request->fd() < 0) return InvalidArgument(absl::StrCat("fd=", request->fd(), " is not a descriptor (see ListSockets)"));
  google::protobuf::RepeatedField<uint32_t> asked;
  if (request->has_loop()) asked.Add(request->loop());
  std::vector<uint32_t> loops;
  if (grpc::Status s = SelectLoops(asked, &loops); !s.ok()) return s;
  int fd = request->fd();
  for (uint32_t i : loops) {
    absl::StatusOr<absl::StatusOr<SocketInfo>> closed = CallInLoop(
        *loops_[i], [this, i, fd] { return target_.CloseConnection(i, fd); }, kLoopCallTimeout,
        "admin:close_connection");
    if (!closed.ok()) return ToGrpc(closed.status());
    if (closed->ok()) {
      ToProto(**closed, i, response->mutable_closed());
      return grpc::Status::OK;
    }
    if (!absl::IsNotFound(closed->status())) return ToGrpc(closed->status());
  }
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      request->has_loop() ? absl::StrCat("no connection with fd ", fd, " on loop ", request->loop())
                                          : absl::StrCat("no connection with fd ", fd, " on any loop"));
}

grpc::Status AdminService::Drain(Context* context, const admin::DrainRequest*, admin::DrainResponse* response) {
  response->set_already_draining(target_.drain_started_at_ns() != 0);
  response->set_connections_open(target_.server_stats().connections_active);
  if (!response->already_draining()) {
    std::printf("brrr-echo: Drain from the admin plane (%s): draining\n", CallerOf(*context).c_str());
    std::fflush(stdout);
  }
  target_.Drain();
  return grpc::Status::OK;
}

grpc::Status AdminService::SetStallThreshold(Context* /*context*/, const admin::SetStallThresholdRequest* request,
                                             admin::StallThresholds* response) {
  double ms = request->threshold_ms();
  if (!std::isfinite(ms) || ms < 1 || ms > 60'000) {
    return InvalidArgument(absl::StrCat("threshold_ms=", ms, " is out of range: allowed 1 to 60000"));
  }
  std::vector<uint32_t> loops;
  if (grpc::Status s = SelectLoops(request->loops(), &loops); !s.ok()) return s;
  // An atomic each loop reads after every task: no need to go through the loop.
  for (uint32_t i : loops) {
    loops_[i]->stall_detector().set_threshold_ns(static_cast<int64_t>(ms * 1e6));
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
  // in both is sent once (sequences rise per loop).
  StallFeed feed(loops, request->include_in_progress());
  // loop -> the last sequence of a stall whose end was sent. A sample of a stall in progress
  // has the sequence its end will have, and never comes after that end.
  std::map<uint32_t, uint64_t> sent_up_to;
  admin::Stall message;
  auto send = [&](const StallReport& r) {
    if (r.sequence <= sent_up_to[r.loop_id]) return true;
    if (!r.in_progress) sent_up_to[r.loop_id] = r.sequence;
    ToProto(r, target_.started_at_ns(), &message);
    return writer->Write(message);
  };
  if (request->include_recent()) {
    for (const StallReport& r : feed.Recent()) {
      if (!send(r)) return grpc::Status::OK;
    }
  }
  while (!context->IsCancelled() && !shutting_down_.load()) {
    std::optional<StallReport> next = feed.Next(SteadyClock::now() + kStreamPoll);
    if (next.has_value() && !send(*next)) break;
  }
  return grpc::Status::OK;
}

}  // namespace brrr::control
