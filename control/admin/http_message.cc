#include "control/admin/http_message.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace brrr::control {
namespace {

// RFC 9110 tchar: what a method or a header name is made of.
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || absl::StrContains("!#$%&'*+-.^_`|~", c);
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

absl::Status BadRequest(absl::string_view why) { return absl::InvalidArgumentError(why); }

absl::Status ParseRequestLine(absl::string_view line, HttpRequest* request) {
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || !IsToken(parts[0]) || parts[1].empty()) {
    return BadRequest("the request line must be \"METHOD TARGET HTTP/1.1\"");
  }
  if (parts[2] == "HTTP/1.1") {
    request->minor_version = 1;
  } else if (parts[2] == "HTTP/1.0") {
    request->minor_version = 0;
  } else {
    return BadRequest(absl::StrCat("unsupported protocol version \"", absl::CHexEscape(parts[2]),
                                   "\": this port speaks HTTP/1.0 and HTTP/1.1"));
  }
  for (char c : parts[1]) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return BadRequest("the request target holds a control character");
  }
  request->method = std::string(parts[0]);
  request->target = std::string(parts[1]);
  return absl::OkStatus();
}

// The first bytes of a request line, `seen` (up to its end, or as far as has come, within the
// first kMaxHeadBytes of the head): refused when they cannot begin a method (a TLS ClientHello,
// say), so that such a client hears why at once instead of waiting for a line end that never
// comes. Checked before anything else about the line, on what has come and on the whole line
// alike, so that a refusal of the first bytes is the refusal of the whole.
absl::Status CheckRequestLineStart(absl::string_view seen) {
  absl::string_view method = seen.substr(0, seen.find(' '));
  // A CR that ends what has come may be the line's end, whose LF has not come yet.
  if (method.size() == seen.size() && absl::EndsWith(method, "\r")) method.remove_suffix(1);
  for (char c : method) {
    if (!IsTokenChar(c)) return BadRequest("this is not an HTTP request: the port speaks plain HTTP/1.1");
  }
  return absl::OkStatus();
}

absl::Status ParseHeaderLine(absl::string_view line, HttpRequest* request) {
  if (line.front() == ' ' || line.front() == '\t') return BadRequest("obsolete header line folding is not accepted");
  size_t colon = line.find(':');
  if (colon == absl::string_view::npos || !IsToken(line.substr(0, colon))) {
    return BadRequest("a header line must be \"Name: value\"");
  }
  if (request->headers.size() == kMaxHeaders) {
    return absl::ResourceExhaustedError(absl::StrCat("more than ", kMaxHeaders, " header lines"));
  }
  request->headers.emplace_back(absl::AsciiStrToLower(line.substr(0, colon)),
                                std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  return absl::OkStatus();
}

// The metrics port reads no body: a request announcing one is refused rather than having its
// body taken for the next request.
absl::Status CheckNoBody(const HttpRequest& request) {
  if (!request.values("transfer-encoding").empty()) return BadRequest("requests with a body are not accepted");
  for (absl::string_view length : request.values("content-length")) {
    if (length != "0") return BadRequest("requests with a body are not accepted");
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view HttpRequest::path() const {
  absl::string_view t = target;
  // Absolute form ("http://host:port/metrics"), which proxies send: keep the path.
  if (size_t scheme = t.find("://"); scheme != absl::string_view::npos && !absl::StartsWith(t, "/")) {
    size_t slash = t.find('/', scheme + 3);
    t = slash == absl::string_view::npos ? absl::string_view("/") : t.substr(slash);
  }
  return t.substr(0, t.find_first_of("?#"));
}

std::vector<absl::string_view> HttpRequest::values(absl::string_view lowercase_name) const {
  std::vector<absl::string_view> out;
  for (const auto& [name, value] : headers) {
    if (name == lowercase_name) out.push_back(value);
  }
  return out;
}

bool HttpRequest::keep_alive() const {
  if (minor_version == 0) return false;
  for (absl::string_view value : values("connection")) {
    for (absl::string_view option : absl::StrSplit(value, ',')) {
      if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(option), "close")) return false;
    }
  }
  return true;
}

absl::StatusOr<std::optional<HttpRequest>> ParseRequestHead(absl::string_view buffer, size_t* consumed) {
  HttpRequest request;
  bool have_request_line = false;
  size_t pos = 0;
  for (;;) {
    size_t newline = buffer.find('\n', pos);
    if (!have_request_line) {
      const size_t seen_end = std::min({newline, buffer.size(), kMaxHeadBytes});
      if (seen_end > pos) {
        if (absl::Status start = CheckRequestLineStart(buffer.substr(pos, seen_end - pos)); !start.ok()) return start;
      }
    }
    if (newline == absl::string_view::npos) {
      if (buffer.size() > kMaxHeadBytes) {
        return absl::ResourceExhaustedError(absl::StrCat("the request head is longer than ", kMaxHeadBytes, " bytes"));
      }
      return std::nullopt;
    }
    if (newline + 1 > kMaxHeadBytes) {
      return absl::ResourceExhaustedError(absl::StrCat("the request head is longer than ", kMaxHeadBytes, " bytes"));
    }
    // Lines end in CRLF; a bare LF is accepted too (RFC 9112 section 2.2).
    absl::string_view line = buffer.substr(pos, newline - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = newline + 1;
    if (line.empty()) {
      if (!have_request_line) continue;  // empty lines before a request are ignored
      if (absl::Status body = CheckNoBody(request); !body.ok()) return body;
      *consumed = pos;
      return request;
    }
    absl::Status parsed = have_request_line ? ParseHeaderLine(line, &request) : ParseRequestLine(line, &request);
    if (!parsed.ok()) return parsed;
    have_request_line = true;
  }
}

int HttpStatusFor(const absl::Status& parse_error) { return absl::IsResourceExhausted(parse_error) ? 431 : 400; }

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string FormatResponse(const HttpResponse& response, bool keep_alive, bool head_only) {
  std::string out =
      absl::StrCat("HTTP/1.1 ", response.status, " ", ReasonPhrase(response.status),
                   "\r\nContent-Type: ", response.content_type, "\r\nContent-Length: ", response.body.size(), "\r\n");
  if (!keep_alive) out += "Connection: close\r\n";
  for (const std::string& header : response.headers) absl::StrAppend(&out, header, "\r\n");
  out += "\r\n";
  if (!head_only) out += response.body;
  return out;
}

}  // namespace brrr::control
