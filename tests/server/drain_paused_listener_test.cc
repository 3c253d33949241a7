// drain_paused_listener_test.cc: a drain while accepting is paused (no accept is pending on the
// listener), in this process, on every backend. The listener ends as a running accept loop's
// does: it refuses new handshakes (a socket filter), then waits a moment for those under way
// before it closes, so a client whose handshake completes just after the filter came is
// served, not reset.
//
// A handshake under way is made to last as long as the test needs: the listener defers
// accepting (TCP_DEFER_ACCEPT), so the kernel completes a client's handshake only when the
// client's first bytes come. A client that has connected and sent nothing is such a handshake;
// its first bytes, sent while the listener waits, complete it.
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/call_in_loop.h"
#include "runtime/event_loop.h"
#include "server/echo_server.h"
#include "tests/testing/backends.h"
#include "tests/testing/loop_hold.h"
#include "tests/testing/net.h"
#include "tests/testing/skips.h"

namespace brrr {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Whether this process may put a socket filter on a TCP socket (some kernels want
// CAP_NET_ADMIN, which Bazel's sandbox does not give); the reason if not.
bool SocketFiltersAllowed(std::string* why) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sock_filter keep_all = BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
  sock_fprog program{1, &keep_all};
  const bool allowed = ::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) == 0;
  if (!allowed) *why = std::string("setsockopt(SO_ATTACH_FILTER) on a TCP socket: ") + std::strerror(errno);
  ::close(fd);
  return allowed;
}

// The number of instructions of `fd`'s socket filter: 0 for none, -1 if `fd` is no socket.
int FilterLength(int fd) {
  socklen_t len = 0;
  if (::getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, nullptr, &len) != 0) return -1;
  return static_cast<int>(len);
}

// Whether the bytes sent on `fd` have had the kernel's answer: acknowledged by the server, or
// the connection ended (a reset).
bool SentBytesAnswered(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return true;
  return info.tcpi_state != TCP_ESTABLISHED || info.tcpi_unacked == 0;
}

// Waits (at most 20 s) for SentBytesAnswered(fd).
bool WaitForAnswer(int fd) {
  for (int i = 0; i < 20000; ++i) {
    if (SentBytesAnswered(fd)) return true;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return false;
}

class DrainPausedListenerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DrainPausedListenerTest, AHandshakeCompletedAfterTheFilterCameIsServed) {
  BRRR_SKIP_UNLESS_BACKEND_STARTS(GetParam());
  if (std::string why; !SocketFiltersAllowed(&why)) BRRR_SKIP_OR_FAIL("socket_filter", why);
  server::EchoServerOptions options;
  options.backend = GetParam();
  options.port = 0;
  options.loops = 1;
  options.drain_grace = Duration::zero();
  absl::StatusOr<std::unique_ptr<server::EchoServer>> made = server::EchoServer::Create(options);
  ASSERT_TRUE(made.ok()) << made.status();
  std::unique_ptr<server::EchoServer> server = *std::move(made);
  ASSERT_TRUE(server->Start().ok());
  const uint16_t port = server->address().port();

  // Paused: once the accept loop has ended, no accept is pending.
  ASSERT_TRUE(server->SetThrottle({.accepting_paused = true}).ok());
  for (int i = 0; i < 2000 && server->loop_stats()[0].live_tasks != 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(server->loop_stats()[0].live_tasks, 0u) << "the accept loop did not end";
  EventLoop& loop = server->shard(0).loop();
  absl::StatusOr<std::vector<SocketInfo>> sockets = CallInLoop(
      loop, [&loop] { return loop.socket_infos(); }, seconds(5), "test:list_sockets");
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  int listener = -1;
  for (const SocketInfo& s : *sockets) {
    if (s.kind == "listener") listener = s.fd;
  }
  ASSERT_GE(listener, 0) << "the loop lists no listener";
  const int defer_seconds = 30;
  ASSERT_EQ(::setsockopt(listener, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds), 0);

  // One client waits in the backlog, its handshake complete; the other's is under way.
  testing::BlockingClient queued(port, /*ipv6=*/false, /*timeout_ms=*/20000);
  ASSERT_TRUE(queued.send_all("q"));
  ASSERT_TRUE(WaitForAnswer(queued.fd()));
  testing::BlockingClient under_way(port, /*ipv6=*/false, /*timeout_ms=*/20000);

  // The drain, posted while the loop is held, with a task that queues a second hold: that
  // hold runs in the iteration after the drain's, right after the first step of the listener's
  // task (queued by the drain), which puts the filter on and starts the wait. While it holds,
  // the listener refuses new handshakes and is still open (on the old path, a paused
  // listener's drain closed it at once).
  testing::LoopHold before;
  ASSERT_TRUE(loop.call_soon_threadsafe(before.task(), "test:hold"));
  before.wait_until_held();
  ASSERT_TRUE(server->Drain());
  testing::LoopHold waiting;
  ASSERT_TRUE(loop.call_soon_threadsafe(
      [&loop, hold = waiting.task()]() mutable { loop.call_soon(std::move(hold), "test:hold_while_waiting"); },
      "test:queue_hold"));
  before.release();
  waiting.wait_until_held();
  EXPECT_GT(FilterLength(listener), 0) << "the listener is closed, or takes new handshakes";
  // The handshake under way completes now: a listener still open queues the client; one closed
  // answers its bytes with a reset.
  ASSERT_TRUE(under_way.send_all("u"));
  ASSERT_TRUE(WaitForAnswer(under_way.fd())) << "no answer to the client's first bytes";
  waiting.release();

  EXPECT_EQ(queued.recv_exact(1), "q");
  EXPECT_EQ(under_way.recv_exact(1), "u") << "the client whose handshake completed during the wait was reset";
  queued.shutdown_write();
  under_way.shutdown_write();
  EXPECT_EQ(queued.recv_until_eof(), "");
  EXPECT_EQ(under_way.recv_until_eof(), "");
  server->Wait();
  EXPECT_EQ(server->stats().connections_accepted, 2u);
  EXPECT_EQ(server->stats().connections_reset_in_backlog, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, DrainPausedListenerTest, ::testing::ValuesIn(testing::AllBackends()),
                         testing::BackendName());

}  // namespace
}  // namespace brrr
