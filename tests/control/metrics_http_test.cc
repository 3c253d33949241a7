// The metrics port's HTTP server, in this process over pages the test controls: routing,
// status codes, the bearer token, keep-alive and pipelining, HEAD, malformed requests, the
// idle timeout, and the cap on connections. Real sockets on 127.0.0.1.
#include "control/admin/metrics_http.h"

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "prometheus/metric_family.h"
#include "tests/testing/http_client.h"
#include "tests/testing/net.h"

namespace brrr::control {
namespace {

using testing::BlockingClient;
using testing::HttpGet;
using testing::HttpReply;
using testing::HttpRequestText;
using testing::ReadHttpReply;

// One gauge, brrr_test_scrapes, counting the scrapes.
class CountingCollectable final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::ClientMetric m;
    m.gauge.value = static_cast<double>(++scrapes_);
    return {prometheus::MetricFamily{"brrr_test_scrapes", "Scrapes so far.", prometheus::MetricType::Gauge, {m}}};
  }

 private:
  mutable std::atomic<int> scrapes_{0};
};

class MetricsHttpTest : public ::testing::Test {
 protected:
  void Start(MetricsHttpOptions options = {}) {
    options.backend = "epoll";
    MetricsPages pages;
    pages.collectables = {std::make_shared<CountingCollectable>()};
    pages.not_ready = [this] { return std::string(draining_ ? "draining" : ""); };
    auto started = MetricsHttpServer::Start(std::move(options), std::move(pages));
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    port_ = server_->port();
  }

  // One place, and an idle timeout past a client's 30 s receive: only making room for a check
  // lets it in.
  void StartWithOnePlace() {
    MetricsHttpOptions o;
    o.max_connections = 1;
    o.idle_timeout = std::chrono::seconds(60);
    Start(std::move(o));
  }

  // `count` connections that send nothing.
  std::vector<std::unique_ptr<BlockingClient>> ConnectSilently(int count) {
    std::vector<std::unique_ptr<BlockingClient>> silent;
    for (int i = 0; i < count; ++i) silent.push_back(std::make_unique<BlockingClient>(port_));
    return silent;
  }

  std::atomic<bool> draining_{false};
  std::unique_ptr<MetricsHttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(MetricsHttpTest, ServesTheThreePages) {
  Start();
  HttpReply metrics = HttpGet(port_, "/metrics");
  EXPECT_EQ(metrics.status, 200) << metrics.head;
  EXPECT_EQ(metrics.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(metrics.body,
            "# HELP brrr_test_scrapes Scrapes so far.\n# TYPE brrr_test_scrapes gauge\nbrrr_test_scrapes 1\n");
  EXPECT_NE(HttpGet(port_, "/metrics?ignored=1").body.find("\nbrrr_test_scrapes 2\n"), std::string::npos)
      << "the query string is ignored";

  HttpReply health = HttpGet(port_, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");

  HttpReply ready = HttpGet(port_, "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready\n");
  draining_ = true;
  HttpReply not_ready = HttpGet(port_, "/readyz");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_EQ(not_ready.body, "not ready: draining\n");
  EXPECT_EQ(HttpGet(port_, "/healthz").status, 200) << "draining is not dead";
}

TEST_F(MetricsHttpTest, OtherPathsAndMethodsAreRefused) {
  Start();
  HttpReply missing = HttpGet(port_, "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "no page at /nope: this port serves /metrics, /healthz and /readyz\n");
  HttpReply raw = HttpGet(port_, "/caf\xc3\xa9\xff");
  EXPECT_EQ(raw.status, 404);
  EXPECT_EQ(raw.body, "no page at /caf\\xc3\\xa9\\xff: this port serves /metrics, /healthz and /readyz\n")
      << "a body in ASCII whatever the target's bytes";
  HttpReply post = HttpGet(port_, "/metrics", {}, "POST");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("Allow"), "GET, HEAD");
  HttpReply head = HttpGet(port_, "/healthz", {}, "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Content-Length"), "3") << "HEAD: the length of the body it does not send";
}

TEST_F(MetricsHttpTest, WithATokenEveryPageRequiresIt) {
  MetricsHttpOptions o;
  o.auth = CallAuth::WithToken("s3cret");
  Start(std::move(o));
  for (const char* path : {"/metrics", "/healthz", "/readyz", "/nope"}) {
    HttpReply none = HttpGet(port_, path);
    EXPECT_EQ(none.status, 401) << path;
    EXPECT_EQ(none.header("WWW-Authenticate"), "Bearer realm=\"brrr\"") << path;
    EXPECT_EQ(none.body, "this admin plane requires the header \"authorization: Bearer <token>\"\n");
    EXPECT_EQ(HttpGet(port_, path, {"Authorization: Bearer wrong"}).status, 401) << path;
    // The token exactly: not with a byte more, nor without its last.
    EXPECT_EQ(HttpGet(port_, path, {"Authorization: Bearer s3cretX"}).status, 401) << path;
    EXPECT_EQ(HttpGet(port_, path, {"Authorization: Bearer s3cre"}).status, 401) << path;
  }
  EXPECT_EQ(HttpGet(port_, "/metrics", {"Authorization: Bearer s3cret"}).status, 200);
  EXPECT_EQ(HttpGet(port_, "/readyz", {"authorization: bearer s3cret"}).status, 200) << "names and scheme: any case";
  EXPECT_EQ(HttpGet(port_, "/readyz", {"Authorization: Bearer  s3cret"}).status, 200) << "RFC 6750: 1*SP";
  // Without the token, a method this port refuses is not named either: 401 before 405.
  HttpReply post = HttpGet(port_, "/metrics", {}, "POST");
  EXPECT_EQ(post.status, 401) << post.body;
  EXPECT_EQ(post.header("Allow"), "") << "the methods are for callers with the token";
  EXPECT_EQ(HttpGet(port_, "/metrics", {"Authorization: Bearer s3cret"}, "POST").status, 405);
  HttpReply twice = HttpGet(port_, "/metrics", {"Authorization: Bearer s3cret", "Authorization: Bearer s3cret"});
  EXPECT_EQ(twice.status, 401);
  EXPECT_EQ(twice.body,
            "the request carries 2 \"authorization\" header entries; send exactly one: \"Bearer <token>\"\n");
}

TEST_F(MetricsHttpTest, AConnectionCarriesPipelinedRequestsUntilConnectionClose) {
  Start();
  BlockingClient c(port_);
  ASSERT_TRUE(c.send_all(HttpRequestText("/healthz") + HttpRequestText("/readyz") +
                         HttpRequestText("/metrics", {"Connection: close"}) + HttpRequestText("/healthz")));
  HttpReply first = ReadHttpReply(c);
  HttpReply second = ReadHttpReply(c);
  HttpReply third = ReadHttpReply(c);
  EXPECT_EQ(first.body, "ok\n");
  EXPECT_EQ(second.body, "ready\n");
  EXPECT_EQ(third.status, 200);
  EXPECT_EQ(third.header("Connection"), "close");
  EXPECT_EQ(c.recv_until_eof(), "") << "nothing after the request that asked to close";
}

// A HEAD is answered with the head alone: on a kept-alive connection the next answer starts
// right after it (a body sent anyway would be read as the start of the next answer).
TEST_F(MetricsHttpTest, AHeadAnswerEndsAtItsHeadAndTheNextAnswerFollows) {
  Start();
  BlockingClient c(port_);
  ASSERT_TRUE(c.send_all(HttpRequestText("/healthz", {}, "HEAD") + HttpRequestText("/readyz", {"Connection: close"})));
  HttpReply head = ReadHttpReply(c, /*head_only=*/true);
  EXPECT_EQ(head.status, 200) << head.head;
  EXPECT_EQ(head.header("Content-Length"), "3");
  HttpReply next = ReadHttpReply(c);
  EXPECT_EQ(next.status, 200) << next.head;
  EXPECT_EQ(next.body, "ready\n");
  EXPECT_EQ(c.recv_until_eof(), "") << "nothing after the last answer";
}

TEST_F(MetricsHttpTest, AMalformedRequestIsAnsweredThenClosed) {
  Start();
  BlockingClient c(port_);
  ASSERT_TRUE(c.send_all("GET /metrics HTTP/9\r\n\r\n"));
  HttpReply reply = ReadHttpReply(c);
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.body, "unsupported protocol version \"HTTP/9\": this port speaks HTTP/1.0 and HTTP/1.1\n");
  EXPECT_EQ(c.recv_until_eof(), "");

  BlockingClient big(port_);
  ASSERT_TRUE(big.send_all("GET /" + std::string(kMaxHeadBytes + 1, 'a')));
  EXPECT_EQ(ReadHttpReply(big).status, 431);
  EXPECT_EQ(big.recv_until_eof(), "");
}

// A TLS client (https:// for http://) hears at once, in plain HTTP, that this is not its
// protocol, instead of waiting out the idle timeout for a request line's end.
TEST_F(MetricsHttpTest, ATlsClientHelloIsAnsweredAtOnce) {
  MetricsHttpOptions o;
  o.idle_timeout = std::chrono::seconds(60);  // past the client's 30 s
  Start(std::move(o));
  BlockingClient tls(port_);
  // A ClientHello's record header and the start of its handshake message.
  ASSERT_TRUE(tls.send_all(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
  HttpReply reply = ReadHttpReply(tls);
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.body, "this is not an HTTP request: the port speaks plain HTTP/1.1\n");
  EXPECT_EQ(tls.recv_until_eof(), "");
}

TEST_F(MetricsHttpTest, AnIdleConnectionIsClosed) {
  MetricsHttpOptions o;
  o.idle_timeout = std::chrono::seconds(1);  // a request sent at once beats it on a loaded machine too
  Start(std::move(o));
  BlockingClient silent(port_);
  EXPECT_EQ(silent.recv_until_eof(), "") << "closed without a request";
  BlockingClient slow(port_);
  ASSERT_TRUE(slow.send_all("GET /metrics HTTP/1.1\r\n"));  // a head that never ends
  EXPECT_EQ(slow.recv_until_eof(), "");
  BlockingClient kept(port_);
  ASSERT_TRUE(kept.send_all(HttpRequestText("/healthz")));
  EXPECT_EQ(ReadHttpReply(kept).status, 200);
  EXPECT_EQ(kept.recv_until_eof(), "") << "idle after its answer";
}

// Past max_connections a connection waits in the backlog, unanswered, while every open one
// is busy with a request (here, heads not yet complete, for less than a second); once one is
// answered and idle, it is closed for the waiting one.
TEST_F(MetricsHttpTest, ConnectionsPastTheCapWaitWhileEveryOneIsBusy) {
  MetricsHttpOptions o;
  o.max_connections = 2;
  Start(std::move(o));
  BlockingClient a(port_);
  BlockingClient b(port_);
  ASSERT_TRUE(a.send_all("GET /healthz HTTP/1.1\r\n"));  // heads not yet complete
  ASSERT_TRUE(b.send_all("GET /healthz HTTP/1.1\r\n"));
  // Both were accepted once a request on a third connection waits: a round trip is not
  // possible on them, so give the loop time to go round.
  BlockingClient c(port_);  // the kernel completes the handshake; the server does not accept
  ASSERT_TRUE(c.send_all(HttpRequestText("/healthz")));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  char byte = 0;
  EXPECT_EQ(::recv(c.fd(), &byte, 1, MSG_DONTWAIT), -1) << "answered past the cap";

  ASSERT_TRUE(b.send_all("Host: x\r\n\r\n"));  // b's head ends: answered, then idle
  EXPECT_EQ(ReadHttpReply(b).status, 200);
  EXPECT_EQ(ReadHttpReply(c).status, 200);
  EXPECT_EQ(b.recv_until_eof(), "") << "closed for c";
  ASSERT_TRUE(a.send_all("Host: x\r\n\r\n"));
  EXPECT_EQ(ReadHttpReply(a).status, 200) << "a, busy all along, kept its place";
}

// README (deploy): idle kept-alive connections (scrapers between scrapes) cannot keep a new
// one (a load balancer's check) waiting for the idle timeout: at the cap, the one idle longest
// is closed for it, and the client reconnects for its next request.
TEST_F(MetricsHttpTest, AnIdleConnectionMakesRoomForOneWaitingAtTheCap) {
  MetricsHttpOptions o;
  o.max_connections = 2;
  o.idle_timeout = std::chrono::seconds(60);
  Start(std::move(o));
  BlockingClient a(port_);
  ASSERT_TRUE(a.send_all(HttpRequestText("/healthz")));
  ASSERT_EQ(ReadHttpReply(a).status, 200);
  BlockingClient b(port_);
  ASSERT_TRUE(b.send_all(HttpRequestText("/metrics")));
  ASSERT_EQ(ReadHttpReply(b).status, 200);

  // The client's receive gives up after 30 s, before the idle timeout would free a place.
  BlockingClient check(port_);
  ASSERT_TRUE(check.send_all(HttpRequestText("/readyz")));
  HttpReply answered = ReadHttpReply(check);
  EXPECT_EQ(answered.status, 200);
  EXPECT_EQ(answered.body, "ready\n");
  EXPECT_EQ(a.recv_until_eof(), "") << "the connection idle longest was closed";
  // b kept its place and is served as before.
  ASSERT_TRUE(b.send_all(HttpRequestText("/healthz")));
  EXPECT_EQ(ReadHttpReply(b).status, 200);
}

// Heads that never end cannot keep a load balancer's check out for the idle timeout: at the
// cap, the connection that has waited longest for a whole head, a second at least, is closed
// for it.
TEST_F(MetricsHttpTest, SlowHeadsMakeRoomForOneWaitingAtTheCap) {
  MetricsHttpOptions o;
  o.max_connections = 2;
  o.idle_timeout = std::chrono::seconds(60);
  Start(std::move(o));
  const std::vector<std::string> close = {"Connection: close"};
  const std::string never_ending = "GET /metrics HTTP/1.1\r\n";
  BlockingClient oldest(port_);
  ASSERT_TRUE(oldest.send_all(never_ending));
  BlockingClient slow(port_);
  ASSERT_TRUE(slow.send_all(never_ending));

  // The client's receive gives up after 30 s, before the idle timeout would free a place.
  BlockingClient first(port_);
  ASSERT_TRUE(first.send_all(HttpRequestText("/readyz", close)));
  EXPECT_EQ(ReadHttpReply(first).body, "ready\n");
  EXPECT_EQ(first.recv_until_eof(), "");
  EXPECT_EQ(oldest.recv_until_eof(), "") << "the one that waited longest was closed";

  BlockingClient newer(port_);  // takes the place first's close freed
  ASSERT_TRUE(newer.send_all(never_ending));
  BlockingClient second(port_);
  ASSERT_TRUE(second.send_all(HttpRequestText("/readyz", close)));
  EXPECT_EQ(ReadHttpReply(second).body, "ready\n");
  EXPECT_EQ(slow.recv_until_eof(), "") << "then the other slow head, which had waited longer than the newer one";
  char byte = 0;
  EXPECT_EQ(::recv(newer.fd(), &byte, 1, MSG_DONTWAIT), -1) << "the newer slow head kept its place";
}

// Connections that never send a byte (a port scan, a bare TCP check, a flood) are not
// queued for accepting until a second has passed (TCP_DEFER_ACCEPT): a request overtakes them.
// Forty of them, a second each at the one place, would keep it out past its client's 30 s.
TEST_F(MetricsHttpTest, ARequestOvertakesConnectionsThatSentNothing) {
  StartWithOnePlace();
  std::vector<std::unique_ptr<BlockingClient>> silent = ConnectSilently(40);
  BlockingClient check(port_);
  ASSERT_TRUE(check.send_all(HttpRequestText("/healthz")));
  EXPECT_EQ(ReadHttpReply(check).status, 200);
}

// Once the deferral ends, the silent connections are queued anyway, ahead of a later request.
// Accepted without a byte, each has been silent a second already: at the cap each is closed at
// once for the connections waiting, not after a second more of its own.
TEST_F(MetricsHttpTest, ConnectionsQueuedSilentAreClosedAtOnceForOnesWaiting) {
  StartWithOnePlace();
  std::vector<std::unique_ptr<BlockingClient>> silent = ConnectSilently(40);
  // The deferral (1 s), and the SYN-ACK sent again as it ends, whose ACK queues them.
  std::this_thread::sleep_for(MetricsHttpServer::kDeferAccept + std::chrono::milliseconds(1500));
  BlockingClient check(port_);
  ASSERT_TRUE(check.send_all(HttpRequestText("/healthz")));
  EXPECT_EQ(ReadHttpReply(check).status, 200);
  // (One queued after the check, on a loaded machine, may hold the place now: not waited for.)
  int closed = 0;
  for (auto& c : silent) {
    pollfd ended{.fd = c->fd(), .events = POLLIN, .revents = 0};
    char byte = 0;
    closed += ::poll(&ended, 1, /*timeout_ms=*/1000) == 1 && ::recv(c->fd(), &byte, 1, MSG_DONTWAIT) == 0;
  }
  EXPECT_GE(closed, 1) << "silent ones were closed for it";
}

// A client that pipelines requests and never reads its answers cannot keep a check out for
// the idle timeout either: at the cap, once no byte of its answer has been taken for a second,
// its connection is reset for the one waiting.
TEST_F(MetricsHttpTest, AnAnswerNotTakenMakesRoomForOneWaitingAtTheCap) {
  StartWithOnePlace();
  BlockingClient hog(port_, /*ipv6=*/false, /*timeout_ms=*/30000, /*receive_buffer=*/4096);
  // 404s that echo a 4 KiB path: answers as large as the requests, sent until neither side's
  // buffers take more (bounded: 64 MiB).
  const std::string request = HttpRequestText("/" + std::string(4096, 'x'));
  size_t sent = 0;
  while (sent < (64u << 20)) {
    ssize_t n = ::send(hog.fd(), request.data(), request.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd writable{.fd = hog.fd(), .events = POLLOUT, .revents = 0};
      if (::poll(&writable, 1, /*timeout_ms=*/500) == 0) break;  // the server stopped reading
      continue;
    }
    ASSERT_GT(n, 0) << "the server closed first: " << std::strerror(errno);
    sent += static_cast<size_t>(n);
  }
  ASSERT_LT(sent, 64u << 20) << "the server kept reading: its answers were taken somewhere";

  BlockingClient check(port_);
  ASSERT_TRUE(check.send_all(HttpRequestText("/healthz")));
  EXPECT_EQ(ReadHttpReply(check).status, 200);
  EXPECT_EQ(testing::AwaitReset(hog.fd(), std::chrono::seconds(30)), ECONNRESET) << "the hog's connection was reset";
}

TEST_F(MetricsHttpTest, StopClosesEveryConnection) {
  Start();
  BlockingClient c(port_);
  ASSERT_TRUE(c.send_all(HttpRequestText("/healthz")));
  ASSERT_EQ(ReadHttpReply(c).status, 200);
  server_->Stop();
  EXPECT_EQ(c.recv_until_eof(), "");
  server_->Stop();  // idempotent
}

// A server started with accept_at_start false (a port taken over, whose old process answers
// until this one's echo server runs) leaves its clients in the backlog until StartAccepting,
// then answers them; one stopped before it ever accepted stops all the same.
TEST_F(MetricsHttpTest, WithoutAcceptAtStartClientsWaitUntilStartAccepting) {
  MetricsHttpOptions o;
  o.accept_at_start = false;
  Start(std::move(o));
  BlockingClient c(port_);
  ASSERT_TRUE(c.send_all(HttpRequestText("/healthz")));
  pollfd p{.fd = c.fd(), .events = POLLIN, .revents = 0};
  EXPECT_EQ(::poll(&p, 1, 200), 0) << "answered before StartAccepting";
  server_->StartAccepting();
  EXPECT_EQ(ReadHttpReply(c).status, 200);
  server_->StartAccepting();  // once started, nothing

  MetricsHttpOptions never;
  never.accept_at_start = false;
  never.backend = "epoll";
  auto stopped = MetricsHttpServer::Start(std::move(never), {});
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  (*stopped)->Stop();
}

TEST(MetricsHttpStartTest, ErrorsNameTheAddress) {
  MetricsHttpOptions o;
  o.host = "not-an-ip";
  auto bad_host = MetricsHttpServer::Start(o, {});
  ASSERT_FALSE(bad_host.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bad_host.status())) << bad_host.status();

  auto first = MetricsHttpServer::Start({}, {});
  ASSERT_TRUE(first.ok()) << first.status();
  MetricsHttpOptions same;
  same.port = (*first)->port();
  auto second = MetricsHttpServer::Start(same, {});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("cannot serve metrics on 127.0.0.1:" + std::to_string(same.port)),
            std::string::npos)
      << second.status();
}

}  // namespace
}  // namespace brrr::control
