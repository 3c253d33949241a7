// admin_service.h: brrr.admin.v1.Admin (proto/brrr/admin/v1/admin.proto) over a running
// EchoServer: server information and live statistics.
//
// Statistics come from each loop's published figures (LoopStats, ShardCounters): reading them
// takes no lock on a loop and never waits for one, so the admin plane answers while a loop is
// blocked, and shows the task that blocks it.
//
// Threads: gRPC's threads call it; the EchoServer must outlive it.
#ifndef BRRR_CONTROL_ADMIN_SERVICE_H_
#define BRRR_CONTROL_ADMIN_SERVICE_H_

#include <vector>

#include "brrr/admin/v1/admin.grpc.pb.h"
#include "runtime/plugin_loader.h"
#include "server/echo_server.h"

namespace brrr::control {

class AdminService final : public brrr::admin::v1::Admin::Service {
 public:
  // `backends`: what the plugin loader found at start, reported by GetServerInfo.
  AdminService(server::EchoServer& server, std::vector<BackendProbe> backends);

  grpc::Status GetServerInfo(grpc::ServerContext* context, const brrr::admin::v1::GetServerInfoRequest* request,
                             brrr::admin::v1::ServerInfo* info) override;
  grpc::Status GetStats(grpc::ServerContext* context, const brrr::admin::v1::GetStatsRequest* request,
                        brrr::admin::v1::Stats* stats) override;

  // The figures GetStats returns (also for WatchStats-style callers and tests).
  brrr::admin::v1::Stats CollectStats() const;

 private:
  server::EchoServer& server_;
  std::vector<BackendProbe> backends_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_SERVICE_H_
