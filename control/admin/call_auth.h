// call_auth.h: the admin plane's access rule: with --admin_token_file, every call (Admin,
// health and reflection alike) must carry the metadata `authorization: Bearer <token>`, and
// every HTTP request to the metrics port (/metrics, /healthz, /readyz) the same header;
// without it, everything is let in.
//
//   auto auth = CallAuth::FromTokenFile("/etc/brrr/admin.token");   // or CallAuth() = open
//   grpc::Status s = auth->Check(context);                           // OK or UNAUTHENTICATED
//   absl::Status http = auth->CheckHeader(values_of_authorization);  // Unauthenticated
//
// The admin server applies it to every method of every service, and to calls of methods none
// of them has, through call_gate.h; the metrics port to every HTTP request.
//
// The token is the file's content without surrounding whitespace, one word of visible ASCII
// (bearer_token.h); it is compared in constant time. A call or request with more than one
// `authorization` entry is refused, whatever they hold.
//
// Threads: immutable after construction; Check from any thread.
#ifndef BRRR_CONTROL_CALL_AUTH_H_
#define BRRR_CONTROL_CALL_AUTH_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"

namespace brrr::control {

class CallAuth {
 public:
  // Lets every call in.
  CallAuth() = default;
  // Reads the token (ReadBearerTokenFile). Errors: the file cannot be read (NotFound /
  // PermissionDenied...), or is a directory, or it holds no token or one no client could send
  // (InvalidArgument).
  static absl::StatusOr<CallAuth> FromTokenFile(const std::string& path);
  // For tests and embedders: requires exactly this token (not empty).
  static CallAuth WithToken(std::string token);

  bool required() const { return !token_.empty(); }
  // OK, or UNAUTHENTICATED saying what was missing or wrong (never the expected token).
  grpc::Status Check(const grpc::ServerContextBase& context) const;
  // The same rule for an HTTP request, given the values of its Authorization headers (none,
  // one, or several): OK, or Unauthenticated saying what was missing or wrong.
  absl::Status CheckHeader(const std::vector<absl::string_view>& values) const;

 private:
  // The rule itself; messages name the `call` ("call", "request") and what carries the token
  // (`what`: "metadata", "header").
  absl::Status CheckValues(const std::vector<absl::string_view>& values, absl::string_view call,
                           absl::string_view what) const;

  std::string token_;
};

}  // namespace brrr::control

#endif  // BRRR_CONTROL_CALL_AUTH_H_
