#include "control/admin/call_auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "control/admin/bearer_token.h"

namespace brrr::control {

absl::StatusOr<CallAuth> CallAuth::FromTokenFile(const std::string& path) {
  absl::StatusOr<std::string> token = ReadBearerTokenFile("--admin_token_file", path);
  if (!token.ok()) return token.status();
  return WithToken(*std::move(token));
}

CallAuth CallAuth::WithToken(std::string token) {
  CallAuth auth;
  auth.token_ = std::move(token);
  return auth;
}

namespace {

// Takes as long for a wrong token as for a right one of the same length.
bool ConstantTimeEquals(absl::string_view given, absl::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(expected[i]);
  }
  return diff == 0;
}

}  // namespace

grpc::Status CallAuth::Check(const grpc::ServerContextBase& context) const {
  if (token_.empty()) return grpc::Status::OK;
  std::vector<absl::string_view> values;
  auto [begin, end] = context.client_metadata().equal_range("authorization");
  for (auto it = begin; it != end; ++it) values.emplace_back(it->second.data(), it->second.size());
  absl::Status checked = CheckValues(values, "call", "metadata");
  if (checked.ok()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(checked.message()));
}

absl::Status CallAuth::CheckHeader(const std::vector<absl::string_view>& values) const {
  return CheckValues(values, "request", "header");
}

absl::Status CallAuth::CheckValues(const std::vector<absl::string_view>& values, absl::string_view call,
                                   absl::string_view what) const {
  if (token_.empty()) return absl::OkStatus();
  if (values.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("this admin plane requires the ", what, " \"authorization: Bearer <token>\""));
  }
  // Judging by one of several would let whichever a proxy or a library puts first decide.
  if (values.size() > 1) {
    return absl::UnauthenticatedError(absl::StrCat("the ", call, " carries ", values.size(), " \"authorization\" ", what,
                                                   " entries; send exactly one: \"Bearer <token>\""));
  }
  absl::string_view value = values.front();
  constexpr absl::string_view kScheme = "Bearer ";
  if (!absl::StartsWithIgnoreCase(value, kScheme)) {
    return absl::UnauthenticatedError(absl::StrCat("the authorization ", what, " must be \"Bearer <token>\""));
  }
  value.remove_prefix(kScheme.size());
  if (!ConstantTimeEquals(absl::StripAsciiWhitespace(value), token_)) {
    return absl::UnauthenticatedError("wrong admin token");
  }
  return absl::OkStatus();
}

}  // namespace brrr::control
