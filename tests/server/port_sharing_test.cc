// One port, one server: brrr-echo refuses a port that any other socket holds (another
// brrr-echo's SO_REUSEPORT listeners included) with exit code 3, and joins another process's
// listeners only with --share_port; its admin and metrics ports are never shared.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/http_client.h"
#include "tests/testing/net.h"
#include "tests/testing/process.h"

namespace brrr {
namespace {

using std::chrono::seconds;
using testing::BlockingClient;
using testing::Process;

std::string EchoBinary() { return testing::Runfile("server/brrr-echo/brrr-echo"); }

// A TCP listener on 127.0.0.1 (a free port), with or without SO_REUSEPORT.
class Holder {
 public:
  // On `port` (0: a free one).
  explicit Holder(bool reuse_port, uint16_t port = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuse_port) ::setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Holder() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// Runs brrr-echo on `port` and expects it to refuse to start: exit 3, the reason on stderr.
void ExpectRefused(uint16_t port, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--port=" + std::to_string(port)};
  args.insert(args.end(), extra.begin(), extra.end());
  Process p(EchoBinary(), args);
  std::optional<int> code = p.Wait(seconds(30));
  ASSERT_TRUE(code.has_value()) << "it started on a port in use: " << p.out();
  EXPECT_EQ(*code, 3) << p.err();
  EXPECT_NE(p.err().find("cannot listen on 127.0.0.1:" + std::to_string(port) + ": Address already in use"),
            std::string::npos)
      << p.err();
  EXPECT_NE(p.err().find("--share_port"), std::string::npos) << p.err();
}

std::string EchoOf(uint16_t port, const std::string& payload) {
  BlockingClient c(port);
  if (!c.send_all(payload)) return "";
  c.shutdown_write();
  return c.recv_until_eof();
}

TEST(PortSharingTest, APortHeldByAPlainListenerIsRefused) {
  Holder holder(/*reuse_port=*/false);
  ExpectRefused(holder.port());
}

TEST(PortSharingTest, APortHeldByAReusePortListenerIsRefused) {
  // The case Linux would let join silently: same user, SO_REUSEPORT on both sides.
  Holder holder(/*reuse_port=*/true);
  ExpectRefused(holder.port());
  ExpectRefused(holder.port(), {"--loops=3"});
}

// The admin plane's and the metrics port's listeners take no SO_REUSEPORT either: a port another
// socket holds, even one that would let a SO_REUSEPORT listener join it, is refused (exit 3).
TEST(PortSharingTest, TheAdminAndMetricsPortsAreNeverShared) {
  Holder holder(/*reuse_port=*/true);
  const std::string held = "127.0.0.1:" + std::to_string(holder.port());
  for (const char* flag : {"--admin_port=", "--metrics_port="}) {
    SCOPED_TRACE(flag);
    Process p(EchoBinary(), {"--port=0", flag + std::to_string(holder.port())});
    std::optional<int> code = p.Wait(seconds(30));
    ASSERT_TRUE(code.has_value()) << "it started on a port in use: " << p.out();
    EXPECT_EQ(*code, 3) << p.err();
    EXPECT_NE(p.err().find(held), std::string::npos) << p.err();
    EXPECT_NE(p.err().find("Address already in use"), std::string::npos) << p.err();
  }
}

TEST(PortSharingTest, ASecondServerOnTheSamePortIsRefusedAndTheFirstKeepsEveryConnection) {
  Process first(EchoBinary(), {"--port=0", "--loops=2"});
  uint16_t port = first.ListeningPort();
  ASSERT_NE(port, 0) << first.err();
  ExpectRefused(port);
  // Every connection still reaches the first server (the refused one holds nothing).
  for (int i = 0; i < 20; ++i) {
    std::string payload = testing::RandomBytes(512, static_cast<uint32_t>(i));
    EXPECT_TRUE(EchoOf(port, payload) == payload) << i;
  }
  first.Signal(SIGTERM);
  ASSERT_EQ(first.Wait(seconds(30)), std::optional<int>(0));
  EXPECT_NE(first.out().find("20 connections served"), std::string::npos) << first.out();
}

// Linux lets a process of the same user join a SO_REUSEPORT group at any time, and then gives
// it part of the new connections. brrr-echo cannot refuse it, but within a second of its
// joining and of its leaving says so on stderr, and counts it (foreign_listeners).
TEST(PortSharingTest, AListenerThatJoinsLaterIsReportedAndCounted) {
  const uint16_t metrics_port = testing::PickFreePort();
  Process server(EchoBinary(), {"--port=0", "--loops=2", "--metrics_port=" + std::to_string(metrics_port)});
  const uint16_t port = server.ListeningPort();
  ASSERT_NE(port, 0) << server.err();
  const std::string where = "127.0.0.1:" + std::to_string(port);
  auto foreign_listeners = [&] {
    testing::HttpReply reply = testing::HttpGet(metrics_port, "/metrics");
    size_t at = reply.body.find("\nbrrr_foreign_listeners{loop=\"0\"} ");
    return at == std::string::npos ? -1 : std::atoi(reply.body.c_str() + reply.body.find(' ', at + 1) + 1);
  };
  EXPECT_EQ(foreign_listeners(), 0);
  {
    Holder other(/*reuse_port=*/true, port);
    ASSERT_EQ(other.port(), port);
    EXPECT_TRUE(server.WaitForError("a listener that is not this server's joined " + where)) << server.err();
    EXPECT_EQ(foreign_listeners(), 1);
  }
  EXPECT_TRUE(server.WaitForError("the other listener on " + where)) << server.err();
  EXPECT_NE(server.err().find("is gone"), std::string::npos) << server.err();
  EXPECT_EQ(foreign_listeners(), 0);
  server.Signal(SIGTERM);
  ASSERT_EQ(server.Wait(seconds(30)), std::optional<int>(0));
}

TEST(PortSharingTest, SharePortJoinsARunningServerOnPurpose) {
  Process old_server(EchoBinary(), {"--port=0"});
  uint16_t port = old_server.ListeningPort();
  ASSERT_NE(port, 0) << old_server.err();
  Process new_server(EchoBinary(), {"--port=" + std::to_string(port), "--share_port"});
  ASSERT_EQ(new_server.ListeningPort(), port) << new_server.err();
  // The old one says so (it was not started with --share_port); the new one does not look.
  EXPECT_TRUE(old_server.WaitForError("a listener that is not this server's joined 127.0.0.1:" + std::to_string(port)))
      << old_server.err();
  // The old one leaves; the new one serves the port alone.
  old_server.Signal(SIGTERM);
  ASSERT_EQ(old_server.Wait(seconds(30)), std::optional<int>(0));
  for (int i = 0; i < 10; ++i) {
    std::string payload = testing::RandomBytes(512, static_cast<uint32_t>(100 + i));
    EXPECT_TRUE(EchoOf(port, payload) == payload) << i;
  }
  new_server.Signal(SIGTERM);
  ASSERT_EQ(new_server.Wait(seconds(30)), std::optional<int>(0));
  EXPECT_NE(new_server.out().find("10 connections served"), std::string::npos) << new_server.out();
}

}  // namespace
}  // namespace brrr
