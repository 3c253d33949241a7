// http_client.h: a minimal blocking HTTP/1.1 client for tests of the metrics port: one
// request, one response framed by Content-Length. Loopback only; bounded like BlockingClient.
//
//   HttpReply r = HttpGet(port, "/metrics", {"Authorization: Bearer t"});
//   EXPECT_EQ(r.status, 200);
//   BlockingClient c(port);                       // several requests on one connection
//   c.send_all(HttpRequestText("/healthz"));
//   HttpReply first = ReadHttpReply(c);
#ifndef BRRR_TESTS_TESTING_HTTP_CLIENT_H_
#define BRRR_TESTS_TESTING_HTTP_CLIENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tests/testing/net.h"

namespace brrr::testing {

struct HttpReply {
  int status = 0;    // 0: no complete response (closed, timed out, or not HTTP)
  std::string head;  // status line and headers
  std::string body;

  // The value of the first header named `name` (any case), or "".
  std::string header(const std::string& name) const;
};

// "GET path HTTP/1.1" with Host and the extra header lines ("Name: value").
std::string HttpRequestText(const std::string& path, const std::vector<std::string>& headers = {},
                            const std::string& method = "GET");

// One response from `client` (a HEAD's has no body: pass head_only).
HttpReply ReadHttpReply(BlockingClient& client, bool head_only = false);

// GET (or `method`) on a new connection to 127.0.0.1:port, closed afterwards.
HttpReply HttpGet(uint16_t port, const std::string& path, const std::vector<std::string>& headers = {},
                  const std::string& method = "GET");

}  // namespace brrr::testing

#endif  // BRRR_TESTS_TESTING_HTTP_CLIENT_H_
