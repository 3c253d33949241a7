#include "control/admin/admin_server.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "control/admin/admin_listener.h"
#include "control/admin/admin_service.h"
#include "control/admin/call_gate.h"
#include "control/admin/grpc_log.h"
#include "control/admin/reflection_service.h"
#include "control/admin/stream_waits.h"
#include "control/admin/task_injector.h"
#include "control/admin/unread_streams.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "runtime/socket_address.h"

namespace brrr::control {

namespace health = grpc::health::v1;

// gRPC threads beyond one per call allowed in progress: its pollers (two at most, on the one
// completion queue) and those answering the calls past --admin_max_calls.
constexpr int kSpareThreads = 8;

namespace {

// Calls open at once on one connection: a call holds memory from its headers on, before its
// request (and the token check) comes, so without a bound one connection could open any
// number. One more than the calls allowed in progress, so that the call past them is still
// answered RESOURCE_EXHAUSTED rather than left waiting.
uint32_t MaxCallsOpenPerConnection(const AdminServerOptions& options) { return options.max_calls + 1; }

}  // namespace

// grpc.health.v1.Health: SERVING while the echo server accepts, NOT_SERVING once it drains.
// Services: "" (the whole server) and "brrr.admin.v1.Admin"; for any other, Check answers
// NOT_FOUND and Watch SERVICE_UNKNOWN, keeping the call open (as health.proto asks of both).
class HealthService final : public health::Health::Service {
 public:
  // `waits`: where Watch sleeps; the drain's start wakes it there.
  HealthService(Administered& target, UnreadStreams& unread, StreamWaits& waits)
      : target_(target), unread_(unread), waits_(waits) {
    drain_watcher_ = target_.AddDrainWatcher([this] { waits_.Notify(); });
  }
  ~HealthService() override { target_.RemoveDrainWatcher(drain_watcher_); }

  grpc::Status Check(grpc::ServerContext* /*context*/, const health::HealthCheckRequest* request,
                     health::HealthCheckResponse* response) override {
    if (!Known(request->service())) return UnknownService(request->service());
    response->set_status(Current());
    return grpc::Status::OK;
  }

  // Sends the status now and again whenever it changes, until the client goes away or the
  // admin server shuts down. It sleeps in between (stream_waits.h): the drain's start and the
  // shutdown wake it (the drain's NOT_SERVING goes out as the drain starts), a client that went
  // away is seen within StreamWaits::kCancelCheck. The status is looked at once more after the
  // shutdown is seen, so a drain that ends as it starts still reaches the watcher as
  // NOT_SERVING. An unknown service's status is SERVICE_UNKNOWN, which never changes.
  grpc::Status Watch(grpc::ServerContext* context, const health::HealthCheckRequest* request,
                     grpc::ServerWriter<health::HealthCheckResponse>* writer) override {
    const bool known = Known(request->service());
    auto status_now = [&] { return known ? Current() : health::HealthCheckResponse::SERVICE_UNKNOWN; };
    health::HealthCheckResponse::ServingStatus sent = health::HealthCheckResponse::UNKNOWN;
    for (;;) {
      const bool last_look = waits_.shutting_down();
      const health::HealthCheckResponse::ServingStatus now = status_now();
      if (now != sent) {
        health::HealthCheckResponse response;
        response.set_status(now);
        if (!unread_.Write(*context, "health Watch", [&] { return writer->Write(response); })) break;
        sent = now;
      }
      if (last_look) break;
      // The shutdown ends the wait but not the loop: one more look first.
      if (waits_.Wait(*context, [&] { return status_now() != sent; }) == StreamWaits::Woken::kCancelled) break;
    }
    return grpc::Status::OK;
  }

 private:
  static bool Known(const std::string& service) { return service.empty() || service == "brrr.admin.v1.Admin"; }
  // The name as the client sent it, escaped and cut to 100 bytes: the message goes back in
  // a trailer, which gRPC caps (8 KiB by default), and in no case with the client's raw bytes.
  static grpc::Status UnknownService(const std::string& service) {
    constexpr size_t kShown = 100;
    std::string shown = absl::CHexEscape(absl::string_view(service).substr(0, kShown));
    if (service.size() > kShown) absl::StrAppend(&shown, "... (", service.size(), " bytes)");
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("unknown service \"", shown, "\"; known: \"\" and \"brrr.admin.v1.Admin\""));
  }
  health::HealthCheckResponse::ServingStatus Current() const {
    return target_.drain_started_at_ns() == 0 ? health::HealthCheckResponse::SERVING
                                              : health::HealthCheckResponse::NOT_SERVING;
  }

  Administered& target_;
  UnreadStreams& unread_;
  StreamWaits& waits_;
  uint64_t drain_watcher_ = 0;
};

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(const AdminServerOptions& options, Administered& target,
                                                                std::vector<BackendProbe> backends) {
  absl::StatusOr<SocketAddress> where = SocketAddress::Parse(options.host, options.port);
  if (!where.ok()) {
    if (options.listener_fd >= 0) ::close(options.listener_fd);
    return absl::InvalidArgumentError(
        absl::StrCat("--admin_host=", options.host, ": not an IP address (", where.status().message(), ")"));
  }
  RouteGrpcLogsThroughLineOutput();  // gRPC's threads must not wait for a stalled reader either
  std::unique_ptr<AdminServer> admin(new AdminServer());
  absl::StatusOr<std::unique_ptr<AdminListener>> listener =
      options.listener_fd >= 0
          ? AdminListener::Adopt(options.listener_fd, options.max_connections, MaxCallsOpenPerConnection(options))
          : AdminListener::Bind(*where, options.max_connections, MaxCallsOpenPerConnection(options));
  if (!listener.ok()) return listener.status();
  admin->listener_ = *std::move(listener);
  admin->address_ = admin->listener_->address().ToString();
  admin->auth_ = options.auth;
  admin->call_slots_ = std::make_unique<CallSlots>(options.max_calls);
  admin->injector_ = std::make_shared<TaskInjector>(target.loops(), options.max_block);
  auto client_of = [listener = admin->listener_.get()](const std::string& peer) { return listener->ClientOf(peer); };
  admin->unread_ = std::make_unique<UnreadStreams>(options.unread_timeout, client_of);
  admin->stream_waits_ = std::make_unique<StreamWaits>();
  admin->admin_ = std::make_unique<AdminService>(target, std::move(backends), *admin->injector_, *admin->unread_,
                                                 *admin->stream_waits_, client_of);
  admin->health_ = std::make_unique<HealthService>(target, *admin->unread_, *admin->stream_waits_);
  // Reflection in both versions of the protocol; list_services reports these.
  std::vector<std::string> services = {brrr::admin::v1::Admin::service_full_name(), health::Health::service_full_name(),
                                       ReflectionV1::Api::service_full_name(),
                                       ReflectionV1Alpha::Api::service_full_name()};
  admin->reflection_.push_back(std::make_unique<ReflectionV1Service>(services, admin->unread_.get()));
  admin->reflection_.push_back(std::make_unique<ReflectionV1AlphaService>(services, admin->unread_.get()));

  // No listening port of gRPC's own: the listener accepts and hands connections over.
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(
      GRPC_ARG_MAX_CONNECTION_IDLE_MS,
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(options.idle_timeout).count()));
  // The calls open at once on one connection. gRPC applies the bound once the client has
  // acknowledged the server's SETTINGS; the listener holds every connection to it from the first
  // byte (admin_listener.h).
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, static_cast<int>(MaxCallsOpenPerConnection(options)));
  // Threads: gRPC's synchronous server takes one for each piece of call work it finds while no
  // other waits for more, without bound, and every connection may have --admin_max_calls + 1
  // calls open (a flood of calls from clients that ignored the SETTINGS, before the listener
  // held them to that, made thousands of threads that kept the operator's calls waiting). So at
  // most one per call allowed in progress (each may hold one, a stream for its whole life) plus
  // kSpareThreads: the pollers, and the threads that answer the calls past the bound. Past that
  // gRPC answers a call RESOURCE_EXHAUSTED itself.
  grpc::ResourceQuota threads("brrr-admin");
  threads.SetMaxThreads(static_cast<int>(options.max_calls) + kSpareThreads);
  builder.SetResourceQuota(threads);
  // The access rule and the bound on calls in progress, once, for every method of every service,
  // and the rule for calls of methods none of them has (call_gate.h).
  CallAllowed mark_allowed = [listener = admin->listener_.get()](const std::string& peer) {
    listener->MarkAllowed(peer);
  };
  std::vector<grpc::Service*> all = {admin->admin_.get(), admin->health_.get()};
  for (const auto& reflection : admin->reflection_) all.push_back(reflection.get());
  for (grpc::Service* service : all) {
    GuardEveryMethod(*service, admin->auth_, admin->call_slots_.get(), mark_allowed);
    builder.RegisterService(service);
  }
  admin->unknown_methods_ = std::make_unique<UnknownMethodGate>(admin->auth_, mark_allowed);
  builder.RegisterCallbackGenericService(admin->unknown_methods_.get());
  admin->server_ = builder.BuildAndStart();
  if (admin->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("admin plane on ", admin->address_, ": the gRPC server did not start"));
  }
  admin->listener_->Start(admin->server_.get());
  return admin;
}

AdminServer::~AdminServer() { Shutdown(); }

std::function<AdminLoopStats(size_t loop)> AdminServer::figures_of() const {
  return [injector = std::weak_ptr<TaskInjector>(injector_)](size_t loop) {
    std::shared_ptr<TaskInjector> alive = injector.lock();
    return alive != nullptr ? alive->figures(static_cast<uint32_t>(loop)) : AdminLoopStats{};
  };
}

absl::StatusOr<UniqueFd> AdminServer::DuplicateListener() const {
  int fd = server_ == nullptr ? -1 : listener_->Duplicate();
  if (fd < 0) {
    return server_ == nullptr || errno == EBADF ? absl::FailedPreconditionError("the admin plane no longer accepts")
                                                : absl::ErrnoToStatus(errno, "duplicating the admin listener");
  }
  return UniqueFd(fd);
}

void AdminServer::StopAccepting() {
  if (listener_ != nullptr) listener_->StopAccepting();
}

void AdminServer::Shutdown() {
  if (server_ == nullptr) return;
  listener_->StopAccepting();  // no connection is handed to a server that shuts down
  stream_waits_->ShutDown();   // every stream of every service ends now
  // gRPC 1.51 shuts a connection down with a GOAWAY and a PING, and closes it only once the
  // client has answered the PING (or after 20 s); a client that holds a connection between calls
  // (brrrctl top, a grpcurl channel) reads nothing then, and gRPC's shutdown waited for it until
  // the deadline. The listener ends each connection once its GOAWAY has gone and no call is open.
  listener_->EndIdleConnections();
  // Calls in progress get a moment to finish; streams are cancelled at the deadline.
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  server_->Wait();
  listener_->Stop();  // after gRPC's last words (GOAWAY, a cancelled stream's status) went out
  server_.reset();
  injector_.reset();  // cancels injections still running
}

}  // namespace brrr::control
