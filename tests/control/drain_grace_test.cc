// A drain that a balancer understands (--drain_grace): from the drain on, /readyz answers 503
// and grpc.health NOT_SERVING while the server still accepts and echoes new connections; once
// the grace is over it refuses them, and the connections it has go on. The phase shows in
// GetServerInfo and GetStats; a second signal cuts the grace short; the admin Drain takes the
// same path as SIGTERM. Every backend.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "brrr/admin/v1/admin.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/control/admin_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/http_client.h"
#include "tests/testing/net.h"
#include "tests/testing/side_ports.h"

namespace brrr {
namespace {

namespace admin = brrr::admin::v1;
namespace health = grpc::health::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;

// connect() to 127.0.0.1:port: 0 if it connected, else the errno (ECONNREFUSED...).
int ConnectError(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  int error = rc == 0 ? 0 : errno;
  ::close(fd);
  return error;
}

class DrainGraceTest : public testing::AdminFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override { BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam()); }

  // brrr-echo with its admin plane and metrics port on ports that were free a moment ago (picked
  // again if another program took one in between).
  void StartWithGrace(const std::string& grace, const std::string& drain_timeout = "60s") {
    testing::SidePorts ports;
    server_ = testing::StartOnFreeSidePorts(
        testing::Runfile("server/brrr-echo/brrr-echo"),
        [&](const testing::SidePorts& p) {
          return std::vector<std::string>{"--port=0",
                                          "--backend=" + GetParam(),
                                          "--drain_grace=" + grace,
                                          "--drain_timeout=" + drain_timeout,
                                          "--admin_port=" + std::to_string(p.admin),
                                          "--metrics_port=" + std::to_string(p.metrics)};
        },
        &ports);
    admin_port_ = ports.admin;
    metrics_port_ = ports.metrics;
    port_ = server_->ListeningPort();
    ASSERT_NE(port_, 0) << server_->out() << server_->err();
    ASSERT_TRUE(server_->WaitForOutput("metrics on 127.0.0.1:" + std::to_string(metrics_port_))) << server_->out();
    Connect();
    health_ = health::Health::NewStub(channel_);
  }

  // `last`, the one connection left, still echoes; once its client ends it the server exits 0.
  void ExpectTheLastConnectionEndsTheDrain(testing::BlockingClient& last) {
    ASSERT_TRUE(last.send_all("after"));
    EXPECT_EQ(last.recv_exact(5), "after");
    last.shutdown_write();
    EXPECT_EQ(last.recv_until_eof(), "");
    std::optional<int> code = server_->Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << "the last connection has gone: the drain is over";
    EXPECT_EQ(*code, 0);
  }

  health::HealthCheckResponse::ServingStatus Health() {
    health::HealthCheckResponse response;
    grpc::Status s = health_->Check(Context().get(), health::HealthCheckRequest(), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.status();
  }

  admin::DrainPhase InfoPhase() {
    admin::ServerInfo info;
    grpc::Status s = stub_->GetServerInfo(Context().get(), admin::GetServerInfoRequest(), &info);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return info.drain_phase();
  }

  // The server, not ready and still accepting: a balancer's health checks take it out now.
  void ExpectNotReadyButAccepting() {
    admin::Stats stats = StatsWhen([](const admin::Stats& s) { return s.drain_phase() == admin::DRAIN_PHASE_GRACE; });
    EXPECT_EQ(stats.drain_phase(), admin::DRAIN_PHASE_GRACE);
    EXPECT_TRUE(stats.draining());
    EXPECT_EQ(InfoPhase(), admin::DRAIN_PHASE_GRACE);
    testing::HttpReply ready = testing::HttpGet(metrics_port_, "/readyz");
    EXPECT_EQ(ready.status, 503) << ready.head << ready.body;
    EXPECT_EQ(Health(), health::HealthCheckResponse::NOT_SERVING);
    // New connections are accepted and served whole.
    for (int i = 0; i < 4; ++i) {
      testing::BlockingClient c(port_);
      std::string payload = testing::RandomBytes(100 * 1000, 40 + i);
      std::thread writer([&] {
        EXPECT_TRUE(c.send_all(payload));
        c.shutdown_write();
      });
      EXPECT_TRUE(c.recv_until_eof() == payload) << "a connection made during the grace is echoed";
      writer.join();
    }
    admin::Stats stats_after = Stats();
    EXPECT_GE(stats_after.total().connections_accepted(), 4u);
    EXPECT_TRUE(stats_after.total().accepting()) << "the loop accepts all through the grace";
    EXPECT_EQ(stats_after.drain_phase(), admin::DRAIN_PHASE_GRACE);
  }

  // With `throttle` set, clients that send and half-close wait in the backlog; a SIGTERM then
  // echoes every one of them whole and the server exits 0, having served them all.
  void ExpectTheBacklogServedByTheDrain(const admin::SetThrottleRequest& throttle, int clients_waiting = 4) {
    admin::Throttle now;
    ASSERT_TRUE(stub_->SetThrottle(Context().get(), throttle, &now).ok());
    const int kClients = clients_waiting;
    std::vector<std::unique_ptr<testing::BlockingClient>> clients;
    std::vector<std::string> payloads;
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(std::make_unique<testing::BlockingClient>(port_));
      payloads.push_back(testing::RandomBytes(1000 + i, 70 + i));
      ASSERT_TRUE(clients.back()->send_all(payloads.back()));
      clients.back()->shutdown_write();
    }
    server_->Signal(SIGTERM);
    for (int i = 0; i < kClients; ++i) {
      EXPECT_TRUE(clients[i]->recv_until_eof() == payloads[i]) << "client " << i << " was not echoed whole";
    }
    std::optional<int> code = server_->Wait(seconds(30));
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 0);
    EXPECT_NE(server_->out().find(std::to_string(kClients) + " connections served"), std::string::npos)
        << server_->out();
  }

  // SetThrottle resuming accepting during the drain: refused (a drain cannot be taken back),
  // nothing changed. Its message.
  std::string RefusedResume() {
    admin::SetThrottleRequest resume;
    resume.set_accepting_paused(false);
    admin::Throttle answer;
    grpc::Status s = stub_->SetThrottle(Context().get(), resume, &answer);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
    EXPECT_NE(s.error_message().find("a drain cannot be taken back; nothing was changed"), std::string::npos)
        << s.error_message();
    return s.error_message();
  }

  uint16_t metrics_port_ = 0;
  std::unique_ptr<health::Health::Stub> health_;
};

TEST_P(DrainGraceTest, DuringTheGraceNotReadyButAccepting) {
  StartWithGrace("10m");
  EXPECT_EQ(testing::HttpGet(metrics_port_, "/readyz").status, 200);
  EXPECT_EQ(Health(), health::HealthCheckResponse::SERVING);
  EXPECT_EQ(InfoPhase(), admin::DRAIN_PHASE_SERVING);
  testing::BlockingClient early(port_);
  ASSERT_TRUE(early.send_all("before"));
  ASSERT_EQ(early.recv_exact(6), "before");

  server_->Signal(SIGTERM);
  ASSERT_TRUE(server_->WaitForOutput("still accepting for 10m (--drain_grace)")) << server_->out();
  ExpectNotReadyButAccepting();
  ASSERT_TRUE(early.send_all("during"));
  EXPECT_EQ(early.recv_exact(6), "during");
  // A resume is refused, saying what the server does now: it still accepts, until its grace ends
  // (it said "it accepts no new connection" all the same).
  const std::string refused = RefusedResume();
  EXPECT_NE(refused.find("it accepts new connections only until its --drain_grace ends"), std::string::npos) << refused;
  EXPECT_EQ(refused.find("accepts no new connection"), std::string::npos) << refused;
  EXPECT_TRUE(Stats().total().accepting()) << "the refused resume changed nothing: still accepting in the grace";

  // A second signal ends the grace and every connection at once (the grace is ten minutes).
  server_->Signal(SIGTERM);
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "a second signal must cut the grace short";
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server_->out().find("closing every connection now"), std::string::npos) << server_->out();
  EXPECT_NE(server_->out().find("1 closed by a second signal"), std::string::npos) << server_->out();
}

TEST_P(DrainGraceTest, AfterTheGraceNewConnectionsAreRefusedAndOpenOnesGoOn) {
  StartWithGrace("200ms");
  testing::BlockingClient early(port_);
  ASSERT_TRUE(early.send_all("before"));
  ASSERT_EQ(early.recv_exact(6), "before");

  server_->Signal(SIGTERM);
  ASSERT_TRUE(server_->WaitForOutput("still accepting for 200ms (--drain_grace)")) << server_->out();
  ASSERT_TRUE(server_->WaitForOutput("drain: no longer accepting")) << server_->out();
  EXPECT_EQ(ConnectError(port_), ECONNREFUSED) << "after the grace the listener is closed";
  admin::Stats after = StatsWhen([](const admin::Stats& s) { return s.drain_phase() == admin::DRAIN_PHASE_FINISHING; });
  EXPECT_FALSE(after.total().accepting());
  EXPECT_EQ(InfoPhase(), admin::DRAIN_PHASE_FINISHING);
  EXPECT_EQ(testing::HttpGet(metrics_port_, "/readyz").status, 503);
  EXPECT_EQ(Health(), health::HealthCheckResponse::NOT_SERVING);
  const std::string refused = RefusedResume();
  EXPECT_NE(refused.find("it accepts no new connection"), std::string::npos) << refused;
  // The connection from before goes on until its client ends it; then the server exits.
  ExpectTheLastConnectionEndsTheDrain(early);
}

// A server whose accepting was paused (no accept pending) when its grace ends stops accepting
// all the same: it says so, and its phase moves on to FINISHING (GetStats, GetServerInfo), not
// left at GRACE for the rest of the drain.
TEST_P(DrainGraceTest, APausedServerIsFinishingOnceItsGraceEnds) {
  StartWithGrace("200ms");
  testing::BlockingClient early(port_);  // keeps the drain going until it leaves
  ASSERT_TRUE(early.send_all("before"));
  ASSERT_EQ(early.recv_exact(6), "before");
  admin::SetThrottleRequest pause;
  pause.set_accepting_paused(true);
  admin::Throttle now;
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), pause, &now).ok());
  StatsWhen([](const admin::Stats& s) { return !s.total().accepting(); });

  server_->Signal(SIGTERM);
  ASSERT_TRUE(server_->WaitForOutput("still accepting for 200ms (--drain_grace)")) << server_->out();
  ASSERT_TRUE(server_->WaitForOutput("drain: no longer accepting")) << server_->out();
  admin::Stats after = StatsWhen([](const admin::Stats& s) { return s.drain_phase() == admin::DRAIN_PHASE_FINISHING; });
  EXPECT_EQ(after.drain_phase(), admin::DRAIN_PHASE_FINISHING);
  EXPECT_EQ(InfoPhase(), admin::DRAIN_PHASE_FINISHING);
  EXPECT_EQ(ConnectError(port_), ECONNREFUSED) << "the listener is closed";
  // The connection from before goes on until its client ends it; then the server exits.
  ExpectTheLastConnectionEndsTheDrain(early);
}

// A signal during the admin plane's drain is the drain's first signal: it says the server is
// already draining (no second drain is started or announced), and the next one cuts it short,
// as after a SIGTERM.
TEST_P(DrainGraceTest, TheAdminDrainHasTheSameGrace) {
  StartWithGrace("10m");
  admin::DrainResponse response;
  grpc::Status s = stub_->Drain(Context().get(), admin::DrainRequest(), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ExpectNotReadyButAccepting();
  server_->Signal(SIGTERM);
  ASSERT_TRUE(
      server_->WaitForOutput("brrr-echo: Terminated: already draining; a second signal closes every "
                             "connection now\n",
                             seconds(10)))
      << server_->out();
  EXPECT_EQ(server_->out().find("Terminated: draining"), std::string::npos) << server_->out();
  EXPECT_EQ(InfoPhase(), admin::DRAIN_PHASE_GRACE) << "the drain goes on as it was";
  server_->Signal(SIGTERM);
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "a second signal must cut the grace short";
  EXPECT_EQ(*code, 0);
  std::string out = server_->out();
  EXPECT_NE(out.find("brrr-echo: Terminated again: closing every connection now\n"), std::string::npos) << out;
  size_t drain_lines = 0;
  for (size_t at = out.find(": draining"); at != std::string::npos; at = out.find(": draining", at + 1)) {
    ++drain_lines;
  }
  EXPECT_EQ(drain_lines, 1u) << "one drain, announced once: " << out;
}

// Clients whose handshake the kernel completed but which the server had not accepted yet are
// accepted as accepting stops, and served whole: the listener's close does not reset them.
// Here its accept loop waits out a throttled accept rate (one a second)...
TEST_P(DrainGraceTest, ConnectionsWaitingInTheBacklogWhenAcceptingStopsAreServed) {
  StartWithGrace("0s");
  admin::SetThrottleRequest set;
  set.set_accepts_per_second(1);
  ExpectTheBacklogServedByTheDrain(set);
}

// ... and here accepting was paused: no accept is pending, yet the drain takes them too.
TEST_P(DrainGraceTest, ConnectionsWaitingBehindAPausedListenerAreServedByTheDrain) {
  StartWithGrace("0s");
  admin::SetThrottleRequest set;
  set.set_accepting_paused(true);
  ExpectTheBacklogServedByTheDrain(set);
}

// More clients than the 1,024 a drain once took from a paused listener's backlog of 4,096:
// every one is served. One backend (the accept is the runtime's, the same call on each), not
// select, which cannot watch descriptors past 1,023.
TEST_P(DrainGraceTest, MoreThanAThousandClientsInTheBacklogAreAllServed) {
  if (GetParam() != "epoll") GTEST_SKIP() << "run on epoll only";
  ASSERT_GE(testing::RaiseFdLimit(4096), 4096u) << "1,100 clients and the server's share need the descriptors";
  StartWithGrace("0s");
  admin::SetThrottleRequest set;
  set.set_accepting_paused(true);
  ExpectTheBacklogServedByTheDrain(set, 1100);
}

// With no time to finish (--drain_timeout=0s), the drain deadline comes before the accept
// loop has ended: the clients waiting in the backlog are still taken, not reset by the
// listener's close, and closed as every connection is at the deadline: what was read is
// echoed, then an end of stream, never a reset.
TEST_P(DrainGraceTest, NoTimeToFinishStillTakesTheBacklogWithoutAReset) {
  StartWithGrace("0s", "0s");
  admin::SetThrottleRequest set;
  set.set_accepts_per_second(1);
  admin::Throttle now;
  ASSERT_TRUE(stub_->SetThrottle(Context().get(), set, &now).ok());
  constexpr int kClients = 4;
  std::vector<std::unique_ptr<testing::BlockingClient>> clients;
  std::vector<std::string> payloads;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<testing::BlockingClient>(port_));
    payloads.push_back(testing::RandomBytes(1000 + i, 90 + i));
    ASSERT_TRUE(clients.back()->send_all(payloads.back()));
    clients.back()->shutdown_write();
  }
  server_->Signal(SIGTERM);
  for (int i = 0; i < kClients; ++i) {
    std::string echoed;
    char buf[4096];
    int error = 0;
    for (;;) {
      ssize_t n = ::recv(clients[i]->fd(), buf, sizeof buf, 0);
      if (n > 0) {
        echoed.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      error = n == 0 ? 0 : errno;
      break;
    }
    EXPECT_EQ(error, 0) << "client " << i << " was reset (" << std::strerror(error) << ")";
    EXPECT_EQ(payloads[i].compare(0, echoed.size(), echoed), 0) << "client " << i << ": not a prefix of its bytes";
  }
  std::optional<int> code = server_->Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_NE(server_->out().find(std::to_string(kClients) + " connections served"), std::string::npos)
      << server_->out();
  EXPECT_NE(server_->out().find(" 0 with a reset"), std::string::npos) << server_->out();
}

TEST(DrainGraceFlagTest, OutOfRangeIsRefused) {
  testing::Process p(testing::Runfile("server/brrr-echo/brrr-echo"), {"--port=0", "--drain_grace=11m"});
  std::optional<int> code = p.Wait(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2);
  EXPECT_NE(p.err().find("--drain_grace=11m: must be from 0 to 10m"), std::string::npos) << p.err();
}

INSTANTIATE_TEST_SUITE_P(Backends, DrainGraceTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
