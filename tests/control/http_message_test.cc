// The metrics port's HTTP/1.1: request heads parsed whole or not at all, what is refused and
// with which status, keep-alive, and the responses' framing.
#include "control/admin/http_message.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace brrr::control {
namespace {

absl::StatusOr<std::optional<HttpRequest>> Parse(const std::string& text, size_t* used) {
  return ParseRequestHead(text, used);
}

TEST(HttpMessageTest, ParsesARequestHeadAndLeavesWhatFollows) {
  const std::string head = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAuthorization:  Bearer t \r\n\r\n";
  const std::string text = head + "GET /healthz HTTP/1.1\r\n";
  size_t used = 0;
  auto r = Parse(text, &used);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ(used, head.size());
  const HttpRequest& request = **r;
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.target, "/metrics?x=1");
  EXPECT_EQ(request.path(), "/metrics");
  EXPECT_EQ(request.minor_version, 1);
  ASSERT_EQ(request.values("authorization").size(), 1u);
  EXPECT_EQ(request.values("authorization")[0], "Bearer t");
  EXPECT_EQ(request.values("host")[0], "a");
  EXPECT_TRUE(request.keep_alive());
}

TEST(HttpMessageTest, AnIncompleteHeadAsksForMore) {
  const std::string full = "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n";
  for (size_t n = 0; n < full.size(); ++n) {
    size_t used = 0;
    auto r = Parse(full.substr(0, n), &used);
    ASSERT_TRUE(r.ok()) << n << ": " << r.status();
    EXPECT_FALSE(r->has_value()) << n;
  }
}

// A TLS ClientHello (or anything else that is not HTTP) is refused from its first bytes, not
// after a line end that never comes.
TEST(HttpMessageTest, BytesThatCannotBeginARequestAreRefusedBeforeTheLineEnds) {
  for (const std::string& start : {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
                                   std::string("G(T /metrics"), std::string("\r\nGE\x01")}) {
    size_t used = 0;
    auto r = Parse(start, &used);
    ASSERT_FALSE(r.ok()) << absl::CHexEscape(start);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
    EXPECT_EQ(HttpStatusFor(r.status()), 400);
  }
  // The refusal of the first bytes is the refusal of the whole line (the fuzzer's rule: a prefix
  // never says otherwise), a stray CR before the method included.
  for (const std::string& line :
       {std::string("\x1eGET / HTTP/1.1"), std::string("\r\r"), std::string("G\rT / HTTP/1.1")}) {
    size_t used = 0;
    auto first = Parse(line.substr(0, 3), &used);
    auto whole = Parse(line + "\r\n\r\n", &used);
    ASSERT_FALSE(first.ok()) << absl::CHexEscape(line);
    ASSERT_FALSE(whole.ok()) << absl::CHexEscape(line);
    EXPECT_EQ(first.status(), whole.status()) << absl::CHexEscape(line);
  }
  for (const char* start : {"\r", "\r\n\r", "GET", "GET\r", "GET /metr", " "}) {
    size_t used = 0;
    auto r = Parse(start, &used);
    ASSERT_TRUE(r.ok()) << absl::CHexEscape(start) << ": " << r.status();
    EXPECT_FALSE(r->has_value()) << absl::CHexEscape(start) << ": may still become a request";
  }
}

TEST(HttpMessageTest, BareLineFeedsAndLeadingEmptyLinesAreAccepted) {
  size_t used = 0;
  auto r = Parse("\r\nGET /healthz HTTP/1.0\nHost: a\n\n", &used);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->path(), "/healthz");
  EXPECT_FALSE((*r)->keep_alive()) << "HTTP/1.0 connections carry one request";
}

TEST(HttpMessageTest, ConnectionCloseEndsKeepAlive) {
  size_t used = 0;
  auto r = Parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n", &used);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_FALSE((*r)->keep_alive());
}

TEST(HttpMessageTest, AbsoluteFormTargetsKeepTheirPath) {
  size_t used = 0;
  auto r = Parse("GET http://127.0.0.1:9464/metrics HTTP/1.1\r\n\r\n", &used);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ((*r)->path(), "/metrics");
}

TEST(HttpMessageTest, MalformedHeadsAreBadRequests) {
  for (const char* text : {
           "GET /metrics\r\n\r\n",                              // no version
           "GET  /metrics HTTP/1.1\r\n\r\n",                    // two spaces
           "GET /metrics HTTP/2.0\r\n\r\n",                     // another version
           "G(T /metrics HTTP/1.1\r\n\r\n",                     // not a token
           "GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n",    // header without a colon
           "GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n",      // space in a name
           "GET /metrics HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",  // obsolete folding
           "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
           "GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
       }) {
    size_t used = 0;
    auto r = Parse(text, &used);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << text << ": " << r.status();
    EXPECT_EQ(HttpStatusFor(r.status()), 400) << text;
  }
  size_t used = 0;
  auto zero = Parse("GET /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &used);
  EXPECT_TRUE(zero.ok() && zero->has_value()) << "an empty body is no body";
}

TEST(HttpMessageTest, OversizedHeadsAreRefusedWith431) {
  size_t used = 0;
  // Still incomplete, but already longer than any head may be.
  auto long_line = Parse("GET /" + std::string(kMaxHeadBytes, 'a'), &used);
  ASSERT_FALSE(long_line.ok());
  EXPECT_EQ(HttpStatusFor(long_line.status()), 431) << long_line.status();

  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHeaders; ++i) many += "X-A: b\r\n";
  auto too_many = Parse(many + "\r\n", &used);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(HttpStatusFor(too_many.status()), 431) << too_many.status();
}

// The header limit is inclusive: a head with exactly kMaxHeaders header lines parses, every
// one kept; one line more is refused with 431.
TEST(HttpMessageTest, ExactlyMaxHeadersParseAndOneMoreIsRefusedWith431) {
  std::string head = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i < kMaxHeaders; ++i) head += "X-A: b\r\n";
  size_t used = 0;
  auto at_limit = Parse(head + "\r\n", &used);
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  ASSERT_TRUE(at_limit->has_value());
  EXPECT_EQ((*at_limit)->headers.size(), kMaxHeaders);
  EXPECT_EQ(used, head.size() + 2);

  auto over = Parse(head + "X-A: b\r\n\r\n", &used);
  ASSERT_FALSE(over.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(over.status())) << over.status();
  EXPECT_EQ(HttpStatusFor(over.status()), 431) << over.status();
}

TEST(HttpMessageTest, ResponsesAreFramedByContentLength) {
  HttpResponse r;
  r.status = 503;
  r.body = "not ready: draining\n";
  r.headers.push_back("Retry-After: 1");
  EXPECT_EQ(FormatResponse(r, /*keep_alive=*/true, /*head_only=*/false),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 20\r\nRetry-After: 1\r\n\r\nnot ready: draining\n");
  EXPECT_EQ(FormatResponse(r, /*keep_alive=*/false, /*head_only=*/true),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 20\r\nConnection: close\r\nRetry-After: 1\r\n\r\n");
}

}  // namespace
}  // namespace brrr::control
