#include "control/brrrctl/targets.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace brrr::control {
namespace {

// gRPC name schemes whose targets are not HOST:PORT; the rest of the address goes to gRPC as
// it is.
constexpr absl::string_view kSchemes[] = {"unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:", "vsock:"};

constexpr absl::string_view kExpected = "expected HOST:PORT, e.g. 127.0.0.1:5001 or [::1]:5001";

absl::Status Malformed(absl::string_view address, absl::string_view why) {
  // Escaped: a NUL would end the message where it is printed, a control byte garble the terminal.
  return absl::InvalidArgumentError(absl::StrCat("\"", absl::CHexEscape(address), "\": ", why));
}

absl::Status TooMany(absl::string_view where) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": more than ", kMaxTargets,
                                                 " targets (brrrctl calls them all at once, a thread each)"));
}

// What editors on Windows put first in a "UTF-8" file; not part of the first address.
constexpr absl::string_view kUtf8ByteOrderMark = "\xEF\xBB\xBF";

bool HasGrpcScheme(absl::string_view address) {
  for (absl::string_view scheme : kSchemes) {
    if (absl::StartsWith(address, scheme)) return true;
  }
  return false;
}

// The HOST:PORT inside a URL such as http://127.0.0.1:5001/ (what a browser's address bar or the
// metrics port's documentation shows), for the message that asks for it instead.
std::string HostPortOfUrl(absl::string_view url) {
  absl::string_view rest = url.substr(url.find("://") + 3);
  return std::string(rest.substr(0, rest.find_first_of("/?#")));
}

// `host` (brackets removed) as inet_ntop writes it when it is a numeric IPv4 or IPv6 address (an
// IPv4-mapped IPv6 address as its IPv4 one, which is where it connects); else lower case (a host
// name: DNS names are not case-sensitive).
std::string CanonicalHost(absl::string_view host) {
  const std::string text(host);
  char written[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return inet_ntop(AF_INET, &v4, written, sizeof(written));
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      std::memcpy(&v4, &v6.s6_addr[12], sizeof(v4));
      return inet_ntop(AF_INET, &v4, written, sizeof(written));
    }
    return absl::StrCat("[", inet_ntop(AF_INET6, &v6, written, sizeof(written)), "]");
  }
  return absl::AsciiStrToLower(text);
}

// The server an address (one CheckAddress takes) names, written one way: 127.0.0.1:05001,
// [::ffff:127.0.0.1]:5001 and 127.0.0.1:5001 all read "127.0.0.1:5001", [0:0::1]:5001
// "[::1]:5001", LOCALHOST:5001 "localhost:5001". A target with a gRPC scheme is kept as written.
std::string ServerOf(absl::string_view address) {
  if (HasGrpcScheme(address)) return std::string(address);
  size_t colon = address.rfind(':');
  absl::string_view host = address.substr(0, colon);
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  uint32_t port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port)) return std::string(address);
  return absl::StrCat(CanonicalHost(host), ":", port);
}

// " (127.0.0.1:5001 written another way)" when `address` is not written as `earlier` is.
std::string WrittenAnotherWay(absl::string_view address, absl::string_view earlier) {
  if (address == earlier) return "";
  return absl::StrCat(" (", earlier, " written another way)");
}

}  // namespace

absl::Status CheckAddress(absl::string_view address) {
  if (address.empty()) return absl::InvalidArgumentError("an empty address");
  for (char c : address) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) || absl::ascii_iscntrl(static_cast<unsigned char>(c)) ||
        c == '"' || c == '\\') {
      return Malformed(address, absl::StrCat("a space, quote or control character in it (", kExpected, ")"));
    }
  }
  for (absl::string_view scheme : kSchemes) {
    if (absl::StartsWith(address, scheme)) {
      if (address.size() == scheme.size()) return Malformed(address, absl::StrCat("nothing after ", scheme));
      return absl::OkStatus();
    }
  }
  if (absl::StrContains(address, "://")) {
    const std::string host_port = HostPortOfUrl(address);
    return Malformed(address, absl::StrCat("a URL; the admin plane takes HOST:PORT, without a scheme or path: give ",
                                           host_port.empty() ? "HOST:PORT, e.g. 127.0.0.1:5001" : host_port));
  }
  if (absl::StrContains(address, ',')) return Malformed(address, "a comma in it: one address each (HOST:PORT)");
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return Malformed(address, absl::StrCat("no port (", kExpected, ")"));
  absl::string_view host = address.substr(0, colon);
  absl::string_view port = address.substr(colon + 1);
  if (host.empty()) return Malformed(address, absl::StrCat("no host (", kExpected, ")"));
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return Malformed(address, absl::StrCat("an unclosed or empty [IPv6] host (", kExpected, ")"));
    }
  } else if (host.find_first_of(":[]") != absl::string_view::npos) {
    return Malformed(address, "an IPv6 host goes in brackets, e.g. [::1]:5001");
  }
  uint32_t number = 0;
  if (port.empty() || !absl::SimpleAtoi(port, &number) || number == 0 || number > 65535 ||
      port.find_first_not_of("0123456789") != absl::string_view::npos) {
    return Malformed(address, absl::StrCat("the port must be a number from 1 to 65535 (", kExpected, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ParseTargetFlag(absl::string_view value) {
  std::vector<std::string> targets;
  int position = 0;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    ++position;
    std::string address(absl::StripAsciiWhitespace(part));
    const std::string where = absl::StrCat("--target=", value, ": address ", position);
    if (absl::Status s = CheckAddress(address); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
    }
    const std::string server = ServerOf(address);
    for (size_t i = 0; i < targets.size(); ++i) {
      if (ServerOf(targets[i]) == server) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": ", address, " is address ", i + 1, " already",
                                                       WrittenAnotherWay(address, targets[i])));
      }
    }
    if (targets.size() == kMaxTargets) return TooMany(where);
    targets.push_back(std::move(address));
  }
  return targets;
}

absl::StatusOr<std::vector<std::string>> ParseTargetsFile(absl::string_view path, absl::string_view content) {
  std::vector<std::string> targets;
  // Each server named so far (ServerOf), with the line that names it and how it was written there.
  std::map<std::string, std::pair<int, std::string>> line_of;
  int line_number = 0;
  absl::ConsumePrefix(&content, kUtf8ByteOrderMark);
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    ++line_number;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::string address(absl::StripAsciiWhitespace(line));
    if (address.empty()) continue;
    const std::string where = absl::StrCat("--targets_file=", path, " line ", line_number);
    if (absl::Status s = CheckAddress(address); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message(), " (one address per line)"));
    }
    auto [it, added] = line_of.emplace(ServerOf(address), std::make_pair(line_number, address));
    if (!added) {
      const auto& [earlier_line, earlier] = it->second;
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", address, " is on line ", earlier_line, " already",
                                                     WrittenAnotherWay(address, earlier)));
    }
    if (targets.size() == kMaxTargets) return TooMany(where);
    targets.push_back(std::move(address));
  }
  if (targets.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--targets_file=", path, ": no address in it (one HOST:PORT per line; # starts a comment)"));
  }
  return targets;
}

absl::StatusOr<std::vector<std::string>> ReadTargetsFile(const std::string& path) {
  auto unreadable = [&path] {
    return absl::InvalidArgumentError(absl::StrCat("--targets_file=", path, ": cannot read it: ", std::strerror(errno)));
  };
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return unreadable();
  // One byte past the cap tells a file too long without reading all of it (/dev/zero never ends).
  std::string content(kMaxTargetsFileBytes + 1, '\0');
  content.resize(std::fread(content.data(), 1, content.size(), file));
  const bool failed = std::ferror(file) != 0;  // a directory, for one (EISDIR)
  const int error = errno;
  std::fclose(file);
  if (failed) {
    errno = error;
    return unreadable();
  }
  if (content.size() > kMaxTargetsFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("--targets_file=", path, ": the file is longer than 1 MiB (",
                                                   kMaxTargetsFileBytes,
                                                   " bytes); give a file of one HOST:PORT per line"));
  }
  return ParseTargetsFile(path, content);
}

}  // namespace brrr::control
