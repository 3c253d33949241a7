// Socket::refuse_new_handshakes, on every backend: a listener about to close keeps its backlog
// and lets no new client complete a handshake, so none is reset by the close after its connect
// succeeded. It runs outside Bazel's sandbox (BUILD says why): in the sandbox's user namespace
// a kernel that wants CAP_NET_ADMIN for a socket filter refuses it.
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "runtime/async.h"
#include "runtime/socket.h"
#include "tests/reactors/socket_fixture.h"
#include "tests/testing/backends.h"
#include "tests/testing/net.h"
#include "tests/testing/skips.h"

namespace brrr {
namespace {

using testing::BlockingClient;
using testing::SocketTest;

// A client already in the backlog is still accepted (and its connection carries bytes both
// ways); a new client's SYN goes unanswered, so its connect stays in progress instead of
// completing into a backlog the close would reset; once the listener has closed, that client is
// refused when it sends its SYN again. Over IPv4 and IPv6: the filter reads the TCP header,
// the same behind either.
TEST_P(SocketTest, RefusingNewHandshakesKeepsTheBacklogAndLetsNoNewClientIn) {
  for (int family : {AF_INET, AF_INET6}) {
    const bool ipv6 = family == AF_INET6;
    SCOPED_TRACE(ipv6 ? "IPv6" : "IPv4");
    Socket listener = Listen(family);
    ASSERT_TRUE(listener.valid());
    const uint16_t port = PortOf(listener);
    BlockingClient queued(port, ipv6);  // loopback: the handshake completes inside connect()
    absl::Status refused = listener.refuse_new_handshakes();
    if (absl::IsPermissionDenied(refused)) BRRR_SKIP_OR_FAIL("socket_filter", refused.ToString());
    ASSERT_TRUE(refused.ok()) << refused;

    int late = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    absl::StatusOr<SocketAddress> where = listener.local_address();
    ASSERT_TRUE(where.ok()) << where.status();
    ASSERT_EQ(::connect(late, where->data(), where->size()), -1);
    ASSERT_EQ(errno, EINPROGRESS) << std::strerror(errno);

    auto main_task = [&]() -> Task<> {
      absl::StatusOr<std::optional<Socket>> taken = listener.accept_queued();
      EXPECT_TRUE(taken.ok() && taken->has_value()) << "the client in the backlog is still there to accept";
      if (!taken.ok() || !taken->has_value()) co_return;
      EXPECT_TRUE(queued.send_all("q"));
      char c = 0;
      absl::StatusOr<size_t> n = co_await (*taken)->recv(&c, 1);
      EXPECT_TRUE(n.ok() && *n == 1 && c == 'q');
      absl::StatusOr<size_t> sent = co_await (*taken)->send("a", 1);
      EXPECT_TRUE(sent.ok() && *sent == 1);
      EXPECT_EQ(queued.recv_exact(1), "a");
    };
    Run(main_task());

    // Its SYN unanswered while the listener is open, the late client is not connected.
    pollfd p{late, POLLOUT, 0};
    EXPECT_EQ(::poll(&p, 1, 300), 0) << "a new handshake completed on a listener that refuses them";
    absl::StatusOr<std::optional<Socket>> none = listener.accept_queued();
    EXPECT_TRUE(none.ok() && !none->has_value()) << "nothing new reached the backlog";
    listener.close();
    // The SYN goes again about 1 s after the first (the initial retransmission timeout), and
    // meets the closed port.
    EXPECT_EQ(::poll(&p, 1, 10000), 1);
    int error = 0;
    socklen_t size = sizeof error;
    ::getsockopt(late, SOL_SOCKET, SO_ERROR, &error, &size);
    EXPECT_EQ(error, ECONNREFUSED) << std::strerror(error);
    ::close(late);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, SocketTest, ::testing::ValuesIn(testing::AllBackends()), testing::BackendName());

}  // namespace
}  // namespace brrr
