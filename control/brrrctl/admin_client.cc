#include "control/brrrctl/admin_client.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "control/admin/bearer_token.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace brrr::control {
namespace {

std::shared_ptr<grpc::Channel> MakeChannel(const AdminClientOptions& options) {
  grpc::ChannelArguments arguments;
  // The receive window stays HTTP/2's 64 KiB: without bandwidth probing gRPC does not grow it
  // to megabytes. A stream whose output nobody takes (`brrrctl watch | less`, scrolled back, or
  // a suspended brrrctl) then stops the server's writes within that window, and the server ends
  // it after --admin_unread_timeout, freeing its call slot; with a grown window it held the slot
  // for hours. brrrctl's messages are small: the window costs them nothing.
  arguments.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  if (options.max_reconnect_backoff > absl::ZeroDuration()) {
    int backoff_ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(options.max_reconnect_backoff)));
    arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, backoff_ms);
    arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, backoff_ms);
    // Channels share subchannels (and their backoff) by default: this one keeps its own.
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  return grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), arguments);
}

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration timeout) {
  return absl::ToChronoTime(absl::Now() + timeout);
}

// What answered at the target when it is not a gRPC server, from gRPC's message on the failed
// connection: brrr-echo's other ports, the usual mistakes. Empty when gRPC names neither.
const char* NotAnAdminPlane(const std::string& message) {
  if (absl::StrContains(message, "Trying to connect an http1.x server")) {
    return " (an HTTP/1.x server answers there, not gRPC: brrr-echo's --metrics_port? The admin plane is its "
           "--admin_port)";
  }
  if (absl::StrContains(message, "Failed parsing HTTP/2")) {
    return " (what answers there does not speak gRPC: brrr-echo's echo --port, which sends back what it is sent? "
           "The admin plane is its --admin_port)";
  }
  return "";
}

}  // namespace

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return absl::StrCat("CODE_", static_cast<int>(code));
  }
}

absl::StatusOr<std::unique_ptr<AdminClient>> AdminClient::Create(const AdminClientOptions& options) {
  if (options.target.empty()) {
    return absl::InvalidArgumentError("--target is empty: give the admin plane's HOST:PORT (brrr-echo --admin_port)");
  }
  if (options.timeout <= absl::ZeroDuration() || options.timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout=", absl::FormatDuration(options.timeout), ": must be positive and finite"));
  }
  std::string token;
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> read = ReadBearerTokenFile("--token_file", options.token_file);
    if (!read.ok()) return read.status();
    token = *std::move(read);
  }
  return std::unique_ptr<AdminClient>(new AdminClient(options, std::move(token)));
}

AdminClient::AdminClient(AdminClientOptions options, std::string token)
    : options_(std::move(options)),
      token_(std::move(token)),
      channel_(MakeChannel(options_)),
      admin_(brrr::admin::v1::Admin::NewStub(channel_)),
      health_(grpc::health::v1::Health::NewStub(channel_)) {}

void AdminClient::AddToken(grpc::ClientContext* context) const {
  // Call credentials would be refused on an insecure channel: plain metadata it is.
  if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
}

Outcome AdminClient::Call(const std::function<grpc::Status(grpc::ClientContext*)>& rpc) const {
  grpc::ClientContext context;
  AddToken(&context);
  context.set_deadline(DeadlineAfter(options_.timeout));
  return Explain(rpc(&context));
}

std::unique_ptr<grpc::ClientContext> AdminClient::StreamContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  AddToken(context.get());
  return context;
}

Outcome AdminClient::AwaitConnection() const {
  auto deadline = DeadlineAfter(options_.timeout);
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY && state != GRPC_CHANNEL_TRANSIENT_FAILURE) {
    if (!channel_->WaitForStateChange(state, deadline)) {
      return {ExitCode::kUnreachable,
              absl::StrCat("cannot reach the admin plane at ", options_.target, ": no connection within --timeout=",
                           absl::FormatDuration(options_.timeout))};
    }
    state = channel_->GetState(/*try_to_connect=*/true);
  }
  return Outcome::Ok();
}

bool AdminClient::connected() const { return channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY; }

Outcome AdminClient::Explain(const grpc::Status& status, StreamReach reach) const {
  if (status.ok()) return Outcome::Ok();
  std::string what = StatusCodeName(status.error_code());
  if (!status.error_message().empty()) absl::StrAppend(&what, ": ", status.error_message());
  const grpc::StatusCode code = status.error_code();
  const bool ended = (reach == StreamReach::kDelivered && code != grpc::StatusCode::UNAUTHENTICATED) ||
                     (reach == StreamReach::kOpened &&
                      (code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED));
  if (ended) return Outcome::ServerError(absl::StrCat("the stream from ", options_.target, " ended: ", what));
  switch (status.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
      return {ExitCode::kUnauthenticated,
              absl::StrCat(what, token_.empty() ? " (this admin plane wants a token: pass --token_file)"
                                                : absl::StrCat(" (the token in --token_file=", options_.token_file,
                                                               " was refused)"))};
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (!connected()) {
        // The connection was made and closed at once: what an admin plane at its
        // --admin_max_connections does (it says so on its stderr).
        const char* closed = absl::StrContains(status.error_message(), "Socket closed")
                                 ? " (the server closed the connection: one at its --admin_max_connections does)"
                                 : NotAnAdminPlane(status.error_message());
        return {ExitCode::kUnreachable,
                absl::StrCat("cannot reach the admin plane at ", options_.target, ": ", what, closed)};
      }
      if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        absl::StrAppend(&what, " (no answer within ", absl::FormatDuration(options_.timeout), ", ",
                        options_.timeout_source, ")");
      }
      return Outcome::ServerError(std::move(what));
    case grpc::StatusCode::UNIMPLEMENTED:
      return Outcome::ServerError(
          absl::StrCat(what, " (this server does not offer the call: a brrr-echo older than brrrctl?)"));
    default:
      return Outcome::ServerError(std::move(what));
  }
}

}  // namespace brrr::control
