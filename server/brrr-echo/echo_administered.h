// echo_administered.h: brrr-echo's EchoServer as the admin plane sees it (control/admin/
// administered.h). Each method hands the call to the server: this adapter is where the echo
// server and the admin plane meet, so that neither depends on the other.
//
//   EchoAdministered administered(**server);
//   auto admin = control::AdminServer::Start(admin_options, administered, probes);
//
// Threads: as Administered. Ownership: borrows the server, which must outlive it.
#ifndef BRRR_SERVER_BRRR_ECHO_ECHO_ADMINISTERED_H_
#define BRRR_SERVER_BRRR_ECHO_ECHO_ADMINISTERED_H_

#include <cstdint>
#include <functional>
#include <utility>

#include "control/admin/administered.h"
#include "server/echo_server.h"

namespace brrr {

class EchoAdministered final : public control::Administered {
 public:
  explicit EchoAdministered(server::EchoServer& server) : server_(server) {}

  std::string backend() const override { return server_.backend(); }
  std::vector<std::string> listening_addresses() const override { return {server_.address().ToString()}; }
  int64_t started_at_ns() const override { return server_.started_at_ns(); }
  std::vector<EventLoop*> loops() const override;
  server::ServerStats server_stats(size_t loop) const override { return server_.stats(loop); }
  server::ServerStats server_stats() const override { return server_.stats(); }
  absl::StatusOr<SocketInfo> CloseConnection(size_t loop, int fd, absl::string_view peer) override {
    return server_.shard(loop).close_connection(fd, peer);
  }
  server::ThrottleSettings throttle() const override { return server_.throttle(); }
  absl::Status SetThrottle(const server::ThrottleChange& change) override { return server_.SetThrottle(change); }
  bool Drain(absl::FunctionRef<void()> announce) override { return server_.Drain(announce); }
  int64_t drain_started_at_ns() const override { return server_.drain_started_at_ns(); }
  uint64_t AddDrainWatcher(std::function<void()> started) override {
    return server_.AddDrainWatcher(std::move(started));
  }
  void RemoveDrainWatcher(uint64_t id) override { server_.RemoveDrainWatcher(id); }
  server::DrainPhase drain_phase() const override { return server_.drain_phase(); }

 private:
  server::EchoServer& server_;
};

}  // namespace brrr

#endif  // BRRR_SERVER_BRRR_ECHO_ECHO_ADMINISTERED_H_
