// ParseRequestHead, the metrics port's reading of what a client sends, for any bytes arriving
// in any pieces, read as the port reads them (after each receive: every complete head from the
// front, until one is incomplete or refused). Checked: a head parsed from a prefix of the bytes
// is the head parsed from all of them (a request split across receives means the same); a head
// still incomplete never holds more than kMaxHeadBytes; each request is well-formed (a token
// for a method, a target without control characters, at most kMaxHeaders headers with
// lowercase token names and trimmed values, a head of at most kMaxHeadBytes); a refusal
// answers 400 or 431 and ends the connection.
//
// Input: [K: pieces - 1, K % 16][K piece lengths, a byte each][the stream: the rest]
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/admin/http_message.h"
#include "tests/fuzz/fuzz_input.h"

namespace brrr::fuzz {
namespace {

using control::HttpRequest;
using control::kMaxHeadBytes;
using control::kMaxHeaders;

void Require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "http_request_fuzzer: %s\n", what);
  std::abort();
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

void CheckWellFormed(const HttpRequest& r, size_t consumed) {
  Require(consumed > 0 && consumed <= kMaxHeadBytes, "a head longer than kMaxHeadBytes");
  Require(IsToken(r.method), "a method that is not a token");
  Require(!r.target.empty(), "an empty target");
  for (char c : r.target) Require(static_cast<unsigned char>(c) > 0x20 && c != 0x7f, "a control character in the target");
  Require(r.minor_version == 0 || r.minor_version == 1, "a version other than HTTP/1.0 and 1.1");
  Require(r.headers.size() <= kMaxHeaders, "more than kMaxHeaders headers");
  for (const auto& [name, value] : r.headers) {
    Require(IsToken(name), "a header name that is not a token");
    for (char c : name) Require(!(c >= 'A' && c <= 'Z'), "a header name not lowercased");
    Require(value.empty() || (value.front() != ' ' && value.front() != '\t' && value.back() != ' ' &&
                              value.back() != '\t' && value.back() != '\r'),
            "a header value with surrounding whitespace");
  }
  Require(r.path().size() <= r.target.size(), "a path longer than its target");
}

bool Same(const HttpRequest& a, const HttpRequest& b) {
  return a.method == b.method && a.target == b.target && a.minor_version == b.minor_version && a.headers == b.headers;
}

}  // namespace

int OneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  std::vector<size_t> lengths(in.Byte() % 16);
  for (size_t& length : lengths) length = in.Byte();
  const std::string_view stream = in.Rest();

  std::string buffer;  // what the port holds: received, not yet taken as a request
  size_t offset = 0;   // where buffer starts in the stream
  size_t received = 0;
  auto receive = [&](size_t n) {
    n = std::min(n, stream.size() - received);
    buffer.append(stream.substr(received, n));
    received += n;
  };
  for (size_t i = 0; i <= lengths.size(); ++i) {
    receive(i < lengths.size() ? lengths[i] : stream.size());
    for (;;) {
      size_t consumed = 0;
      absl::StatusOr<std::optional<HttpRequest>> head = control::ParseRequestHead(buffer, &consumed);
      // The same bytes and all that follows them in the stream: a prefix never says otherwise.
      size_t whole_consumed = 0;
      absl::StatusOr<std::optional<HttpRequest>> whole =
          control::ParseRequestHead(absl::string_view(stream.data() + offset, stream.size() - offset), &whole_consumed);
      if (!head.ok()) {
        const int status = control::HttpStatusFor(head.status());
        Require(status == 400 || status == 431, "a refusal answered other than 400 or 431");
        Require(!whole.ok() && whole.status() == head.status(), "a prefix refused what the whole stream does not");
        return 0;  // the port answers and closes
      }
      if (!head->has_value()) {
        Require(buffer.size() <= kMaxHeadBytes, "an incomplete head past kMaxHeadBytes");
        break;  // receive more
      }
      Require(whole.ok() && whole->has_value() && whole_consumed == consumed && Same(**head, **whole),
              "a head parsed from a prefix differs from the one parsed from the whole stream");
      CheckWellFormed(**head, consumed);
      buffer.erase(0, consumed);
      offset += consumed;
    }
  }
  return 0;
}

}  // namespace brrr::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return brrr::fuzz::OneInput(data, size); }
