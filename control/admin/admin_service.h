// admin_service.h: brrr.admin.v1.Admin (proto/brrr/admin/v1/admin.proto) over what the admin
// plane administers (administered.h): information, live statistics, sockets, throttles,
// injected tasks, closing connections, draining, and stalls.
//
// Statistics come from each loop's published figures (LoopStats, ShardCounters): reading them
// takes no lock on a loop and never waits for one, so the admin plane answers while a loop is
// blocked, and shows the task that blocks it. Actions that touch a loop's sockets (ListSockets,
// CloseConnection) run inside that loop, every loop they concern asked at once, and give up with
// UNAVAILABLE after kLoopCallTimeout (sooner when the call's deadline would pass first, so that
// the caller learns what blocks the loop): then the action did not happen there, and will not later
// (runtime/call_in_loop.h). CloseConnection without a loop is answered as soon as the loop that
// owns the descriptor has closed it, whether or not another loop is blocked.
// The access rule is not its concern: AdminServer guards every method (call_gate.h).
//
// The streams (WatchStats, WatchStalls) sleep in the admin plane's StreamWaits between two
// messages: a sample's time, a stall as it is recorded, and the shutdown wake them; a client
// that went away is seen within StreamWaits::kCancelCheck. Its shutdown ends them at once, with
// UNAVAILABLE: the server is shutting down.
//
// Threads: gRPC's threads call it; the Administered, the injector and the waits must outlive it.
#ifndef BRRR_CONTROL_ADMIN_SERVICE_H_
#define BRRR_CONTROL_ADMIN_SERVICE_H_

#include <string>
#include <vector>

#include "brrr/admin/v1/admin.grpc.pb.h"
#include "control/admin/administered.h"
#include "control/admin/stream_waits.h"
#include "control/admin/task_injector.h"
#include "control/admin/unread_streams.h"
#include "runtime/plugin_loader.h"

namespace brrr::control {

class AdminService final : public brrr::admin::v1::Admin::Service {
 public:
  static constexpr Duration kLoopCallTimeout = std::chrono::seconds(5);

  // Who a call came from, given its grpc::ServerContext::peer(): the admin listener relays
  // connections to gRPC, which names each by its end of the relay ("fd:N"; AdminListener::ClientOf).
  using ClientOf = UnreadStreams::ClientOf;

  // `backends`: what the plugin loader found at start, reported by GetServerInfo. `unread` ends
  // the streams whose client stopped reading; `waits` is where they sleep, whose ShutDown() ends
  // them. `client_of` names callers in what the service logs (none: as gRPC names them).
  AdminService(Administered& target, std::vector<BackendProbe> backends, TaskInjector& injector, UnreadStreams& unread,
               StreamWaits& waits, ClientOf client_of = nullptr);

  using Context = grpc::ServerContext;
  grpc::Status GetServerInfo(Context* context, const brrr::admin::v1::GetServerInfoRequest* request,
                             brrr::admin::v1::ServerInfo* info) override;
  grpc::Status GetStats(Context* context, const brrr::admin::v1::GetStatsRequest* request,
                        brrr::admin::v1::Stats* stats) override;
  grpc::Status WatchStats(Context* context, const brrr::admin::v1::WatchStatsRequest* request,
                          grpc::ServerWriter<brrr::admin::v1::Stats>* writer) override;
  grpc::Status ListSockets(Context* context, const brrr::admin::v1::ListSocketsRequest* request,
                           brrr::admin::v1::ListSocketsResponse* response) override;
  grpc::Status SetThrottle(Context* context, const brrr::admin::v1::SetThrottleRequest* request,
                           brrr::admin::v1::Throttle* response) override;
  grpc::Status GetThrottle(Context* context, const brrr::admin::v1::GetThrottleRequest* request,
                           brrr::admin::v1::Throttle* response) override;
  grpc::Status InjectTask(Context* context, const brrr::admin::v1::InjectTaskRequest* request,
                          brrr::admin::v1::Injection* response) override;
  grpc::Status ListInjections(Context* context, const brrr::admin::v1::ListInjectionsRequest* request,
                              brrr::admin::v1::ListInjectionsResponse* response) override;
  grpc::Status CancelInjection(Context* context, const brrr::admin::v1::CancelInjectionRequest* request,
                               brrr::admin::v1::Injection* response) override;
  grpc::Status CloseConnection(Context* context, const brrr::admin::v1::CloseConnectionRequest* request,
                               brrr::admin::v1::CloseConnectionResponse* response) override;
  grpc::Status Drain(Context* context, const brrr::admin::v1::DrainRequest* request,
                     brrr::admin::v1::DrainResponse* response) override;
  grpc::Status SetStallThreshold(Context* context, const brrr::admin::v1::SetStallThresholdRequest* request,
                                 brrr::admin::v1::StallThresholds* response) override;
  grpc::Status WatchStalls(Context* context, const brrr::admin::v1::WatchStallsRequest* request,
                           grpc::ServerWriter<brrr::admin::v1::Stall>* writer) override;

 private:
  // The loops a request names (all when `loops` is empty); NOT_FOUND for one that does not exist.
  grpc::Status SelectLoops(const google::protobuf::RepeatedField<uint32_t>& loops,
                           std::vector<uint32_t>* selected) const;
  // How a stream ends: OK, or UNAVAILABLE saying so when the service shuts down under it (an
  // OK would look to the client like a stream that ran its course).
  grpc::Status StreamEnd(Context* context) const;
  // Who made the call: the client's address where client_of_ knows it.
  std::string CallerOf(const Context& context) const;

  Administered& target_;
  const std::vector<EventLoop*> loops_;
  std::vector<BackendProbe> backends_;
  TaskInjector& injector_;
  UnreadStreams& unread_;
  StreamWaits& waits_;
  const ClientOf client_of_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_SERVICE_H_
