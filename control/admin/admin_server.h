// admin_server.h: the gRPC server of the admin plane: brrr.admin.v1.Admin, grpc.health.v1
// (from Debian grpc-proto's health.proto, so reflection can describe it) and server
// reflection, on its own threads next to the echo server's loops.
//
// It administers what `target` (administered.h) lets it see and do.
//
// The way in stays open: the listener (control/admin/admin_listener.h) caps the admin
// connections open at once and the calls each has open, the call gate the calls in progress
// (each holds a gRPC thread; a stream for its whole life), gRPC closes connections idle for
// `idle_timeout`, and the echo server leaves descriptors free for them
// (EchoServerOptions::reserved_descriptors, which brrr-echo sets from --admin_reserved_fds). Start the admin server
// before the echo server's Start(), which measures what is open then.
//
//   AdminServerOptions o{.host = "127.0.0.1", .port = 5001};
//   auto admin = AdminServer::Start(o, administered, loader.Probe());
//   ... (*admin)->address() ...   // "127.0.0.1:5001"
//   (*admin)->Shutdown();         // before the echo server goes away
//
// Threads: Start and Shutdown from one thread; the services run on gRPC's.
#ifndef BRRR_CONTROL_ADMIN_SERVER_H_
#define BRRR_CONTROL_ADMIN_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/admin/admin_figures.h"
#include "control/admin/administered.h"
#include "control/admin/call_auth.h"
#include "control/admin/call_slots.h"
#include "grpcpp/server.h"
#include "runtime/plugin_loader.h"
#include "runtime/unique_fd.h"

namespace brrr::control {

class AdminListener;
class AdminService;
class HealthService;
class StreamWaits;
class TaskInjector;
class UnknownMethodGate;
class UnreadStreams;

struct AdminServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: not served
  // Who may call (--admin_token_file); open by default.
  CallAuth auth;
  // The longest blocking task InjectTask accepts (--admin_max_block).
  Duration max_block = std::chrono::seconds(10);
  // Admin connections open at once (--admin_max_connections); past it new ones are closed.
  uint32_t max_connections = 16;
  // Calls in progress at once, streams included (--admin_max_calls); past it a call is answered
  // RESOURCE_EXHAUSTED (call_slots.h).
  uint32_t max_calls = 64;
  // A connection without a call in progress for this long is closed (--admin_idle_timeout).
  Duration idle_timeout = std::chrono::seconds(60);
  // A stream whose client has taken nothing for this long while a message waited for it is
  // ended, CANCELLED (--admin_unread_timeout; unread_streams.h).
  Duration unread_timeout = std::chrono::seconds(60);
  // A listening socket handed over by the process this one takes over from
  // (server/take_over.h): accepted on instead of binding host:port. Owned by Start from then
  // on (closed if it fails). -1: bind.
  int listener_fd = -1;
};

class AdminServer {
 public:
  // Binds host:port and starts serving. Errors: a host that is not an IP address
  // (InvalidArgument), a port in use or not permitted (Unavailable).
  static absl::StatusOr<std::unique_ptr<AdminServer>> Start(const AdminServerOptions& options, Administered& target,
                                                            std::vector<BackendProbe> backends);
  ~AdminServer();  // shuts down if still serving
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // "host:port" ("[::1]:5001" for IPv6).
  const std::string& address() const { return address_; }
  // Stops taking calls and ends the ones in progress (streams included). Idempotent.
  void Shutdown();

  // For a hand-over (server/handover_listener.h): a duplicate of the listening socket
  // (close-on-exec); FailedPrecondition once it no longer accepts.
  absl::StatusOr<UniqueFd> DuplicateListener() const;
  // Closes the listening socket (the process it was handed to serves the port now); calls on
  // connections already open go on. Call it, DuplicateListener and Shutdown one at a time.
  void StopAccepting();

  // The admin plane's figures of a loop (admin_figures.h), for the metrics port: callable from
  // any thread, also after Shutdown (its figures are 0 then) and after this server is gone.
  std::function<AdminLoopStats(size_t loop)> figures_of() const;

 private:
  AdminServer() = default;

  std::string address_;
  CallAuth auth_;
  std::unique_ptr<CallSlots> call_slots_;      // the gate's; outlives server_
  std::shared_ptr<TaskInjector> injector_;     // figures_of() borrows it while it lives
  std::unique_ptr<UnreadStreams> unread_;      // the services' streams write through it; outlives them
  std::unique_ptr<StreamWaits> stream_waits_;  // the services' streams sleep in it; outlives them
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<HealthService> health_;
  std::vector<std::unique_ptr<grpc::Service>> reflection_;  // v1 and v1alpha; they use auth_
  std::unique_ptr<UnknownMethodGate> unknown_methods_;      // uses auth_; outlives server_
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<AdminListener> listener_;  // hands connections to server_
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_SERVER_H_
