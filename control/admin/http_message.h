// http_message.h: the little of HTTP/1.1 the metrics port speaks: parsing a request head
// (request line and headers; no body) and formatting a response with a body.
//
//   size_t used = 0;
//   absl::StatusOr<std::optional<HttpRequest>> r = ParseRequestHead(received, &used);
//   if (!r.ok()) ...                       // malformed: answer HttpStatusFor(r.status()), close
//   else if (!r->has_value()) ...          // incomplete: receive more
//   else { received.erase(0, used); ... }  // one request; what follows may be the next one
//   std::string bytes = FormatResponse({.status = 200, .body = "ok\n"}, /*keep_alive=*/true, /*head=*/false);
//
// What is refused (InvalidArgument, answered 400): a request line that is not
// "METHOD TARGET HTTP/1.x", a header line without a colon, obsolete line folding, a request
// with a body (Content-Length other than 0, or Transfer-Encoding): the metrics port reads
// none, so it could not find where the next request starts. The first bytes of a request line
// are checked before its end comes: bytes that cannot begin a method (a TLS ClientHello) are
// refused at once. A head longer than kMaxHeadBytes
// or with more than kMaxHeaders headers is ResourceExhausted (answered 431).
//
// Threads: values and pure functions.
#ifndef BRRR_CONTROL_ADMIN_HTTP_MESSAGE_H_
#define BRRR_CONTROL_ADMIN_HTTP_MESSAGE_H_

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace brrr::control {

inline constexpr size_t kMaxHeadBytes = 8192;
inline constexpr size_t kMaxHeaders = 64;

struct HttpRequest {
  std::string method;     // as sent: "GET"
  std::string target;     // "/metrics?x=1"
  int minor_version = 1;  // HTTP/1.<minor_version>
  // In order; names lowercased, values without surrounding whitespace.
  std::vector<std::pair<std::string, std::string>> headers;

  // The target without its query string: "/metrics".
  absl::string_view path() const;
  // The values of every header named `lowercase_name`, in order.
  std::vector<absl::string_view> values(absl::string_view lowercase_name) const;
  // Whether the connection may carry another request: HTTP/1.1 without "Connection: close"
  // (HTTP/1.0 connections are closed after one request).
  bool keep_alive() const;
};

// One request head from the front of `buffer`: the request, with *consumed set to its length;
// nullopt when the head is not complete yet; an error (above) when it cannot be one.
absl::StatusOr<std::optional<HttpRequest>> ParseRequestHead(absl::string_view buffer, size_t* consumed);

// The status code that answers a parse error: 431 for ResourceExhausted, else 400.
int HttpStatusFor(const absl::Status& parse_error);

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // More header lines, each "Name: value" without CRLF.
  std::vector<std::string> headers;
};

// Status line, headers (Content-Type, Content-Length, Connection: close when not keep_alive,
// the extra ones) and, unless `head_only` (a HEAD request), the body.
std::string FormatResponse(const HttpResponse& response, bool keep_alive, bool head_only);

// "OK", "Not Found"...: the reason phrase of the codes the metrics port sends.
const char* ReasonPhrase(int status);

}  // namespace brrr::control

#endif  // BRRR_CONTROL_ADMIN_HTTP_MESSAGE_H_
