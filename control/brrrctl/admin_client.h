// admin_client.h: brrrctl's side of a brrr-echo admin plane: the channel to --target, the
// Admin and Health stubs, the bearer token on every call, the --timeout deadline, and what a
// failed call means for brrrctl's exit code.
//
//   BRRR_ASSIGN_OR_RETURN(auto client, AdminClient::Create({"127.0.0.1:5001", "", absl::Seconds(5)}));
//   brrr::admin::v1::Stats stats;
//   Outcome outcome = client->Call([&](grpc::ClientContext* context) {
//     return client->admin().GetStats(context, {}, &stats);
//   });
//
// Reachability: a call that fails with UNAVAILABLE or DEADLINE_EXCEEDED while the channel is
// not connected never reached the server (ExitCode::kUnreachable); the same codes on a
// connected channel are the server's answer (ExitCode::kServerError). A stream opened on a
// connected channel reached the server, whatever ends it and whatever the channel is by then
// (a server shutting down ends its streams, then closes their connection).
//
// Threads: the stubs may be used from any thread; Create and Explain from one.
#ifndef BRRR_CONTROL_ADMIN_CLIENT_H_
#define BRRR_CONTROL_ADMIN_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "brrr/admin/v1/admin.grpc.pb.h"
#include "control/brrrctl/outcome.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace brrr::control {

struct AdminClientOptions {
  // A gRPC target: "127.0.0.1:5001", "[::1]:5001", "localhost:5001", "unix:/path"...
  std::string target;
  // A file holding the admin token (surrounding whitespace is ignored); empty: no token.
  std::string token_file;
  // Deadline of a unary call, and how long a stream waits for a connection.
  absl::Duration timeout = absl::Seconds(5);
  // Where the timeout came from, for the message of a call that ran past it.
  std::string timeout_source = "--timeout";
  // The longest wait before connecting again after a failed connection; zero: gRPC's default
  // (up to two minutes). `top` sets it short, to reconnect soon after a server comes back.
  absl::Duration max_reconnect_backoff = absl::ZeroDuration();
};

// The name of a gRPC status code, as in the gRPC docs: "INVALID_ARGUMENT", "UNAVAILABLE"...
std::string StatusCodeName(grpc::StatusCode code);

class AdminClient {
 public:
  // Reads the token and creates the channel (it connects on the first call). Errors
  // (InvalidArgument), as a message for the user: an empty target, a timeout that is not
  // positive, a --token_file that cannot be read, is a directory, holds no token, or holds more
  // than one word.
  static absl::StatusOr<std::unique_ptr<AdminClient>> Create(const AdminClientOptions& options);

  brrr::admin::v1::Admin::StubInterface& admin() { return *admin_; }
  grpc::health::v1::Health::StubInterface& health() { return *health_; }

  // A unary call: `rpc` gets a context with the token and the deadline; its status becomes
  // the outcome (Explain).
  Outcome Call(const std::function<grpc::Status(grpc::ClientContext*)>& rpc) const;

  // A context for a stream: the token, no deadline (streams run until they end or are
  // cancelled).
  std::unique_ptr<grpc::ClientContext> StreamContext() const;
  // Before a stream: waits up to the timeout for a connection. kOk when connected or when the
  // connection failed at once (the stream's own error then says why); kUnreachable when no
  // connection came within the timeout.
  Outcome AwaitConnection() const;
  // Whether the channel is connected now (read as a stream opens: StreamReach).
  bool connected() const;

  // How far a call got before it ended, for Explain.
  enum class StreamReach {
    kNone,       // a unary call, or a stream opened while the channel was not connected
    kOpened,     // a stream opened on a connected channel: the admin plane was reached
    kDelivered,  // a stream that delivered messages
  };

  // What a call's status means for brrrctl: kOk, kUnauthenticated, kUnreachable (naming the
  // target, and what answers there when it is not gRPC: an HTTP/1.x server such as brrr-echo's
  // metrics port, or one that does not speak HTTP/2 such as its echo port) or kServerError, with
  // "CODE: message" for stderr. A stream that reached the admin
  // plane (`reach`) and then ended is kServerError, "the stream from TARGET ended: CODE:
  // message" (a server shutting down ends its streams with UNAVAILABLE): whatever the code but
  // UNAUTHENTICATED once it delivered messages; UNAVAILABLE or DEADLINE_EXCEEDED when it only
  // opened (another code is the server's answer to the request, said as for a unary call).
  Outcome Explain(const grpc::Status& status, StreamReach reach = StreamReach::kNone) const;

  const std::string& target() const { return options_.target; }

 private:
  AdminClient(AdminClientOptions options, std::string token);
  void AddToken(grpc::ClientContext* context) const;

  AdminClientOptions options_;
  std::string token_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<brrr::admin::v1::Admin::StubInterface> admin_;
  std::unique_ptr<grpc::health::v1::Health::StubInterface> health_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_CLIENT_H_
