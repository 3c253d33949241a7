#include "control/admin/bearer_token.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace brrr::control {

absl::Status CheckBearerToken(absl::string_view token) {
  if (token.empty()) return absl::InvalidArgumentError("the file holds no token");
  if (token.size() > kMaxBearerTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the token is ", token.size(), " bytes long; at most ",
                                                   kMaxBearerTokenBytes, " (it travels in a header)"));
  }
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    if (c >= 0x21 && c <= 0x7e) continue;
    if (absl::ascii_isspace(c)) return absl::InvalidArgumentError("the token must be one word, on one line");
    return absl::InvalidArgumentError(absl::StrFormat(
        "the token's byte %zu is 0x%02x; a token is visible ASCII ('!' to '~'), which gRPC metadata and HTTP "
        "headers both carry",
        i + 1, c));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadBearerTokenFile(absl::string_view flag, const std::string& path) {
  // A directory opens, and reads as an empty file: it would be "the file holds no token".
  if (struct stat info; ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, "=", path, ": is a directory, not a file: give the file that holds the token"));
  }
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    int err = errno;
    return absl::ErrnoToStatus(err, absl::StrCat(flag, "=", path, ": cannot read it"));
  }
  // One byte past the most a valid file holds tells a file too long without reading all of it
  // (--token_file=/dev/zero would never end).
  std::string content(kMaxBearerTokenFileBytes + 1, '\0');
  content.resize(std::fread(content.data(), 1, content.size(), file));
  const bool failed = std::ferror(file) != 0;
  const int err = errno;
  std::fclose(file);
  if (failed) return absl::ErrnoToStatus(err, absl::StrCat(flag, "=", path, ": cannot read it"));
  if (content.size() > kMaxBearerTokenFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(flag, "=", path, ": the file is longer than ",
                                                   kMaxBearerTokenFileBytes, " bytes; a token is at most ",
                                                   kMaxBearerTokenBytes, " bytes (it travels in a header)"));
  }
  std::string token(absl::StripAsciiWhitespace(content));
  if (absl::Status valid = CheckBearerToken(token); !valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, "=", path, ": ", valid.message()));
  }
  return token;
}

}  // namespace brrr::control
