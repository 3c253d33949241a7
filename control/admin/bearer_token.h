// bearer_token.h: the admin token's file, read the same way by the server (--admin_token_file)
// and by brrrctl (--token_file), so that a token one accepts the other can send.
//
//   absl::StatusOr<std::string> token = ReadBearerTokenFile("--admin_token_file", path);
//
// The token is the file's content without surrounding whitespace (so a trailing newline, or
// CRLF, is not part of it). It must be one word of visible ASCII ('!' to '~') and at most
// kMaxBearerTokenBytes long: what both carriers of it take, gRPC metadata (a control byte or a
// non-ASCII one makes a gRPC client refuse the call, or abort) and an HTTP header within the
// metrics port's 8 KiB request head. A token outside that would lock every client out.
//
// Threads: any.
#ifndef BRRR_CONTROL_ADMIN_BEARER_TOKEN_H_
#define BRRR_CONTROL_ADMIN_BEARER_TOKEN_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace brrr::control {

inline constexpr size_t kMaxBearerTokenBytes = 4096;
// The most a token file is read: a token, and whitespace around it. Past it the file is refused
// unread (a device such as /dev/zero never ends).
inline constexpr size_t kMaxBearerTokenFileBytes = 2 * kMaxBearerTokenBytes;

// The token in the file at `path`. Errors name `flag` and `path`: the file cannot be read (the
// code from errno: NotFound, PermissionDenied...), or `path` is a directory, or the file holds
// no token, more than one word, a byte that is not visible ASCII, too long a token, or is
// longer than kMaxBearerTokenFileBytes (InvalidArgument: no more than that is read). A message
// never repeats the token.
absl::StatusOr<std::string> ReadBearerTokenFile(absl::string_view flag, const std::string& path);

// The same rule for a token already read (tests, embedders): OK or InvalidArgument.
absl::Status CheckBearerToken(absl::string_view token);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_BEARER_TOKEN_H_
